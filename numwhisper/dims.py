"""Whisper's shape: one model's hyper-parameters, the constants every size shares, and the checks
of what a backend is handed.

Both in-tree backends (``model`` on NumPy/Numba, ``paddle_backend`` on Paddle) build the same network
from these facts: layer norm with epsilon ``LAYER_NORM_EPS``, queries and keys each scaled by
``attention_scale`` (d_head ** -0.25), a 30 s window of ``2 * n_audio_ctx`` mel frames, and at most
``n_text_ctx`` tokens in the decoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .errors import ModelFileError
from .languages import is_multilingual

LAYER_NORM_EPS = 1e-5  # Whisper's (and paddle.nn.LayerNorm's default) epsilon


@dataclass(frozen=True)
class ModelDims:
    """Whisper's hyper-parameters, named as in OpenAI's ``ModelDimensions``."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    @classmethod
    def from_dict(cls, values: dict, where: str = "dims") -> "ModelDims":
        """Build from a mapping, refusing missing, unknown or non-positive-integer fields (ModelFileError)."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        unknown = [k for k in values if k not in names]
        if missing or unknown:
            raise ModelFileError(f"{where}: missing fields {missing}, unknown fields {unknown}")
        for name in names:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ModelFileError(f"{where}: field {name} must be a positive integer, got {value!r}")
        return cls(**{n: int(values[n]) for n in names})

    def to_dict(self) -> dict:
        """The fields as a plain dict (JSON and pickle friendly)."""
        return dataclasses.asdict(self)

    @property
    def is_multilingual(self) -> bool:
        """Whether the vocabulary has language tokens (``languages.is_multilingual``)."""
        return is_multilingual(self.n_vocab)

    @property
    def n_window_frames(self) -> int:
        """Mel frames of one encoder window (3000: two per audio position)."""
        return 2 * self.n_audio_ctx


def attention_scale(d: int, n_head: int) -> float:
    """Whisper's factor applied to queries and to keys alike: d_head ** -0.25."""
    return (d // n_head) ** -0.25


def checked_mel(dims: ModelDims, mel) -> np.ndarray:
    """One window's mel as float32 [n_mels, n_window_frames]; ValueError for any other shape."""
    mel = np.asarray(mel, dtype=np.float32)  # [n_mels, 3000]
    if mel.shape != (dims.n_mels, dims.n_window_frames):
        raise ValueError(f"encode: mel must be [{dims.n_mels}, {dims.n_window_frames}], got {list(mel.shape)}")
    return mel


def checked_tokens(dims: ModelDims, tokens, batch: int, start: int, dtype=np.intp) -> np.ndarray:
    """New decoder tokens [batch, T_new] after ``start`` cached ones, as ``dtype``; ValueError when the
    shape is not [batch, T_new], the text context would overflow, or an id lies outside the vocabulary."""
    tokens = np.asarray(tokens, dtype=dtype)  # [B, T_new]
    if tokens.ndim != 2 or tokens.shape[0] != batch:
        raise ValueError(f"decode: tokens must be [{batch}, T_new], got {list(tokens.shape)}")
    if start + tokens.shape[1] > dims.n_text_ctx:
        raise ValueError(f"decode: {start + tokens.shape[1]} tokens exceed the text context of {dims.n_text_ctx}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= dims.n_vocab):
        raise ValueError(f"decode: token ids must lie in [0, {dims.n_vocab})")
    return tokens
