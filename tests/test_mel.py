"""The log-mel frontend: filterbank vs OpenAI's array, log-mel vs PaddleX's golden mels, and properties."""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from numwhisper import mel
from numwhisper.golden import files as golden
from numwhisper.golden.tolerances import LOG_MEL_ATOL, LOG_MEL_PRECISION_ATOL, MEL_FILTERS_ATOL

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GOLDEN_CLIPS = sorted(p.stem for p in (GOLDEN / "audio").glob("*.wav"))


def read_clip(name: str) -> np.ndarray:
    """A golden clip as PaddleX reads it: float32, first channel, sample rate not looked at."""
    audio, _ = soundfile.read(GOLDEN / "audio" / f"{name}.wav", dtype="float32", always_2d=True)
    return audio[:, 0]  # [N]


def test_filterbank_formula_equals_openai_array():
    with np.load(GOLDEN / "reference" / "mel_filters_openai.npz") as f:
        expected = f["mel_80"]  # [80, 201]
    got = mel.mel_filters(80)
    assert got.dtype == np.float32 and got.shape == expected.shape == (80, 201)
    assert np.abs(got - expected).max() <= MEL_FILTERS_ATOL


def test_filterbank_128_bands_is_a_slaney_bank():
    fb = mel.mel_filters(128)  # [128, 201]
    assert fb.dtype == np.float32 and fb.shape == (128, 201)
    assert (fb >= 0).all() and (fb.max(axis=1) > 0).all()
    edges = mel.mel_to_hz(np.linspace(0.0, mel.hz_to_mel(8000.0), 130))  # [130] band edges and centres
    bin_hz = mel.SAMPLE_RATE / mel.N_FFT
    peaks_hz = fb.argmax(axis=1) * bin_hz  # [128]
    assert np.all(np.abs(peaks_hz - edges[1:-1]) <= bin_hz)
    # Slaney normalisation: every triangle has unit area in Hz; wide ones are sampled well enough to show it
    wide = edges[2:] - edges[:-2] >= 6 * bin_hz  # [128]
    assert wide.sum() >= 15
    np.testing.assert_allclose(fb[wide].sum(axis=1) * bin_hz, 1.0, rtol=2e-2)


def test_hann_window_is_periodic():
    w = mel.hann_window(400)  # [400]
    assert w.dtype == np.float32 and w[0] == 0.0 and w[200] == 1.0
    np.testing.assert_array_equal(w[1:], w[1:][::-1])


def test_fft_binding_is_scipys_pocketfft():
    """mel loads scipy's compiled pocketfft directly (not through scipy.fft's Python layer); it must be
    that binding and give scipy.fft.rfft's values bit for bit."""
    import scipy.fft

    rfft = mel._real_fft()
    assert rfft.__module__ == "scipy.fft._pocketfft.pypocketfft", rfft
    frames = np.random.default_rng(0).standard_normal((50, mel.N_FFT)).astype(np.float32)  # [T, N_FFT]
    ours = rfft(frames, (1,), True, 0, None, 1)  # [T, F]
    assert ours.dtype == np.complex64
    np.testing.assert_array_equal(ours, scipy.fft.rfft(frames, axis=-1))


def test_fft_falls_back_to_scipy_fft_when_the_binding_is_not_found(monkeypatch):
    """With no extension file to load (no suffix matches), mel uses scipy.fft itself: same values."""
    frames = np.random.default_rng(1).standard_normal((20, mel.N_FFT)).astype(np.float32)  # [T, N_FFT]
    expected = mel._real_fft()(frames, (1,), True, 0, None, 1)  # [T, F] through the binding
    monkeypatch.setattr(mel.importlib.machinery, "EXTENSION_SUFFIXES", [])
    mel._real_fft.cache_clear()
    try:
        fallback = mel._real_fft()
        assert fallback.__name__ == "through_scipy_fft"
        np.testing.assert_array_equal(fallback(frames, (1,), True, 0, None, 1), expected)
    finally:
        mel._real_fft.cache_clear()


def test_golden_clips_are_present():
    assert GOLDEN_CLIPS, f"no golden clips in {GOLDEN / 'audio'}"


@pytest.mark.parametrize("name", GOLDEN_CLIPS)
def test_log_mel_matches_paddlex(name):
    expected, n_frames = golden.load_mel(name)  # [80, min(T, 3000)] of PaddleX's whole-clip log-mel, and T
    audio = read_clip(name)
    got = mel.log_mel_spectrogram(audio)  # [80, T]
    assert got.dtype == np.float32
    assert got.shape == (80, n_frames) == (80, audio.shape[0] // mel.HOP_LENGTH)
    report = golden.compare(f"log-mel {name}", got[:, :expected.shape[1]], expected, atol=LOG_MEL_ATOL)
    assert report.ok, report.report
    assert report.max_abs_diff <= LOG_MEL_PRECISION_ATOL, f"float32 mirroring of paddle lost:\n{report.report}"


@pytest.mark.parametrize("n_samples", [160, 199, 200, 201, 399, 400, 401, 16000, 480000, 480159, 480160])
def test_log_mel_shape(n_samples):
    audio = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)  # [N]
    out = mel.log_mel_spectrogram(audio)
    assert out.dtype == np.float32 and out.shape == (80, n_samples // mel.HOP_LENGTH)
    assert np.isfinite(out).all()
    assert out.max() - out.min() <= mel.DYNAMIC_RANGE / 4 + 1e-6  # the floor sits 8 log10 units under the max
    assert mel.log_mel_spectrogram(audio, n_mels=128).shape == (128, n_samples // mel.HOP_LENGTH)


@pytest.mark.parametrize("n_samples", [0, 1, 100, 159])
def test_shorter_than_a_hop_gives_no_frames(n_samples):
    out = mel.log_mel_spectrogram(np.ones(n_samples, dtype=np.float32))
    assert out.shape == (80, 0) and out.dtype == np.float32
    window = mel.pad_or_trim(out)
    assert window.shape == (80, mel.N_FRAMES) and not window.any()


def test_silence_is_finite_and_clamped():
    out = mel.log_mel_spectrogram(np.zeros(mel.SAMPLE_RATE, dtype=np.float32))  # [80, 100]
    assert out.shape == (80, 100)
    # every band is at the 1e-10 power clamp: (log10(1e-10) + 4) / 4
    np.testing.assert_array_equal(out, np.float32(-1.5))


def test_tone_lands_in_its_band():
    t = np.arange(2 * mel.SAMPLE_RATE) / mel.SAMPLE_RATE
    audio = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)  # [32000]
    out = mel.log_mel_spectrogram(audio)[:, 2:-2]  # [80, 196] frames clear of the reflected edges
    centres = mel.mel_to_hz(np.linspace(0.0, mel.hz_to_mel(8000.0), 82))[1:-1]  # [80]
    assert (out.argmax(axis=0) == np.argmin(np.abs(centres - 1000.0))).all()


def test_pad_or_trim():
    x = np.arange(80 * 50, dtype=np.float32).reshape(80, 50)  # [80, 50]
    padded = mel.pad_or_trim(x, 60)
    assert padded.shape == (80, 60) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, :50], x)
    assert not padded[:, 50:].any()
    np.testing.assert_array_equal(mel.pad_or_trim(x, 20), x[:, :20])
    np.testing.assert_array_equal(mel.pad_or_trim(x, 50), x)
    assert mel.pad_or_trim(np.zeros((80, 3500), np.float32)).shape == (80, mel.N_FRAMES)


def test_constants():
    assert (mel.N_SAMPLES, mel.N_FRAMES) == (480000, 3000)
    assert mel.N_FRAMES * mel.HOP_LENGTH == mel.CHUNK_LENGTH * mel.SAMPLE_RATE
