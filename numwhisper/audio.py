"""Reading audio into the 16 kHz mono float32 signal Whisper's frontend expects.

Files are read with soundfile as float32. By default every channel is averaged into one and other
sample rates are resampled to 16 kHz (``scipy.signal.resample_poly``). With ``compat="paddlex"`` the
audio is taken as PaddleX takes it: channel 0 only, and the sample rate is ignored (so anything that
is not 16 kHz plays at the wrong speed, as in PaddleX).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import numpy as np
import scipy.signal
import soundfile

from .mel import SAMPLE_RATE

COMPAT_PADDLEX = "paddlex"


class AudioError(ValueError):
    """An audio input that cannot be used (missing, unreadable, empty or misshapen); names the input."""


def read_file(path: Union[str, Path]) -> tuple:
    """soundfile's float32 frames of a file -> (samples [N, channels], sample rate)."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such audio file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: cannot read audio ({err})") from None
    return data, int(rate)


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
    ratio = Fraction(target, rate)
    out = scipy.signal.resample_poly(samples, ratio.numerator, ratio.denominator)  # [M]
    return out.astype(np.float32)


def load_audio(source, sample_rate: Optional[int] = None, compat: Optional[str] = None) -> np.ndarray:
    """Audio as 16 kHz mono float32 [N] from a file path or an array.

    ``source``: a path (any format soundfile reads) or an array [N] / [N, channels]. ``sample_rate``:
    the rate of an array (default 16 kHz); files carry their own. ``compat="paddlex"``: channel 0 only
    and no resampling. Raises AudioError (a ValueError) naming the input when it is missing,
    unreadable or holds no samples.
    """
    if compat not in (None, COMPAT_PADDLEX):
        raise ValueError(f"compat must be None or {COMPAT_PADDLEX!r}, got {compat!r}")
    if isinstance(source, (str, Path)):
        name = str(source)
        samples, rate = read_file(source)
    else:
        name = "audio array"
        samples = np.asarray(source)
        rate = SAMPLE_RATE if sample_rate is None else int(sample_rate)
        if samples.ndim not in (1, 2) or not np.issubdtype(samples.dtype, np.number):
            raise AudioError(f"{name}: expected numbers shaped [N] or [N, channels], "
                             f"got {samples.dtype} {list(samples.shape)}")
        samples = samples.astype(np.float32, copy=False)
    if samples.size == 0:
        raise AudioError(f"{name}: no audio samples")
    if rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {rate}")
    mono = to_mono(samples, compat)  # [N]
    if compat != COMPAT_PADDLEX:
        mono = resample(mono, rate)  # [N * 16000 / rate]
    return np.ascontiguousarray(mono, dtype=np.float32)
