"""Samples as read (``inputs``) -> the 16 kHz mono float32 signal Whisper's frontend expects.

By default every channel is averaged into one and other sample rates are resampled to 16 kHz
(polyphase, ``scipy.signal.resample_poly``'s filter). With ``paddlex=True``
(``DecodingOptions(compat="paddlex")``) the audio is taken as PaddleX takes it: channel 0 only, and
the sample rate is ignored (so anything that is not 16 kHz plays at the wrong speed, as in PaddleX).

The input's blocks are turned into 16 kHz mono one at a time (``Resampler`` streams), so memory
follows the 16 kHz result, not the source's rate or channel count. The result is refused when it
holds NaN or infinite samples, or samples too large for the log-mel's float32 arithmetic.

``load_audio`` returns the whole signal. ``open_samples`` returns a ``Samples`` that decodes the input
again from its start whenever its pieces are asked for, so a long file is never held whole: the
log-mel reads it twice (``mel.StreamedLogMel``), and memory stays that of a few blocks.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Iterable, Iterator, List, Optional

import numpy as np

from .errors import InputError
from .inputs import (AudioLimits, FetchOptions, NativeStderr, RawAudio, base64_payload, decoder_summary, fail, fetch_url,
                     from_array, from_bytes, from_file, kind_of, load_input, short_name)
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


def mono_16k_pieces(blocks: Iterable[np.ndarray], rate: int, paddlex: bool = False) -> Iterator[np.ndarray]:
    """float32 blocks [n] or [n, channels] at ``rate`` Hz, in order -> 16 kHz mono float32 pieces, in order.

    Each block is made mono (and resampled) as it arrives.
    """
    resampler = None if paddlex or rate == SAMPLE_RATE else Resampler(rate)
    for block in blocks:
        mono = to_mono(block, paddlex)  # [n]
        yield from resampler.push(mono) if resampler else [mono]
    if resampler:
        yield from resampler.finish()


def stream_16k_mono(blocks: Iterable[np.ndarray], rate: int, paddlex: bool = False) -> np.ndarray:
    """float32 blocks [n] or [n, channels] at ``rate`` Hz, in order -> 16 kHz mono float32 [M].

    Only the 16 kHz result accumulates (``mono_16k_pieces``).
    """
    pieces = list(mono_16k_pieces(blocks, rate, paddlex))
    if len(pieces) == 1:
        return np.ascontiguousarray(pieces[0], dtype=np.float32)  # [M]
    return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)  # [M]


class SampleCheck:
    """Counts a signal's samples piece by piece and refuses it (InputError) when any is NaN, infinite or
    too large for the log-mel; the message counts the whole signal, as when it is checked at once."""

    def __init__(self, name: str):
        self.name = name
        self.size = self.non_finite = 0
        self.peak = 0.0

    def add(self, piece: np.ndarray) -> bool:
        """Count one piece [n]; True while every sample so far is usable."""
        self.size += piece.size
        peak = float(np.max(np.abs(piece))) if piece.size else 0.0  # NaN or inf when any sample is
        if not np.isfinite(peak):
            self.non_finite += np.count_nonzero(~np.isfinite(piece))
        else:
            self.peak = max(self.peak, peak)
        return self.usable

    @property
    def usable(self) -> bool:
        """No sample counted so far is NaN, infinite or too large."""
        return self.non_finite == 0 and self.peak <= MAX_SAMPLE_MAGNITUDE

    def verdict(self) -> None:
        """Raise the InputError for a signal with unusable samples (after every piece was added)."""
        if self.non_finite:
            raise fail(self.name, f"{self.non_finite} of {self.size} samples are NaN or infinite")
        if self.peak > MAX_SAMPLE_MAGNITUDE:
            raise fail(self.name, f"samples reach {self.peak:.3g}, too large for the log-mel "
                                  f"(at most {MAX_SAMPLE_MAGNITUDE:.2g}; full scale is 1.0)")


def checked_samples(audio: np.ndarray, name: str) -> np.ndarray:
    """16 kHz mono [N], refused (InputError) when it holds NaN, infinite or overflowing samples."""
    check = SampleCheck(name)
    check.add(audio)
    check.verdict()
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
        raise InputError(f"{error}; the decoder said: {decoder_summary(native.lines)}") from None
    raise error


# -------------------------------------------------------------------------- inputs read more than once

PIECE_SAMPLES = 1 << 18  # samples per piece when an array already in memory is handed out in pieces


class Samples:
    """One input's audio as 16 kHz mono float32 pieces, decoded from its start by each ``pieces()`` call.

    ``open_raw()`` opens the input afresh (``RawAudio``); ``paddlex`` takes it as PaddleX does (channel
    0, rate ignored). Every pass checks the samples as ``load_audio`` does. What C decoders print while
    the input is opened or read is kept off stderr and collected in ``said``; ``explained`` adds it to
    the error of an input that fails.
    """

    def __init__(self, name: str, open_raw: Callable[[], RawAudio], paddlex: bool = False):
        self.name, self.open_raw, self.paddlex = name, open_raw, paddlex
        self.said: List[str] = []
        self.n_samples: Optional[int] = None  # 16 kHz samples, once a pass has read them all

    def pieces(self) -> Iterator[np.ndarray]:
        """The checked 16 kHz mono float32 pieces [n], in order; InputError once an unusable input ends."""
        raw = self.quietly(self.open_raw)
        check = SampleCheck(raw.name)
        for piece in mono_16k_pieces(self.quiet_blocks(raw), raw.rate, self.paddlex):
            if check.add(piece):
                yield from split_piece(piece)
        check.verdict()
        self.n_samples = check.size

    def all(self) -> np.ndarray:
        """The whole signal, 16 kHz mono float32 [N] (for backends that take it at once)."""
        try:
            return self.explained(lambda: np.concatenate([np.zeros(0, np.float32), *self.pieces()]))  # [N]
        except MemoryError:
            raise fail(self.name, "not enough memory to hold its audio") from None

    def quiet_blocks(self, raw: RawAudio) -> Iterator[np.ndarray]:
        """``raw``'s blocks [n] or [n, C], each decoded ``quietly``."""
        while True:
            block = self.quietly(lambda: next(raw.blocks, None))
            if block is None:
                return
            yield block

    def quietly(self, call: Callable):
        """``call()`` with fd 2 captured; C decoders' lines are kept in ``said``, others pass through."""
        with NativeStderr() as native:
            try:
                return call()
            finally:
                self.said.extend(native.lines)

    def explained(self, read: Callable):
        """``read()`` (a pass over the pieces); an InputError it raises gets the decoders' lines appended."""
        self.said.clear()
        try:
            return read()
        except InputError as err:
            if not self.said:
                raise
            raise InputError(f"{err}; the decoder said: {decoder_summary(self.said)}") from None


def split_piece(piece: np.ndarray) -> Iterator[np.ndarray]:
    """A piece [n] in slices of at most PIECE_SAMPLES (the log-mel copies what it is handed)."""
    for start in range(0, len(piece), PIECE_SAMPLES):
        yield piece[start:start + PIECE_SAMPLES]  # [<= PIECE_SAMPLES]



def open_samples(source, sample_rate: Optional[float] = None, paddlex: bool = False,
                 fetch: FetchOptions = FetchOptions(), name: Optional[str] = None,
                 limits: AudioLimits = AudioLimits()) -> Samples:
    """Any input ``load_audio`` takes -> ``Samples`` that decode it again on each pass.

    A local file is read from disk on every pass; a URL is fetched once, and base64 text decoded once,
    into bytes that are decoded on every pass; an array is kept. A fetch that fails or an unsupported
    input raises InputError here; everything else is found when the pieces are first read.
    """
    kind = kind_of(source)
    if kind == "path":
        name = name or str(source)
        return Samples(name, lambda: from_file(source, name, limits), paddlex)
    if kind == "array":
        name = name or "array"
        return Samples(name, lambda: from_array(source, SAMPLE_RATE if sample_rate is None else sample_rate, name,
                                                limits), paddlex)
    if kind == "url":
        name = name or source
        data = fetch_url(source, fetch, name)
    elif kind in ("data-uri", "base64"):
        name = name or short_name(source.strip())
        data = base64_payload(source, name)
    elif kind == "bytes":
        name, data = name or "bytes", bytes(source)
    elif kind == "file-object":
        name, data = name or str(getattr(source, "name", "file object")), source.read()
    else:
        load_input(source, sample_rate, fetch, name, limits)  # raises the refusal of this input
        raise AssertionError(f"unhandled input kind {kind}")
    return Samples(name, lambda: from_bytes(data, name, limits), paddlex)
