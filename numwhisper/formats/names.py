"""The named Whisper models: their dims and the cross-attention heads that align words.

OpenAI publishes each model with a list of alignment heads (the decoder cross-attention heads whose
weights follow the audio timeline closely enough to time words). Files that do not carry them
(openai-whisper's ``.pt``, whisper.cpp's ggml) get them from this table by the model's name, when
the file's dims are that model's; otherwise every head of the decoder's second half is used.
``large`` and ``turbo`` are openai-whisper's aliases of ``large-v3`` and ``large-v3-turbo``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..dims import ModelDims


@dataclass(frozen=True)
class NamedModel:
    """One published Whisper model."""

    dims: ModelDims
    alignment_heads: tuple  # ((decoder layer, head), ...)


def _dims(n_mels: int, n_vocab: int, width: int, heads: int, layers: int, text_layers: Optional[int] = None) -> ModelDims:
    return ModelDims(n_mels=n_mels, n_audio_ctx=1500, n_audio_state=width, n_audio_head=heads, n_audio_layer=layers,
                     n_vocab=n_vocab, n_text_ctx=448, n_text_state=width, n_text_head=heads,
                     n_text_layer=text_layers or layers)


_EN, _MULTI, _V3 = 51864, 51865, 51866  # vocabulary sizes: English-only, multilingual, large-v3's (with <|yue|>)

NAMED_MODELS = {
    "tiny.en": NamedModel(_dims(80, _EN, 384, 6, 4), ((1, 0), (2, 0), (2, 5), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4))),
    "tiny": NamedModel(_dims(80, _MULTI, 384, 6, 4), ((2, 2), (3, 0), (3, 2), (3, 3), (3, 4), (3, 5))),
    "base.en": NamedModel(_dims(80, _EN, 512, 8, 6), ((3, 3), (4, 7), (5, 1), (5, 5), (5, 7))),
    "base": NamedModel(_dims(80, _MULTI, 512, 8, 6), ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6))),
    "small.en": NamedModel(_dims(80, _EN, 768, 12, 12), (
        (6, 6), (7, 0), (7, 3), (7, 8), (8, 2), (8, 5), (8, 7), (9, 0), (9, 4), (9, 8), (9, 10), (10, 0), (10, 1),
        (10, 2), (10, 3), (10, 6), (10, 11), (11, 2), (11, 4))),
    "small": NamedModel(_dims(80, _MULTI, 768, 12, 12), (
        (5, 3), (5, 9), (8, 0), (8, 4), (8, 7), (8, 8), (9, 0), (9, 7), (9, 9), (10, 5))),
    "medium.en": NamedModel(_dims(80, _EN, 1024, 16, 24), (
        (11, 4), (14, 1), (14, 12), (14, 14), (15, 4), (16, 0), (16, 4), (16, 9), (17, 12), (17, 14), (18, 7),
        (18, 10), (18, 15), (20, 0), (20, 3), (20, 9), (20, 14), (21, 12))),
    "medium": NamedModel(_dims(80, _MULTI, 1024, 16, 24), ((13, 15), (15, 4), (15, 15), (16, 1), (20, 0), (23, 4))),
    "large-v1": NamedModel(_dims(80, _MULTI, 1280, 20, 32), (
        (9, 19), (11, 2), (11, 4), (11, 17), (22, 7), (22, 11), (22, 17), (23, 2), (23, 15))),
    "large-v2": NamedModel(_dims(80, _MULTI, 1280, 20, 32), (
        (10, 12), (13, 17), (16, 11), (16, 12), (16, 13), (17, 15), (17, 16), (18, 4), (18, 11), (18, 19), (19, 11),
        (21, 2), (21, 3), (22, 3), (22, 9), (22, 12), (23, 5), (23, 7), (23, 13), (25, 5), (26, 1), (26, 12),
        (27, 15))),
    "large-v3": NamedModel(_dims(128, _V3, 1280, 20, 32), (
        (7, 0), (10, 17), (12, 18), (13, 12), (16, 1), (17, 14), (19, 11), (21, 4), (24, 1), (25, 6))),
    "large-v3-turbo": NamedModel(_dims(128, _V3, 1280, 20, 32, text_layers=4),
                                 ((2, 4), (2, 11), (3, 3), (3, 6), (3, 11), (3, 14))),
}
ALIASES = {"large": "large-v3", "turbo": "large-v3-turbo"}


def canonical_name(name: str) -> Optional[str]:
    """The table's name for a model name or alias ("turbo" -> "large-v3-turbo"); None if unknown."""
    name = ALIASES.get(name, name)
    return name if name in NAMED_MODELS else None


# A model's name inside a file or folder name: "small.pt", "ggml-small.en-q5_0.bin", "whisper-large-v3".
_NAME_IN_FILE = re.compile(r"(?:^|[-_/])(" + "|".join(
    re.escape(n) for n in sorted([*NAMED_MODELS, *ALIASES], key=len, reverse=True)) + r")(?=$|[-_.])")


def name_in_file_name(file_name: str) -> Optional[str]:
    """The published model a file or folder name mentions, if any ("ggml-base.en.bin" -> "base.en")."""
    match = _NAME_IN_FILE.search(file_name.lower())
    return canonical_name(match.group(1)) if match else None


def default_alignment_heads(dims: ModelDims) -> list:
    """openai-whisper's choice when a model names no alignment heads: every head of the decoder's second half."""
    return [[layer, head] for layer in range(dims.n_text_layer // 2, dims.n_text_layer)
            for head in range(dims.n_text_head)]


def fallback_alignment_heads(file_name: str, dims: ModelDims) -> list:
    """The heads of a file that names none: the published model's it is named after, else the default."""
    return alignment_heads_by_name(file_name, dims) or default_alignment_heads(dims)


def alignment_heads_by_name(file_name: str, dims: ModelDims) -> Optional[list]:
    """The published alignment heads of the model a file is named after, when the file's dims are that
    model's (a fine-tune keeps its base model's name and dims, and inherits its heads); else None."""
    name = name_in_file_name(file_name)
    if name is None or NAMED_MODELS[name].dims != dims:
        return None
    return [list(pair) for pair in NAMED_MODELS[name].alignment_heads]
