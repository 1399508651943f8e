"""PaddleX Whisper model directories (and the ``whisper_*.tar`` archives that hold one).

A directory holds ``inference.pdparams`` (a pickle: ``"dims"`` plus the state dict, Paddle layout),
``inference.yml`` (the predictor's decoding defaults) and ``assets/`` (``mel_filters.npz`` and a
``multilingual/`` or ``gpt2/`` tokenizer folder with ``vocab.json`` and ``merges.txt``). numwhisper
also writes ``numwhisper.json`` beside them with what PaddleX has no place for (alignment heads,
the special-token table, provenance), so a round trip loses nothing.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import TEMPORARY_SUFFIX, default_permissions
from ..dims import ModelDims
from ..errors import ModelFileError
from ..mel import mel_filters
from .checkpoint import Checkpoint, make_metadata
from .convert import from_paddle_state, hf_vocab_files, to_paddle_state, tokenizer_from_vocab_files
from .names import default_alignment_heads
from .pdparams import load_pdparams, save_pdparams

PDPARAMS = "inference.pdparams"
INFERENCE_YML = "inference.yml"
SIDECAR = "numwhisper.json"
PADDLEX_MULTILINGUAL_VOCAB = 51865  # PaddleX takes its multilingual tokenizer for this vocabulary size only

# PaddleX's decoding defaults: beam search of 5 at temperature 0 with language detection.
# PaddleX compares several values with the string "None", which is what YAML's `None` reads as.
INFERENCE_DEFAULTS = (
    ("temperature", "0"),
    ("temperature_increment_on_fallback", "None"),
    ("verbose", "False"),
    ("task", "transcribe"),
    ("language", "None"),
    ("compression_ratio_threshold", "2.4"),
    ("logprob_threshold", "-1.0"),
    ("no_speech_threshold", "0.6"),
    ("best_of", "5"),
    ("beam_size", "5"),
    ("patience", "None"),
    ("length_penalty", "None"),
    ("initial_prompt", "None"),
    ("condition_on_previous_text", "True"),
)
# Assets are built offline by numwhisper; PaddleX only fetches resource_path when assets/ is missing.
RESOURCE_PATH = "none: assets/ is written by numwhisper (rerun safetensors_to_paddle to rebuild it)"


def paddlex_model_name(dims: ModelDims) -> str:
    """The PaddleX model family a checkpoint runs as (PaddleX knows no English-only models)."""
    sizes = {384: "tiny", 512: "base", 768: "small", 1024: "medium", 1280: "large"}
    return f"whisper_{sizes.get(dims.n_text_state, 'base')}"


def tokenizer_folder(dims: ModelDims) -> str:
    """The ``assets/`` folder PaddleX reads the tokenizer from: ``multilingual`` for exactly
    ``PADDLEX_MULTILINGUAL_VOCAB`` entries (its own rule, which large-v3's 51866 does not meet), else ``gpt2``."""
    return "multilingual" if dims.n_vocab == PADDLEX_MULTILINGUAL_VOCAB else "gpt2"


def inference_yml(model_name: str) -> str:
    """The text of ``inference.yml`` (written by hand: PyYAML is not a dependency)."""
    lines = ["Global:", f"  model_name: {model_name}", f"resource_path: '{RESOURCE_PATH}'"]
    lines += [f"{key}: {value}" for key, value in INFERENCE_DEFAULTS]
    return "\n".join(lines) + "\n"


def write_paddle_dir(checkpoint: Checkpoint, out_dir, dtype=np.float32) -> None:
    """Write a complete PaddleX model directory; it appears whole or not at all."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ModelFileError(f"{out_dir}: already exists; remove it or choose another output")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=TEMPORARY_SUFFIX, dir=out_dir.parent))
    try:
        _fill_paddle_dir(checkpoint, staging, dtype)
        default_permissions(staging, directory=True)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fill_paddle_dir(checkpoint: Checkpoint, out: Path, dtype) -> None:
    dims = checkpoint.dims
    state = {"dims": dims.to_dict(), **to_paddle_state(checkpoint, dtype)}
    save_pdparams(state, out / PDPARAMS)
    (out / INFERENCE_YML).write_text(inference_yml(paddlex_model_name(dims)), encoding="utf-8")
    assets = out / "assets"
    tok_dir = assets / tokenizer_folder(dims)
    tok_dir.mkdir(parents=True)
    np.savez(assets / "mel_filters.npz", mel_80=mel_filters(80), mel_128=mel_filters(128))
    vocab, merges_text = hf_vocab_files(checkpoint)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (tok_dir / "merges.txt").write_text(merges_text, encoding="utf-8")
    sidecar = {key: checkpoint.metadata[key] for key in ("alignment_heads", "tokenizer.added_tokens", "source")}
    (out / SIDECAR).write_text(json.dumps(sidecar, ensure_ascii=False, indent=1), encoding="utf-8")


def read_paddle_dir(model_dir, dtype=None, tokenizer_dir=None) -> Checkpoint:
    """Read a PaddleX model directory into a canonical checkpoint.

    ``tokenizer_dir`` names a folder with ``vocab.json`` + ``merges.txt`` for directories that lack
    ``assets/`` (PaddleX downloads those on first use, which numwhisper never does).
    """
    model_dir = Path(model_dir)
    pdparams = model_dir / PDPARAMS
    state = load_pdparams(pdparams)
    if "dims" not in state or not isinstance(state["dims"], dict):
        raise ModelFileError(f"{pdparams}: no 'dims' entry; not a PaddleX Whisper model")
    dims = ModelDims.from_dict(state.pop("dims"), where=f"{pdparams}: dims")
    tensors = from_paddle_state(state, dims, str(pdparams), dtype=dtype)
    vocab, merges, added = _read_tokenizer(model_dir, dims, tokenizer_dir)
    sidecar = _read_sidecar(model_dir)
    heads = json.loads(sidecar["alignment_heads"]) if "alignment_heads" in sidecar else default_alignment_heads(dims)
    added = json.loads(sidecar["tokenizer.added_tokens"]) if "tokenizer.added_tokens" in sidecar else added
    source = sidecar.get("source", f"PaddleX model directory {model_dir.name}")
    return Checkpoint(tensors=tensors, dims=dims, metadata=make_metadata(dims, heads, vocab, merges, added, source))


def _read_tokenizer(model_dir: Path, dims: ModelDims, tokenizer_dir) -> tuple:
    folder = Path(tokenizer_dir) if tokenizer_dir else model_dir / "assets" / tokenizer_folder(dims)
    vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
    for path in (vocab_path, merges_path):
        if not path.is_file():
            raise ModelFileError(f"{path}: no such file (pass --tokenizer-dir with vocab.json and merges.txt)")
    try:
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{vocab_path}: not valid JSON ({err})") from None
    return tokenizer_from_vocab_files(vocab, merges_path.read_text(encoding="utf-8"), str(folder), dims.n_vocab)


def _read_sidecar(model_dir: Path) -> dict:
    path = model_dir / SIDECAR
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from None


def read_paddle_tar(tar_path, dtype=None, tokenizer_dir=None) -> Checkpoint:
    """Read a PaddleX ``whisper_*.tar`` archive (one model directory inside)."""
    tar_path = Path(tar_path)
    try:
        with tarfile.open(tar_path) as tar, tempfile.TemporaryDirectory() as tmp:
            tar.extractall(tmp, filter="data")
            return read_paddle_dir(find_model_dir(Path(tmp), str(tar_path)), dtype=dtype, tokenizer_dir=tokenizer_dir)
    except (tarfile.TarError, EOFError) as err:
        raise ModelFileError(f"{tar_path}: not a readable tar archive ({err})") from None


def find_model_dir(root: Path, where: str) -> Path:
    """The one folder under ``root`` that holds ``inference.pdparams``."""
    found = sorted(p.parent for p in root.rglob(PDPARAMS))
    if len(found) != 1:
        raise ModelFileError(f"{where}: expected one {PDPARAMS} inside, found {len(found)}")
    return found[0]
