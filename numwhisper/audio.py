"""Samples as read (``inputs``) -> the 16 kHz mono float32 signal Whisper's frontend expects.

By default every channel is averaged into one and other sample rates are resampled to 16 kHz
(``scipy.signal.resample_poly``). With ``paddlex=True`` (``DecodingOptions(compat="paddlex")``) the
audio is taken as PaddleX takes it: channel 0 only, and the sample rate is ignored (so anything that
is not 16 kHz plays at the wrong speed, as in PaddleX).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import numpy as np

from .inputs import FetchOptions, fail, load_input
from .mel import SAMPLE_RATE


def to_mono(samples: np.ndarray, paddlex: bool = False) -> np.ndarray:
    """[N] or [N, channels] -> [N]: the channel mean, or channel 0 when ``paddlex``."""
    if samples.ndim == 1:
        return samples
    if paddlex:
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


def to_16k_mono(samples: np.ndarray, rate: int, paddlex: bool = False) -> np.ndarray:
    """float32 samples [N] or [N, channels] at ``rate`` Hz -> contiguous 16 kHz mono float32 [M]."""
    mono = to_mono(samples, paddlex)  # [N]
    if not paddlex:
        mono = resample(mono, rate)  # [N * 16000 / rate]
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_audio(source, sample_rate: Optional[float] = None, paddlex: bool = False,
               fetch: FetchOptions = FetchOptions(), name: Optional[str] = None) -> np.ndarray:
    """Any input ``inputs.load_input`` reads (path, URL, bytes, base64, array at ``sample_rate``) ->
    16 kHz mono float32 [N].

    Raises InputError (a ValueError) naming the input when it is missing, unreadable, holds no
    samples, or holds samples that are NaN or infinite.
    """
    raw = load_input(source, sample_rate, fetch, name)
    audio = to_16k_mono(raw.samples, raw.rate, paddlex)  # [N]
    bad = np.count_nonzero(~np.isfinite(audio))
    if bad:
        raise fail(raw.name, f"{bad} of {audio.size} samples are NaN or infinite")
    return audio
