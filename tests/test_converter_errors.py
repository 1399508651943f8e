"""Bad inputs to the converters: one clear line naming the file (and tensor), exit code 2, no output left."""

import json
import pickle
import shutil
import subprocess

import numpy as np
import pytest

from numwhisper.errors import ModelFileError
from numwhisper.formats import checkpoint

from test_converters import ct2_source, run_converter


def one_line_error(call, *words) -> str:
    """Run ``call``; it must raise one single-line ModelFileError naming each of ``words``."""
    with pytest.raises(ModelFileError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for word in words:
        assert str(word) in message, (word, message)
    return message


def assert_refused(done, out, *words):
    """Exit 2, a single 'error:' line that names each of ``words``, and nothing written at ``out``."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert str(word) in lines[0], (word, lines[0])
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "a temporary file was left behind"


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory):
    """A writable copy of the tiny.en CTranslate2 directory."""
    src, _ = ct2_source("tiny.en")
    dst = tmp_path_factory.mktemp("ct2") / "tiny_en"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_truncated_model_bin(repo, tiny_ct2, tmp_path):
    data = (tiny_ct2 / "model.bin").read_bytes()
    broken = tmp_path / "ct2"
    shutil.copytree(tiny_ct2, broken)
    (broken / "model.bin").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "m.safetensors"
    done = run_converter(repo, "ct2_to_safetensors.py", broken, "-o", out)
    assert_refused(done, out, broken / "model.bin", "truncated")


def test_model_bin_of_another_format(repo, tiny_ct2, tmp_path):
    broken = tmp_path / "ct2"
    shutil.copytree(tiny_ct2, broken)
    shutil.copy(repo / "golden" / "audio" / "en_jfk.wav", broken / "model.bin")
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "ct2_to_safetensors.py", broken, "-o", out)
    assert_refused(done, out, broken / "model.bin", "not a CTranslate2 model.bin")


def test_missing_ct2_tokenizer(repo, tiny_ct2, tmp_path):
    broken = tmp_path / "ct2"
    shutil.copytree(tiny_ct2, broken)
    (broken / "tokenizer.json").unlink()
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "ct2_to_safetensors.py", broken, "-o", out)
    assert_refused(done, out, broken / "tokenizer.json", "no such file")


def rewrite_model_file(source, target, edit):
    """Copy a model file with ``edit(tensors)`` applied (bypassing validation, as a foreign tool would)."""
    ckpt = checkpoint.load(source)
    tensors = dict(ckpt.tensors)
    edit(tensors)
    checkpoint.write_safetensors(target, tensors, ckpt.metadata)


def test_safetensors_missing_tensor(repo, model_files, tmp_path):
    bad = tmp_path / "bad.safetensors"
    rewrite_model_file(model_files["tiny.en"], bad, lambda t: t.pop("decoder.blocks.2.cross_attn.value.bias"))
    out = tmp_path / "paddle_out"
    done = run_converter(repo, "safetensors_to_paddle.py", bad, "-o", out)
    assert_refused(done, out, bad, "decoder.blocks.2.cross_attn.value.bias", "missing")


def test_safetensors_misshapen_tensor(repo, model_files, tmp_path):
    bad = tmp_path / "bad.safetensors"
    rewrite_model_file(model_files["tiny.en"], bad,
                       lambda t: t.update({"encoder.blocks.1.mlp.0.weight": t["encoder.blocks.1.mlp.0.weight"][:10]}))
    out = tmp_path / "paddle_out"
    done = run_converter(repo, "safetensors_to_paddle.py", bad, "-o", out)
    assert_refused(done, out, bad, "encoder.blocks.1.mlp.0.weight", "[10, 384]")


def test_safetensors_truncated(repo, model_files, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(model_files["tiny.en"].read_bytes()[:1_000_000])
    out = tmp_path / "paddle_out"
    done = run_converter(repo, "safetensors_to_paddle.py", bad, "-o", out)
    assert_refused(done, out, bad, "not a readable safetensors file")


def make_pdparams_dir(tmp_path, state):
    model_dir = tmp_path / "paddle_model"
    model_dir.mkdir()
    with open(model_dir / "inference.pdparams", "wb") as f:
        pickle.dump(state, f, protocol=4)
    return model_dir


def tiny_paddle_state(model_files):
    from numwhisper.formats.convert import to_paddle_state

    ckpt = checkpoint.load(model_files["tiny.en"])
    return {"dims": ckpt.dims.to_dict(), **to_paddle_state(ckpt)}


def test_pdparams_unknown_dims(repo, model_files, tmp_path):
    state = tiny_paddle_state(model_files)
    state["dims"] = {**state["dims"], "n_experts": 8}
    model_dir = make_pdparams_dir(tmp_path, state)
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", model_dir, "-o", out)
    assert_refused(done, out, model_dir / "inference.pdparams", "n_experts")


def test_pdparams_misshapen_tensor(repo, model_files, tmp_path):
    state = tiny_paddle_state(model_files)
    state["decoder.blocks.0.attn.out.weight"] = np.zeros((384, 7), np.float32)
    model_dir = make_pdparams_dir(tmp_path, state)
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", model_dir, "-o", out)
    assert_refused(done, out, model_dir / "inference.pdparams", "decoder.blocks.0.attn.out.weight")


def test_pdparams_that_would_run_code_is_refused(repo, tmp_path):
    model_dir = make_pdparams_dir(tmp_path, {"dims": {}, "x": subprocess.Popen})
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", model_dir, "-o", out)
    assert_refused(done, out, model_dir / "inference.pdparams", "refusing to load subprocess.Popen")


def test_float16_output_refuses_rounding(repo, model_files, tmp_path):
    state = tiny_paddle_state(model_files)
    state["decoder.ln.bias"] = state["decoder.ln.bias"] + np.float32(1e-6)
    model_dir = make_pdparams_dir(tmp_path, state)
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", model_dir, "-o", out, "--dtype", "float16")
    assert_refused(done, out, "decoder.ln.bias", "not exactly representable as float16")


def test_not_a_tar(repo, tmp_path):
    fake = tmp_path / "whisper_base.tar"
    fake.write_text("this is not an archive")
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", fake, "-o", out)
    assert_refused(done, out, fake, "not a readable tar archive")


def test_existing_output_directory_is_not_overwritten(repo, model_files, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = run_converter(repo, "safetensors_to_paddle.py", model_files["tiny.en"], "-o", out)
    assert done.returncode == 2 and "already exists" in done.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_metadata_must_be_numwhisper(repo, model_files, tmp_path):
    ckpt = checkpoint.load(model_files["tiny.en"])
    bad = tmp_path / "plain.safetensors"
    checkpoint.write_safetensors(bad, ckpt.tensors, {"format": "pt"})
    out = tmp_path / "paddle_out"
    done = run_converter(repo, "safetensors_to_paddle.py", bad, "-o", out)
    assert_refused(done, out, bad, "numwhisper.format_version")
    meta = dict(ckpt.metadata, dims=json.dumps({"n_mels": 80}))
    checkpoint.write_safetensors(bad, ckpt.tensors, meta)
    done = run_converter(repo, "safetensors_to_paddle.py", bad, "-o", out)
    assert_refused(done, out, bad, "missing fields")
