"""Turning decoded audio into the 16 kHz mono float32 signal Whisper's frontend expects.

By default every channel is averaged into one and other sample rates are resampled to 16 kHz
(``scipy.signal.resample_poly``). With ``compat="paddlex"`` the audio is taken as PaddleX takes it:
channel 0 only, and the sample rate is ignored (so anything that is not 16 kHz plays at the wrong
speed, as in PaddleX). Reading inputs (files, URLs, bytes, arrays) is ``inputs.load_input``'s job.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import numpy as np

from .mel import SAMPLE_RATE

COMPAT_PADDLEX = "paddlex"


class AudioError(ValueError):
    """An audio input that cannot be used (missing, unreadable, empty or misshapen); names the input."""


def to_mono(samples: np.ndarray, compat: Optional[str] = None) -> np.ndarray:
    """[N] or [N, channels] -> [N]: the channel mean, or channel 0 when compat="paddlex"."""
    if samples.ndim == 1:
        return samples
    if compat == COMPAT_PADDLEX:
        return samples[:, 0]  # [N]
    return samples.mean(axis=1, dtype=np.float32)  # [N]


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono samples [N] from ``rate`` to ``target`` Hz -> float32 [N * target / rate]."""
    if rate == target:
        return samples
    import scipy.signal  # about 1 s to import; only audio that is not at 16 kHz needs it

    ratio = Fraction(target, rate)
    out = scipy.signal.resample_poly(samples, ratio.numerator, ratio.denominator)  # [M]
    return out.astype(np.float32)


def to_16k_mono(samples: np.ndarray, rate: int, compat: Optional[str] = None) -> np.ndarray:
    """float32 frames [N] or [N, channels] at ``rate`` Hz -> contiguous 16 kHz mono float32 [M]."""
    if compat not in (None, COMPAT_PADDLEX):
        raise ValueError(f"compat must be None or {COMPAT_PADDLEX!r}, got {compat!r}")
    mono = to_mono(samples, compat)  # [N]
    if compat != COMPAT_PADDLEX:
        mono = resample(mono, rate)  # [N * 16000 / rate]
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_audio(source, sample_rate: Optional[int] = None, compat: Optional[str] = None) -> np.ndarray:
    """Any input ``inputs.load_input`` takes (path, URL, bytes, base64, array) -> 16 kHz mono float32 [N].

    Raises AudioError (a ValueError) naming the input when it is missing, unreadable or holds no samples.
    """
    from .inputs import load_input  # inputs builds on this module

    return load_input(source, sample_rate=sample_rate, compat=compat)[1]
