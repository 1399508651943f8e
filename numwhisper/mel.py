"""Log-mel spectrogram frontend, computed the way PaddleX's multilingual_speech_recognition pipeline does.

PaddleX takes the log-mel of the WHOLE file (no 30 s of silence appended first), so the dynamic-range
floor (max - 8) uses the maximum over the whole file; each 30 s window is then cut from that and padded
with zeros in the log-mel domain (``pad_or_trim``).

Precision mirrors paddle's float32 path: the filterbank, window and STFT (pocketfft in float32, the FFT
that paddle's CPU kernel uses, through scipy's binding) are bit-identical to paddle's, |z| is paddle's
float64 hypot rounded to float32, and the mel product is one float32 matmul. What remains (Eigen's
float pow for the square, MKL's sgemm summation order, Eigen's float log10) leaves at most a few
float32 ulps of difference.
"""

import functools
import importlib.machinery
import importlib.util
import os

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


def power_spectrum(audio: np.ndarray) -> np.ndarray:
    """|STFT|^2 in float32 [n_fft // 2 + 1, len(audio) // HOP_LENGTH].

    Centred frames (reflect padding of N_FFT // 2 on both sides), periodic Hann window, one-sided float32
    FFT; the last frame of the centred STFT is dropped, leaving one frame per full hop of audio.
    """
    audio = np.asarray(audio, dtype=np.float32)  # [N]
    n_frames = audio.shape[0] // HOP_LENGTH
    padded = np.pad(audio, N_FFT // 2, mode="reflect")  # [N + N_FFT]
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]  # [T, N_FFT]
    spectrum = _real_fft()(frames * hann_window(N_FFT), (1,), True, 0, None, 1)  # [T, F] complex64
    # |z| as paddle takes it: float64 hypot rounded to float32 (squares of float32 parts are exact in float64)
    energy = np.square(spectrum.real, dtype=np.float64) + np.square(spectrum.imag, dtype=np.float64)  # [T, F]
    magnitude = np.sqrt(energy).astype(np.float32)  # [T, F]
    return (magnitude * magnitude).T  # [F, T] float32


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
    mel = mel_filters(n_mels) @ power_spectrum(audio)  # [n_mels, T] float32
    mel = np.maximum(mel, np.float32(POWER_FLOOR))  # [n_mels, T]
    log_spec = np.log10(mel.astype(np.float64)).astype(np.float32)  # [n_mels, T] correctly rounded log10
    log_spec = np.maximum(log_spec, log_spec.max() - np.float32(DYNAMIC_RANGE))  # [n_mels, T]
    return (log_spec + np.float32(LOG_MEL_SHIFT)) / np.float32(LOG_MEL_SHIFT)  # [n_mels, T]


def pad_or_trim(mel: np.ndarray, length: int = N_FRAMES) -> np.ndarray:
    """Cut or zero-pad a log-mel along its frame (last) axis to ``length`` frames: [n_mels, length].

    Padding is with zeros in the log-mel domain, as PaddleX pads each 30 s window; the result is contiguous.
    """
    n = mel.shape[-1]
    if n >= length:
        return np.ascontiguousarray(mel[..., :length])  # [n_mels, length]
    pad = [(0, 0)] * (mel.ndim - 1) + [(0, length - n)]
    return np.pad(mel, pad)  # [n_mels, length]
