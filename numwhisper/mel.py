"""Log-mel spectrogram frontend, computed the way PaddleX's multilingual_speech_recognition pipeline does.

PaddleX takes the log-mel of the WHOLE file (no 30 s of silence appended first), so the dynamic-range
floor (max - 8) uses the maximum over the whole file; each 30 s window is then cut from that and padded
with zeros in the log-mel domain (``pad_or_trim``).

The same values come window by window from ``StreamedLogMel``, in memory that does not grow with the
file: a first pass over the samples finds the whole file's maximum, a second computes the frames each
window needs. Both paths compute the power and its mel product in the same blocks of
``MEL_BLOCK_FRAMES`` frames counted from the file's first frame (``mel_power_blocks``), because BLAS
may round a product's columns differently when it is cut differently; every other step is per frame.
The per-block arithmetic is pluggable (``BlockSteps``): the Paddle backend streams its own ops through
the same blocks, cut so that they round as its one product over the whole clip does.

Precision mirrors paddle's float32 path: the filterbank, window and STFT (pocketfft in float32, the FFT
that paddle's CPU kernel uses, through scipy's binding) are bit-identical to paddle's, |z| is paddle's
float64 hypot rounded to float32, and the mel product is one float32 matmul. What remains (Eigen's
float pow for the square, MKL's sgemm summation order, Eigen's float log10) leaves at most a few
float32 ulps of difference.

openai-whisper's ``transcribe`` (compat="openai") takes the log-mel of the file followed by 30 s of
zeros instead: the floor is the maximum over that padded signal, the last frames of audio see zeros
rather than reflected samples, and a window holds only frames of audio, padded with 0.0 to 3000
frames (``PaddedLogMel``, over the same streamed or whole-clip machinery).
"""

import functools
import importlib.machinery
import importlib.util
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, Protocol, Tuple

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30  # seconds per window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a window
N_MELS = 80
POWER_FLOOR = 1e-10  # mel power is clamped here before log10
DYNAMIC_RANGE = 8.0  # log10 units (80 dB) kept below the file's maximum
LOG_MEL_SHIFT = 4.0  # log-mel values are mapped by (x + 4) / 4
MEL_BLOCK_FRAMES = 3000  # frames per power/mel-product block, counted from the file's first frame
# The largest sample magnitude whose log-mel is sure to stay finite: a frame's |FFT| is at most
# N_FFT * peak, its square must stay below float32's maximum, and every mel filter's weights sum to
# less than 1 (0.027 for 80 bins, 0.042 for 128). Full scale is 1.0; beyond this the mel overflows.
MAX_SAMPLE_MAGNITUDE = float(np.float32(np.sqrt(np.finfo(np.float32).max) / N_FFT))  # 4.6e16, a float32 value

# Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 steps per 6.4x).
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz):
    """Frequency in Hz -> Slaney mel (float64)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _SLANEY_HZ_PER_MEL
    octaves = np.log(np.maximum(hz, _SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ)
    log_part = _SLANEY_BREAK_MEL + octaves / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, log_part, linear)


def mel_to_hz(mel):
    """Slaney mel -> frequency in Hz (float64)."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = _SLANEY_HZ_PER_MEL * mel
    above = np.maximum(mel, _SLANEY_BREAK_MEL) - _SLANEY_BREAK_MEL
    log_part = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * above)
    return np.where(mel >= _SLANEY_BREAK_MEL, log_part, linear)


def mel_filters(n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Slaney-scale, area-normalised triangular mel filterbank, float32 [n_mels, n_fft // 2 + 1].

    Bit-identical to OpenAI's mel_filters.npz (mel_80 and mel_128): the triangles are rounded to float32
    before the float64 area factor is applied, then rounded again.
    """
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)  # [F]
    mel_pts = np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2)  # [n_mels + 2]
    hz_pts = mel_to_hz(mel_pts)  # [n_mels + 2] band edges and centres
    widths = np.diff(hz_pts)  # [n_mels + 1]
    offsets = hz_pts[:, None] - fft_hz[None, :]  # [n_mels + 2, F]
    rising = -offsets[:-2] / widths[:-1, None]  # [n_mels, F]
    falling = offsets[2:] / widths[1:, None]  # [n_mels, F]
    triangles = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)  # [n_mels, F]
    area_norm = 2.0 / (hz_pts[2:] - hz_pts[:-2])  # [n_mels]
    return (triangles * area_norm[:, None]).astype(np.float32)  # [n_mels, F]


def hann_window(n_fft: int = N_FFT) -> np.ndarray:
    """Periodic Hann window, evaluated in float64 and rounded to float32 [n_fft]."""
    n = np.arange(n_fft, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)).astype(np.float32)  # [n_fft]


@functools.cache
def _real_fft():
    """pocketfft's real-input FFT as scipy ships it: ``r2c(a, axes, forward, inorm, out, nthreads)``.

    The compiled binding (``scipy.fft._pocketfft.pypocketfft``) is loaded from its file on its own:
    importing ``scipy.fft`` would also import the Python modules around it, even after the
    ``scipy.linalg`` that Numba imports. If the file is not where scipy keeps it, ``scipy.fft`` is
    used (same values).
    """
    import scipy

    folder = os.path.join(os.path.dirname(scipy.__file__), "fft", "_pocketfft")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "pypocketfft" + suffix)
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("scipy.fft._pocketfft.pypocketfft", path)
            binding = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(binding)
            return binding.r2c
    import scipy.fft

    def through_scipy_fft(a, axes, forward, inorm, out, nthreads):
        return scipy.fft.rfft(a, axis=axes[0], workers=nthreads)

    return through_scipy_fft


def frames_power(padded: np.ndarray, n_frames: int) -> np.ndarray:
    """|STFT|^2 float32 [n_fft // 2 + 1, n_frames] of the first ``n_frames`` frames of a padded signal.

    ``padded`` holds the reflect-padded signal from a frame's start: frame t is padded[t * HOP_LENGTH:][:N_FFT],
    multiplied by the periodic Hann window and put through a one-sided float32 FFT. Each frame's values
    depend on its own samples only.
    """
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]  # [T, N_FFT]
    spectrum = _real_fft()(frames * hann_window(N_FFT), (1,), True, 0, None, 1)  # [T, F] complex64
    # |z| as paddle takes it: float64 hypot rounded to float32 (squares of float32 parts are exact in float64)
    energy = np.square(spectrum.real, dtype=np.float64) + np.square(spectrum.imag, dtype=np.float64)  # [T, F]
    magnitude = np.sqrt(energy).astype(np.float32)  # [T, F]
    return (magnitude * magnitude).T  # [F, T] float32


def power_spectrum(audio: np.ndarray) -> np.ndarray:
    """|STFT|^2 in float32 [n_fft // 2 + 1, len(audio) // HOP_LENGTH].

    Centred frames (reflect padding of N_FFT // 2 on both sides), periodic Hann window, one-sided float32
    FFT; the last frame of the centred STFT is dropped, leaving one frame per full hop of audio.
    """
    audio = np.asarray(audio, dtype=np.float32)  # [N]
    return frames_power(np.pad(audio, N_FFT // 2, mode="reflect"), audio.shape[0] // HOP_LENGTH)  # [F, T]


def mel_power(filters: np.ndarray, padded: np.ndarray, n_frames: int) -> np.ndarray:
    """Mel power of ``n_frames`` frames of a padded signal, clamped at POWER_FLOOR: float32 [n_mels, n_frames]."""
    return np.maximum(filters @ frames_power(padded, n_frames), np.float32(POWER_FLOOR))  # [n_mels, n_frames]


def log_of_power(power: np.ndarray) -> np.ndarray:
    """log10 of clamped mel power, correctly rounded to float32 (before the floor and the shift)."""
    return np.log10(power.astype(np.float64)).astype(np.float32)  # [n_mels, T]


@dataclass(frozen=True)
class BlockSteps:
    """The arithmetic of a log-mel computed block by block, and the blocks it runs on.

    ``power(padded, n_frames)``: clamped mel power float32 [n_mels, n_frames] of the first ``n_frames``
    frames of reflect-padded samples (frame t is padded[t * HOP_LENGTH:][:N_FFT]); ``log(power)``: its
    log10, float32 [n_mels, n_frames]. ``block``: frames per block, counted from the file's first frame.
    ``join_tail``: the frames after the last whole block join it (one block of ``block`` .. 2 * ``block``
    - 1 frames) instead of making a short block, for a backend whose whole-clip log-mel is one mel
    product: BLAS may round a product of a few columns (MKL's sgemm: fewer than 8) otherwise than the
    same columns at the end of a wide product.
    """

    power: Callable[[np.ndarray, int], np.ndarray]
    log: Callable[[np.ndarray], np.ndarray] = log_of_power
    block: int = MEL_BLOCK_FRAMES
    join_tail: bool = False

    def size_of_last(self, left: int) -> int:
        """Frames in the next block once the signal has ended, with ``left`` frames still to yield."""
        if self.join_tail and left < 2 * self.block:
            return left
        return min(self.block, left)


def numpy_steps(n_mels: int = N_MELS) -> BlockSteps:
    """``log_mel_spectrogram``'s arithmetic: ``mel_power`` with the ``n_mels`` filterbank, ``log_of_power``."""
    return BlockSteps(functools.partial(mel_power, mel_filters(n_mels)))


def mel_power_blocks(pieces: Iterable[np.ndarray], n_mels: int = N_MELS,
                     steps: Optional[BlockSteps] = None) -> Iterator[np.ndarray]:
    """16 kHz mono float32 pieces of any sizes, in order -> clamped mel power of consecutive frame blocks.

    Yields float32 [n_mels, steps.block] blocks (the last one shorter, or longer with ``join_tail``)
    covering the frames 0 .. N // HOP_LENGTH - 1 of the whole signal, equal to the whole signal's values:
    the signal is reflected at its two ends only, as ``power_spectrum`` pads it. ``steps`` computes each
    block (default ``numpy_steps(n_mels)``). At most one block of samples is held (two with ``join_tail``,
    which yields a block only once the next one is whole).
    """
    steps = steps or numpy_steps(n_mels)
    half, block = N_FFT // 2, steps.block
    ahead = 2 * block if steps.join_tail else block  # frames whose samples must be in before a block goes out
    held: List[np.ndarray] = []  # pieces of the padded signal from index `origin` on, joined once per block
    origin = received = next_frame = 0
    started = False  # True once the start's reflection is held
    for piece in pieces:
        held.append(np.asarray(piece, np.float32))
        received += len(piece)
        if not started and received > half:
            padded = np.concatenate(held)  # [received]
            held = [padded[1:half + 1][::-1], padded]  # reflect the first samples
            started = True
        # a whole block is ready once its last frame's samples have arrived (its frames then exist);
        # with join_tail, once the next block's have too (so it is not the last whole block)
        while started and received >= (next_frame + ahead - 1) * HOP_LENGTH + N_FFT - half:
            padded = np.concatenate(held)  # [<= ahead * HOP_LENGTH + N_FFT + len(piece)]
            start = next_frame * HOP_LENGTH - origin
            yield steps.power(padded[start:start + (block - 1) * HOP_LENGTH + N_FFT], block)  # [n_mels, block]
            next_frame += block
            held = [padded[next_frame * HOP_LENGTH - origin:]]
            origin = next_frame * HOP_LENGTH
    n_frames = received // HOP_LENGTH
    if next_frame >= n_frames:
        return
    padded = np.concatenate(held) if held else np.zeros(0, np.float32)
    if started:
        tail = padded[len(padded) - half - 1:len(padded) - 1][::-1]  # reflect the last samples
        padded = np.concatenate([padded, tail])
    else:  # fewer samples than the padding: np.pad reflects them back and forth
        padded, origin = np.pad(padded, half, mode="reflect"), 0
    while next_frame < n_frames:
        count = steps.size_of_last(n_frames - next_frame)
        start = next_frame * HOP_LENGTH - origin
        yield steps.power(padded[start:start + (count - 1) * HOP_LENGTH + N_FFT], count)  # [n_mels, count]
        next_frame += count


def scaled_log_mel(log_spec: np.ndarray, ceiling: np.float32) -> np.ndarray:
    """log10 mel power -> the model's input: floored at (the file's maximum ``ceiling`` - 8), mapped by (x + 4) / 4."""
    log_spec = np.maximum(log_spec, ceiling - np.float32(DYNAMIC_RANGE))  # [n_mels, T]
    return (log_spec + np.float32(LOG_MEL_SHIFT)) / np.float32(LOG_MEL_SHIFT)  # [n_mels, T]


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """PaddleX's log-mel of a whole 16 kHz mono clip: float32 [n_mels, len(audio) // HOP_LENGTH].

    log10 of the clamped mel power, floored at (max over the whole clip - 8), mapped by (x + 4) / 4.
    Clips shorter than one hop give an empty [n_mels, 0] array (PaddleX itself rejects clips shorter
    than N_FFT samples).
    """
    audio = np.asarray(audio, dtype=np.float32)  # [N]
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape [N], got {audio.shape}")
    if audio.shape[0] < HOP_LENGTH:
        return np.zeros((n_mels, 0), dtype=np.float32)
    log_spec = log_of_power(np.concatenate(list(mel_power_blocks([audio], n_mels)), axis=1))  # [n_mels, T]
    return scaled_log_mel(log_spec, log_spec.max())  # [n_mels, T]


def pad_or_trim(mel: np.ndarray, length: int = N_FRAMES) -> np.ndarray:
    """Cut or zero-pad a log-mel along its frame (last) axis to ``length`` frames: [n_mels, length].

    Padding is with zeros in the log-mel domain, as PaddleX pads each 30 s window; the result is contiguous.
    """
    n = mel.shape[-1]
    if n >= length:
        return np.ascontiguousarray(mel[..., :length])  # [n_mels, length]
    pad = [(0, 0)] * (mel.ndim - 1) + [(0, length - n)]
    return np.pad(mel, pad)  # [n_mels, length]


# ------------------------------------------------------------------------- windows of a long signal


class MelWindows(Protocol):
    """The log-mel of one clip, handed out a 30 s window at a time (seeks in increasing order)."""

    n_frames: int  # mel frames in the whole clip

    def window(self, seek: int) -> np.ndarray:
        """Frames seek .. seek + N_FRAMES, zero-padded past the end: float32 [n_mels, N_FRAMES]."""


class WholeLogMel:
    """``MelWindows`` over a log-mel already computed for the whole clip [n_mels, T]."""

    def __init__(self, mel: np.ndarray):
        self.mel = mel  # [n_mels, T]
        self.n_frames = mel.shape[-1]

    def window(self, seek: int) -> np.ndarray:
        """[n_mels, N_FRAMES] from frame ``seek``."""
        return pad_or_trim(self.mel[:, seek:], N_FRAMES)  # [n_mels, 3000]


class StreamedLogMel:
    """``MelWindows`` of a signal of any length, equal to ``log_mel_spectrogram``'s, in bounded memory.

    ``pieces()`` must give the same 16 kHz mono float32 pieces, from the start, each time it is called
    (a file decoded again, or slices of an array). The first pass, here, finds the frame count and the
    log-mel maximum that sets every frame's floor. Windows then come from a second pass that keeps only
    the blocks the current window covers; a seek before them starts the pass again. ``steps`` (default
    ``numpy_steps(n_mels)``) computes each block's power and log10; the floor and the shift are NumPy's.
    """

    def __init__(self, pieces: Callable[[], Iterable[np.ndarray]], n_mels: int = N_MELS,
                 steps: Optional[BlockSteps] = None):
        self.pieces, self.n_mels = pieces, n_mels
        self.steps = steps or numpy_steps(n_mels)
        self.n_frames, ceiling = 0, None
        for power in mel_power_blocks(pieces(), n_mels, self.steps):  # [n_mels, n] a block
            peak = self.steps.log(power).max()
            ceiling = peak if ceiling is None else max(ceiling, peak)
            self.n_frames += power.shape[1]
        self.ceiling = ceiling
        self._restart()

    def window(self, seek: int) -> np.ndarray:
        """[n_mels, N_FRAMES] from frame ``seek``: the frames that exist, then zeros."""
        end = min(seek + N_FRAMES, self.n_frames)
        if seek < (self._kept[0][0] if self._kept else self._computed):
            self._restart()
        while self._computed < end:
            power = next(self._blocks)  # [n_mels, n]
            self._kept.append((self._computed, scaled_log_mel(self.steps.log(power), self.ceiling)))
            self._computed += power.shape[1]
        self._kept = [(first, mel) for first, mel in self._kept if first + mel.shape[1] > seek]
        out = np.zeros((self.n_mels, N_FRAMES), np.float32)  # [n_mels, 3000]
        for first, mel in self._kept:
            lo, hi = max(first, seek), min(first + mel.shape[1], end)
            if lo < hi:
                out[:, lo - seek:hi - seek] = mel[:, lo - first:hi - first]
        return out

    def _restart(self) -> None:
        """Begin the second pass (again) from the first frame; the pieces are read when a window needs them."""
        self._blocks: Iterator[np.ndarray] = mel_power_blocks(self.pieces(), self.n_mels, self.steps)
        self._kept: List[Tuple[int, np.ndarray]] = []  # (first frame, log-mel [n_mels, n]) in order
        self._computed = 0  # frames this pass has produced


# ------------------------------------------------------------------------- openai-whisper's windows


def with_trailing_silence(pieces: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The pieces [n], then N_SAMPLES zeros: openai-whisper's input to its log-mel."""
    yield from pieces
    yield np.zeros(N_SAMPLES, np.float32)  # [480000]


class PaddedLogMel:
    """``MelWindows`` as openai-whisper's ``transcribe`` cuts them from the log-mel of the clip followed
    by 30 s of zeros (``padded``: ``MelWindows`` of that signal, n_frames + N_FRAMES frames).

    ``n_frames`` counts the frames of audio (openai-whisper's content frames). ``window(seek)`` holds
    the padded log-mel's frames seek .. min(seek + N_FRAMES, end) and 0.0 after them, ``end`` being
    the end of the clip or of the stretch ``clipped`` gives. ``detection_window()`` is the padded
    log-mel's first N_FRAMES frames, silence included: the window openai-whisper detects the
    language on.
    """

    def __init__(self, padded: MelWindows, end: Optional[int] = None):
        self.padded = padded
        self.n_frames = padded.n_frames - N_FRAMES
        self.end = self.n_frames if end is None else min(end, self.n_frames)

    def clipped(self, end: int) -> "PaddedLogMel":
        """The same windows ending at frame ``end`` (a clip_timestamps stretch); shares ``padded``."""
        return PaddedLogMel(self.padded, end)

    def frames_at(self, seek: int) -> int:
        """Frames of audio in the window at ``seek`` (openai-whisper's segment_size)."""
        return max(0, min(N_FRAMES, self.end - seek))

    def window(self, seek: int) -> np.ndarray:
        """[n_mels, N_FRAMES] from frame ``seek``: frames_at(seek) frames of the padded log-mel, then 0.0."""
        frames = self.padded.window(seek)  # [n_mels, 3000]
        out = np.zeros_like(frames)  # [n_mels, 3000]
        size = self.frames_at(seek)
        out[:, :size] = frames[:, :size]
        return out

    def detection_window(self) -> np.ndarray:
        """The padded log-mel's frames 0 .. N_FRAMES [n_mels, 3000] (language detection's window)."""
        return np.array(self.padded.window(0))  # [n_mels, 3000]

