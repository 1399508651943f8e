"""Samples as read (``inputs``) -> the 16 kHz mono float32 signal Whisper's frontend expects.

By default every channel is averaged into one and other sample rates are resampled to 16 kHz
(polyphase, ``scipy.signal.resample_poly``'s filter). With ``paddlex=True``
(``DecodingOptions(compat="paddlex")``) the audio is taken as PaddleX takes it: channel 0 only, and
the sample rate is ignored (so anything that is not 16 kHz plays at the wrong speed, as in PaddleX).

The input's blocks are turned into 16 kHz mono one at a time (``Resampler`` streams), so memory
follows the 16 kHz result, not the source's rate or channel count. The result is refused when it
holds NaN or infinite samples, or samples too large for the log-mel's float32 arithmetic.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable, List, Optional

import numpy as np

from .errors import InputError
from .inputs import AudioLimits, FetchOptions, NativeStderr, RawAudio, fail, load_input
from .mel import MAX_SAMPLE_MAGNITUDE, SAMPLE_RATE

RESAMPLE_STEP = 1 << 16  # source samples resampled at a time (rounded to a multiple of the ratio's denominator)
FILTER_HALF_WIDTH = 10   # resample_poly's default: the filter spans 10 zero crossings each side


def to_mono(samples: np.ndarray, paddlex: bool = False) -> np.ndarray:
    """[N] or [N, channels] -> [N]: the channel mean, or channel 0 when ``paddlex``."""
    if samples.ndim == 1:
        return samples
    if paddlex:
        return samples[:, 0]  # [N]
    return samples.mean(axis=1, dtype=np.float32)  # [N]


class Resampler:
    """Polyphase resampling from ``rate`` to ``target`` Hz, fed block by block.

    Output is identical, sample for sample, to ``scipy.signal.resample_poly`` over the whole signal:
    the signal is cut into steps whose starts map to whole output samples (multiples of the reduced
    ratio's denominator), and each step is resampled with enough input on both sides to cover the
    filter, then only its own outputs are kept.
    """

    def __init__(self, rate: int, target: int = SAMPLE_RATE):
        ratio = Fraction(target, rate)
        self.up, self.down = ratio.numerator, ratio.denominator
        reach = -(-FILTER_HALF_WIDTH * max(self.up, self.down) // self.up) + 1  # input samples the filter spans
        self.context = self.down * -(-reach // self.down)  # [in] input kept each side, a multiple of down
        self.step = self.down * max(1, RESAMPLE_STEP // self.down)  # [in] input samples per step
        self.pending = np.zeros(0, np.float32)  # [context + unconsumed] input from (start - context)
        self.start = 0     # input index of the next step's first sample
        self.received = 0  # input samples pushed so far

    def push(self, samples: np.ndarray) -> List[np.ndarray]:
        """Add mono input [n]; returns the output pieces that are now complete."""
        self.pending = np.concatenate([self.pending, samples])  # [<= 2 context + step + n]
        self.received += len(samples)
        out = []
        while self.received >= self.start + self.step + self.context:
            out.append(self._step(self.step))
        return out

    def finish(self) -> List[np.ndarray]:
        """The remaining output, once all input has been pushed."""
        out = []
        while self.start < self.received:
            out.append(self._step(min(self.step, self.received - self.start)))
        return out

    def _step(self, count: int) -> np.ndarray:
        """Resample input [start, start + count) with its context -> its float32 outputs."""
        import scipy.signal  # about 1 s to import; only audio that is not at 16 kHz needs it

        lead = min(self.start, self.context)  # [in] context before the step actually available
        window = self.pending[:lead + count + self.context]  # [lead + count + context] or fewer at the end
        out = scipy.signal.resample_poly(window, self.up, self.down)  # [~len(window) * up / down]
        first = lead * self.up // self.down
        end = self.start + count
        if end < self.received:  # a whole step (a multiple of down)
            n_out = count * self.up // self.down
        else:  # the signal's last step: resample_poly's length is ceil(N * up / down)
            n_out = -(-end * self.up // self.down) - self.start * self.up // self.down
        self.start = end
        keep_from = lead + count - min(self.start, self.context)
        self.pending = self.pending[keep_from:]  # [context + unconsumed]
        return out[first:first + n_out].astype(np.float32)  # [n_out]


def to_16k_mono(samples: np.ndarray, rate: int, paddlex: bool = False) -> np.ndarray:
    """float32 samples [N] or [N, channels] at ``rate`` Hz -> contiguous 16 kHz mono float32 [M]."""
    return stream_16k_mono([samples], rate, paddlex)


def stream_16k_mono(blocks: Iterable[np.ndarray], rate: int, paddlex: bool = False) -> np.ndarray:
    """float32 blocks [n] or [n, channels] at ``rate`` Hz, in order -> 16 kHz mono float32 [M].

    Each block is made mono (and resampled) as it arrives, so only the 16 kHz result accumulates.
    """
    resampler = None if paddlex or rate == SAMPLE_RATE else Resampler(rate)
    pieces = []
    for block in blocks:
        mono = to_mono(block, paddlex)  # [n]
        pieces.extend(resampler.push(mono) if resampler else [mono])
    if resampler:
        pieces.extend(resampler.finish())
    if len(pieces) == 1:
        return np.ascontiguousarray(pieces[0], dtype=np.float32)  # [M]
    return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)  # [M]


def checked_samples(audio: np.ndarray, name: str) -> np.ndarray:
    """16 kHz mono [N], refused (InputError) when it holds NaN, infinite or overflowing samples."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0  # NaN or inf when any sample is
    if not np.isfinite(peak):
        bad = np.count_nonzero(~np.isfinite(audio))
        raise fail(name, f"{bad} of {audio.size} samples are NaN or infinite")
    if peak > MAX_SAMPLE_MAGNITUDE:
        raise fail(name, f"samples reach {peak:.3g}, too large for the log-mel (at most {MAX_SAMPLE_MAGNITUDE:.2g}; "
                         "full scale is 1.0)")
    return audio


def decoded(raw: RawAudio, paddlex: bool) -> np.ndarray:
    """A RawAudio's blocks -> checked 16 kHz mono float32 [N]."""
    try:
        audio = stream_16k_mono(raw.blocks, raw.rate, paddlex)  # [N]
    except MemoryError:
        raise fail(raw.name, "not enough memory to hold its audio") from None
    return checked_samples(audio, raw.name)


def load_audio(source, sample_rate: Optional[float] = None, paddlex: bool = False,
               fetch: FetchOptions = FetchOptions(), name: Optional[str] = None,
               limits: AudioLimits = AudioLimits()) -> np.ndarray:
    """Any input ``inputs.load_input`` reads (path, URL, bytes, base64, array at ``sample_rate``) ->
    16 kHz mono float32 [N].

    Raises InputError (a ValueError) naming the input when it is missing, unreadable, outside the
    ``limits``, holds no samples, or holds samples that are NaN, infinite or too large. What a C
    decoder prints meanwhile is kept off stderr; when the input fails, it is added to the message.
    """
    with NativeStderr() as native:
        try:
            return decoded(load_input(source, sample_rate, fetch, name, limits), paddlex)
        except Exception as err:  # noqa: BLE001 - re-raised below, after stderr is restored
            error = err
    if native.lines and isinstance(error, InputError):
        raise InputError(f"{error}; the decoder said: {native.summary()}") from None
    raise error
