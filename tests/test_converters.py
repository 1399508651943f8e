"""Converters on the real base and tiny.en weights: CTranslate2 -> safetensors -> Paddle -> safetensors."""

import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from numwhisper.formats import checkpoint, hub
from numwhisper.formats.convert import WEIGHT_TABLE, rule_for, table_key
from numwhisper.formats.ct2 import read_model_dir
from numwhisper.formats.paddlex_dir import INFERENCE_DEFAULTS, PDPARAMS, read_paddle_dir

EXPECTED = {
    "base": dict(n_audio_state=512, n_audio_layer=6, n_vocab=51865, n_tensors=245, tokenizer="multilingual"),
    "tiny.en": dict(n_audio_state=384, n_audio_layer=4, n_vocab=51864, n_tensors=167, tokenizer="gpt2"),
}


def run_converter(repo, script, *args):
    """Run a converter script as a user would; return the completed process."""
    return subprocess.run([sys.executable, str(repo / "converters" / script), *map(str, args)],
                          capture_output=True, text=True, cwd=repo)


def ct2_source(name):
    return hub.packaged_source(name)


@pytest.mark.parametrize("name", EXPECTED)
def test_packaged_model_is_complete(model_files, name):
    ckpt = checkpoint.load(model_files[name])
    want = EXPECTED[name]
    assert ckpt.dims.n_audio_state == want["n_audio_state"] and ckpt.dims.n_audio_layer == want["n_audio_layer"]
    assert ckpt.dims.n_vocab == want["n_vocab"] and len(ckpt.tensors) == want["n_tensors"]
    assert all(t.dtype == np.float16 for t in ckpt.tensors.values()), "CT2 float16 must stay float16"
    vocab = json.loads(ckpt.metadata["tokenizer.vocab"])
    added = json.loads(ckpt.metadata["tokenizer.added_tokens"])
    assert added["<|endoftext|>"] == max(vocab.values())
    assert max(added.values()) + 1 + 1501 == ckpt.dims.n_vocab  # then 1501 timestamp tokens <|0.00|>..<|30.00|>
    assert len(ckpt.alignment_heads) == 8


@pytest.mark.parametrize("name", EXPECTED)
def test_unfused_projections_rebuild_the_ct2_tensors(model_files, name):
    """Concatenating our q/k/v (and cross k/v) gives back every fused CT2 tensor; key bias slots are zero."""
    ct2_dir, parts = ct2_source(name)
    variables, _, _ = read_model_dir(ct2_dir, parts)
    ckpt = checkpoint.load(model_files[name])
    rebuilt = {}
    for tensor_name, tensor in ckpt.tensors.items():
        rule, layer = rule_for(tensor_name)
        rebuilt.setdefault(rule.ct2.format(layer=layer), {})[rule.part] = tensor
    for source, pieces in rebuilt.items():
        count = next(iter(pieces))[1]
        fused = variables[source]
        if len(pieces) < count:  # the missing piece is a key bias, which Whisper does not have
            assert source.endswith("/bias")
            n = fused.shape[0] // count
            missing = [i for i in range(count) if (i, count) not in pieces]
            assert np.all(fused[missing[0] * n:(missing[0] + 1) * n] == 0), source
            continue
        joined = np.concatenate([pieces[(i, count)] for i in range(count)])
        assert np.array_equal(joined, fused), source
    assert {table_key(n) for n in ckpt.tensors} == set(WEIGHT_TABLE)


@pytest.mark.parametrize("name", EXPECTED)
def test_round_trip_is_bit_exact(repo, model_files, tmp_path, name):
    ct2_dir, parts = ct2_source(name)
    first = tmp_path / "first.safetensors"
    bin_args = [a for part in parts for a in ("--bin-part", part)]
    source_text = hub.PACKAGED_MODELS[name].description
    done = run_converter(repo, "ct2_to_safetensors.py", ct2_dir, *bin_args, "-o", first, "--source", source_text)
    assert done.returncode == 0, done.stderr
    assert first.read_bytes() == model_files[name].read_bytes(), "script and library conversions differ"

    paddle_dir = tmp_path / "paddle_model"
    done = run_converter(repo, "safetensors_to_paddle.py", first, "-o", paddle_dir)
    assert done.returncode == 0, done.stderr
    second = tmp_path / "second.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", paddle_dir, "-o", second, "--dtype", "float16")
    assert done.returncode == 0, done.stderr
    assert second.read_bytes() == first.read_bytes()

    archive = tmp_path / f"whisper_{name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(paddle_dir, arcname=f"whisper_{name}")
    from_tar = tmp_path / "from_tar.safetensors"
    done = run_converter(repo, "paddle_to_safetensors.py", archive, "-o", from_tar, "--dtype", "float16")
    assert done.returncode == 0, done.stderr
    assert from_tar.read_bytes() == first.read_bytes()


def test_paddle_directory_is_what_paddlex_reads(repo, model_files, tmp_path):
    """paddle.load reads our pdparams; Linear weights are [in, out]; yml and assets are complete."""
    import paddle  # the test extra installs paddlepaddle (CPU)

    out = tmp_path / "whisper_base"
    assert run_converter(repo, "safetensors_to_paddle.py", model_files["base"], "-o", out).returncode == 0
    state = paddle.load(str(out / PDPARAMS))
    ckpt = checkpoint.load(model_files["base"])
    assert state["dims"] == ckpt.dims.to_dict()
    query = state["encoder.blocks.0.attn.query.weight"]
    assert isinstance(query, paddle.Tensor) and query.dtype == paddle.float32
    assert np.array_equal(query.numpy(), ckpt.tensors["encoder.blocks.0.attn.query.weight"].astype(np.float32).T)
    assert len(state) == 1 + len(ckpt.tensors)
    yml = (out / "inference.yml").read_text()
    for key, value in INFERENCE_DEFAULTS:
        assert f"\n{key}: {value}\n" in yml
    with np.load(out / "assets" / "mel_filters.npz") as filters:
        assert filters["mel_80"].shape == (80, 201) and filters["mel_80"].dtype == np.float32
    vocab = json.loads((out / "assets" / "multilingual" / "vocab.json").read_text())
    assert vocab["<|endoftext|>"] == 50257
    merges = (out / "assets" / "multilingual" / "merges.txt").read_text()
    assert merges.startswith("#version") and merges.endswith("\n")


def test_directory_without_assets_takes_a_tokenizer_dir(repo, model_files, tmp_path):
    out = tmp_path / "whisper_tiny"
    assert run_converter(repo, "safetensors_to_paddle.py", model_files["tiny.en"], "-o", out).returncode == 0
    tokenizer_dir = tmp_path / "gpt2"
    (out / "assets" / "gpt2").rename(tokenizer_dir)
    (out / "numwhisper.json").unlink()  # as a genuine PaddleX directory: no sidecar
    done = run_converter(repo, "paddle_to_safetensors.py", out, "-o", tmp_path / "x.safetensors")
    assert done.returncode == 2 and "vocab.json" in done.stderr and "--tokenizer-dir" in done.stderr
    ckpt = read_paddle_dir(out, tokenizer_dir=tokenizer_dir)
    original = checkpoint.load(model_files["tiny.en"])
    assert all(np.array_equal(ckpt.tensors[k], original.tensors[k]) for k in original.tensors)
    assert ckpt.metadata["tokenizer.vocab"] == original.metadata["tokenizer.vocab"]
