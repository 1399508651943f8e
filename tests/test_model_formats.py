"""``--model PATH`` in every checkpoint format, holding the real base weights.

base is written in each format by the writers the format tests check (openai-whisper ``.pt``, a
Hugging Face folder, whisper.cpp ggml), or taken as CTranslate2 shipped it (the weight packages'
float16 folder), and loaded by path: converted once into the cache. Lossless formats must hold
base's tensors bit for bit, its alignment heads and a tokenizer that encodes as base's; the ``.pt``
(whose vocabulary comes from OpenAI's ranks, not the CTranslate2 files) also transcribes ``en_jfk``
exactly as PaddleX (beam 5). Quantised ones are transcribed through the command line; what they
change on every golden clip is measured in bench/ (README, Models).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from numwhisper.formats import checkpoint, hub
from numwhisper.formats.ggml import write_ggml
from numwhisper.golden import files
from numwhisper.golden.check import check_result, options_for
from numwhisper.tokenizer import Tokenizer
from numwhisper.transcription import load_model, transcribe

from pt_writer import whisper_checkpoint, write_pt
from test_format_ct2 import write_ct2_dir
from test_format_hf import write_hf_folder

CLIP = "en_jfk"
LOSSLESS = ("openai .pt", "Hugging Face folder", "CTranslate2 float16", "ggml f16")
QUANTISED = ("CTranslate2 int8", "ggml q8_0")
TEXTS = (" the cat", "And so, my fellow Americans", "Übermäßig 東京 — naïve!", " the the  the")


def ct2_float16_folder(folder):
    """The weight packages' CTranslate2 folder of base, its split model.bin joined as CTranslate2 wrote it."""
    source, parts = hub.packaged_source("base")
    folder.mkdir()
    with open(folder / "model.bin", "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(source / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def base_in_every_format(model_files, tmp_path_factory) -> dict:
    """{format: path} of base written in that format."""
    folder = tmp_path_factory.mktemp("formats")
    base = checkpoint.load(model_files["base"])
    ct2_source, _ = hub.packaged_source("base")
    tokenizer = json.loads((ct2_source / "tokenizer.json").read_text(encoding="utf-8"))
    paths = {
        "openai .pt": write_pt(folder / "base.pt", whisper_checkpoint(base.dims.to_dict(), base.tensors)),
        "Hugging Face folder": folder / "whisper-base",
        "CTranslate2 float16": ct2_float16_folder(folder / "faster-whisper-base"),
        "CTranslate2 int8": folder / "faster-whisper-base-int8",
        "ggml f16": folder / "ggml-base.bin",
        "ggml q8_0": folder / "ggml-base-q8_0.bin",
    }
    write_hf_folder(paths["Hugging Face folder"], base)
    write_ct2_dir(paths["CTranslate2 int8"], base, "int8", tokenizer,
                  config={"alignment_heads": base.alignment_heads}, source_dtype="float16")
    write_ggml(base, paths["ggml f16"], "f16")
    write_ggml(base, paths["ggml q8_0"], "q8_0")
    return paths


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("fmt", LOSSLESS)
def test_lossless_formats_hold_base(fmt, base_in_every_format, model_files, cache):
    path = base_in_every_format[fmt]
    loaded, base = hub.load_checkpoint(str(path), cache=cache), checkpoint.load(model_files["base"])
    assert loaded.dims == base.dims and loaded.alignment_heads == base.alignment_heads
    for name, tensor in base.tensors.items():
        assert np.array_equal(loaded.tensors[name].astype(np.float32), tensor.astype(np.float32)), (fmt, name)
    ours, theirs = (Tokenizer.from_metadata(c.metadata, paddlex_lost_merge=True) for c in (loaded, base))
    for text in TEXTS:
        assert ours.encode(text) == theirs.encode(text), (fmt, text)
    assert (ours.sot_sequence("de"), ours.no_timestamps) == (theirs.sot_sequence("de"), theirs.no_timestamps)


def test_a_pt_file_transcribes_as_paddlex(base_in_every_format, cache):
    path = base_in_every_format["openai .pt"]
    ours = transcribe(load_model(str(path), cache=cache, device="cpu"), str(files.GOLDEN_DIR / "audio" / f"{CLIP}.wav"),
                      options_for("beam5"))["result"]
    verdict = check_result(f"base .pt/{CLIP}", "beam5", ours, files.load_result("base", CLIP, "beam5")["result"])
    assert verdict.ok, verdict.report


@pytest.mark.parametrize("fmt", QUANTISED)
def test_quantised_formats_transcribe_through_the_command_line(fmt, base_in_every_format, cache, repo, tmp_path):
    """A quantised file through ``python -m numwhisper --model PATH``: converted once into the cache
    (dequantised to float32), which later loads read as it is. On en_jfk the words are PaddleX's
    (measured for both; punctuation may move: int8 drops the comma after "so"; the other clips are
    in bench/)."""
    path = base_in_every_format[fmt]
    done = subprocess.run([sys.executable, "-m", "numwhisper", f"golden/audio/{CLIP}.wav", "--model", str(path),
                           "--device", "cpu", "--output_dir", str(tmp_path), "-f", "json"],
                          capture_output=True, text=True, cwd=repo, env={**os.environ, hub.CACHE_ENV: str(cache)})
    assert done.returncode == 0, done.stderr
    conversions = list((cache / "converted").glob(f"{path.name.split('.')[0]}-*.safetensors"))
    assert len(conversions) == 1, conversions
    stamp = conversions[0].stat().st_mtime_ns
    assert hub.resolve(str(path), cache=cache) == conversions[0] and conversions[0].stat().st_mtime_ns == stamp
    ours = json.loads((tmp_path / f"{CLIP}.json").read_text())["result"]
    assert words(ours["text"]) == words(files.load_result("base", CLIP, "beam5")["result"]["text"])


def words(text: str) -> list:
    """Lower-case words without punctuation."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()
