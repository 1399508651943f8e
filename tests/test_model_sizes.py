"""Every size-dependent path, on random-weight stand-ins of large-v3 and large-v3-turbo.

Their weights are not here, so ``formats.synthetic`` builds seeded random checkpoints with the
features that set those models apart (128 mel bins, the 51,866-token vocabulary whose <|yue|> moves
every later special id, an 8-layer encoder over a 4-layer decoder) and the NumPy backend is checked
against the Paddle backend, an independent implementation, with the parity command's own stage
checks and tolerances. openai-whisper's PyTorch model is the second reference; it needs torch, so
``bench/model_sizes.py`` runs that comparison (its outcome is in bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from numwhisper.formats import checkpoint
from numwhisper.formats.names import NAMED_MODELS, alignment_heads_by_name, name_in_file_name
from numwhisper.formats.synthetic import SHAPES, random_checkpoint
from numwhisper.golden.check import check_result
from numwhisper.languages import LANGUAGES, paddlex_code

CLIPS = {"large-v3": "en_jfk,zh_aishell_BAC009S0724W0121", "large-v3-turbo": "en_jfk"}


@pytest.fixture(scope="module")
def random_files(model_files, tmp_path_factory) -> dict:
    """{shape: path} of the random-weight stand-ins, written once for the module."""
    folder = tmp_path_factory.mktemp("sizes")
    vocabulary = checkpoint.load(model_files["base"])
    paths = {}
    for shape, dims in SHAPES.items():
        paths[shape] = folder / f"{shape}-random.safetensors"
        checkpoint.save(random_checkpoint(dims, vocabulary, label=shape), paths[shape])
    return paths


def run(repo, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, cwd=repo)


@pytest.mark.parametrize("shape", SHAPES)
def test_tensor_stages_match_the_paddle_backend(shape, random_files, repo):
    done = run(repo, "numwhisper.golden", "check", "--backend", "numpy", "--reference", "paddle",
               "--model-file", random_files[shape], "--cases", CLIPS[shape])
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.endswith("PASS")}
    assert set(rows) == {"mel", "encoder", "logits", "language"}, done.stdout
    n_clips = len(CLIPS[shape].split(","))
    assert f"probs {100 * n_clips}, all" in rows["language"]  # 100 languages (with <|yue|>) on each clip
    assert f"rows {1500 * n_clips}, all" in rows["encoder"]


def test_the_command_line_transcribes_a_turbo_shaped_model_as_the_paddle_backend_does(random_files, repo, tmp_path):
    results = {}
    for device in ("cpu", "paddle:cpu"):
        out = tmp_path / device.replace(":", "_")
        done = run(repo, "numwhisper", "golden/audio/en_jfk.wav", "--model", random_files["large-v3-turbo"],
                   "--device", device, "--beam_size", "None", "--output_dir", out, "-f", "json")
        assert done.returncode == 0, done.stderr
        results[device] = json.loads((out / "en_jfk.json").read_text())["result"]
    ours, theirs = results["cpu"], results["paddle:cpu"]
    assert ours["language"] in {paddlex_code(c) for c in LANGUAGES} and ours["segments"]
    verdict = check_result("large-v3-turbo-random/en_jfk", "greedy", ours, theirs)
    assert verdict.ok, verdict.report


def test_published_alignment_heads_are_those_of_the_real_files(model_files):
    for name in ("base", "tiny.en"):
        real = checkpoint.load(model_files[name])
        assert real.dims == NAMED_MODELS[name].dims
        assert alignment_heads_by_name(f"{name}.pt", real.dims) == real.alignment_heads
        assert alignment_heads_by_name("ggml-large-v3.bin", real.dims) is None  # dims of another model


@pytest.mark.parametrize("file_name, name", [
    ("small.pt", "small"), ("ggml-small.en-q5_0.bin", "small.en"), ("whisper-large-v3", "large-v3"),
    ("faster-whisper-large-v3-turbo", "large-v3-turbo"), ("turbo.pt", "large-v3-turbo"), ("large.pt", "large-v3"),
    ("ggml-base.en.bin", "base.en"), ("model.bin", None), ("tinyfoo.pt", None), ("mediumish", None),
])
def test_a_model_name_is_found_in_file_names(file_name, name):
    assert name_in_file_name(file_name) == name


def test_named_shapes_keep_what_sets_each_model_apart():
    v3, turbo = NAMED_MODELS["large-v3"].dims, NAMED_MODELS["large-v3-turbo"].dims
    assert (v3.n_mels, v3.n_vocab, turbo.n_text_layer, turbo.n_audio_layer) == (128, 51866, 4, 32)
    for stand_in, named in ((SHAPES["large-v3"], v3), (SHAPES["large-v3-turbo"], turbo)):
        assert (stand_in.n_mels, stand_in.n_vocab, stand_in.n_audio_ctx) == (named.n_mels, named.n_vocab, named.n_audio_ctx)
    assert SHAPES["large-v3-turbo"].n_audio_layer > SHAPES["large-v3-turbo"].n_text_layer
    for name, model in NAMED_MODELS.items():
        assert all(layer < model.dims.n_text_layer and head < model.dims.n_text_head
                   for layer, head in model.alignment_heads), name
