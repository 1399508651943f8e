"""The audio stage: samples as read -> Whisper's 16 kHz mono float32 (``numwhisper.audio``): every file
variant comes back as the 16 kHz clip, channels averaged (or channel 0 for PaddleX), rates resampled,
NaN and infinite samples refused."""

from fractions import Fraction

import numpy as np
import pytest
import scipy.signal
import soundfile

from numwhisper import inputs
from numwhisper.audio import RESAMPLE_STEP, Resampler, load_audio, to_16k_mono
from numwhisper.errors import InputError
from numwhisper.mel import SAMPLE_RATE

MIN_CORRELATION = 0.99        # a resampled / re-encoded variant against the original 16 kHz clip
TONE_ATOL = 1e-3              # resampled pure tones against the same tones computed at 16 kHz
LENGTH_SLACK = 2              # samples a resampled length may differ from N * 16000 / rate

# The conftest fixtures ``jfk``, ``variants`` and ``bad_files`` are shared with test_inputs.py.


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def test_load_audio_errors_name_the_input(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(InputError, match="nope.wav"):
        load_audio(missing)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(InputError, match="notes.wav"):
        load_audio(text)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(InputError, match="empty.wav"):
        load_audio(empty)
    with pytest.raises(InputError, match="directory"):
        load_audio(tmp_path)
    with pytest.raises(InputError):
        load_audio(np.zeros(0, np.float32))
    assert issubclass(InputError, ValueError)


def test_channels_are_averaged_unless_paddlex(tmp_path):
    left = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    right = np.full(1600, 0.25, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)
    np.testing.assert_array_equal(load_audio(path, paddlex=True), left)


# --------------------------------------------------------------------------------------------- files

@pytest.mark.parametrize("name", ["int16.wav", "float.wav", "flac.flac", "vorbis.ogg", "opus.opus", "mp3.mp3",
                                  "stereo48k.wav", "pcm8k.wav", "rate22050.flac"])
def test_every_variant_comes_back_as_the_16k_clip(name, variants, jfk):
    audio = load_audio(str(variants[name]))  # [N]
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(jfk)) <= LENGTH_SLACK
    assert correlation(audio, jfk) > MIN_CORRELATION


def test_stereo_48k_is_downmixed_and_resampled(variants, jfk):
    audio = load_audio(variants["stereo48k.wav"])  # channels x and x/2 -> mean 0.75 x
    assert len(audio) == len(jfk)
    assert correlation(audio, jfk) > MIN_CORRELATION
    scale = float(audio @ jfk / (jfk @ jfk))
    assert scale == pytest.approx(0.75, abs=0.01)
    raw = inputs.from_file(variants["stereo48k.wav"])  # [3N, 2] at 48 kHz
    assert np.array_equal(to_16k_mono(raw.all_samples(), raw.rate), audio)


def test_lossless_16k_files_are_exact(variants, jfk):
    assert np.array_equal(load_audio(variants["float.wav"]), jfk)
    assert np.abs(load_audio(variants["int16.wav"]) - jfk).max() <= 1 / 32768


def test_paddlex_takes_channel_0_and_ignores_the_rate(variants):
    audio = load_audio(variants["stereo48k.wav"], paddlex=True)  # [3N]: 48 kHz samples taken as 16 kHz
    channel0 = soundfile.read(variants["stereo48k.wav"], dtype="float32")[0][:, 0]  # [3N]
    assert np.array_equal(audio, channel0)
    raw = inputs.from_file(variants["stereo48k.wav"])  # [3N, 2]
    assert np.array_equal(to_16k_mono(raw.all_samples(), raw.rate, paddlex=True), channel0)


# -------------------------------------------------------------------------------------------- arrays

@pytest.mark.parametrize("rate", [1000, 8000, 11025, 22050, 44100, 48000, 96000, 384000])
def test_streamed_resampling_equals_scipy_on_the_whole_signal(rate):
    """Blocks of any size, pushed one by one, give resample_poly's output over the whole signal, bit for bit."""
    rng = np.random.default_rng(rate)
    for n in (1, 999, 3 * RESAMPLE_STEP + 17):
        x = rng.standard_normal(n).astype(np.float32)  # [n]
        ratio = Fraction(SAMPLE_RATE, rate)
        whole = scipy.signal.resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)  # [M]
        resampler, pieces, start = Resampler(rate), [], 0
        while start < n:
            size = int(rng.integers(1, 5000))
            pieces += resampler.push(x[start:start + size])
            start += size
        pieces += resampler.finish()
        assert np.array_equal(np.concatenate(pieces), whole), (rate, n)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_array_tones_resample_to_the_same_tones_at_16k(rate):
    def tones(sr, seconds=1.0):
        t = np.arange(int(seconds * sr)) / sr  # [sr * seconds]
        return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 1000 * t + 1.0)).astype(np.float32)

    audio = load_audio(tones(rate), sample_rate=rate)  # [~16000]
    expected = tones(16000)  # [16000]
    assert abs(len(audio) - len(expected)) <= LENGTH_SLACK
    edge = 200  # filter start-up at both ends
    n = min(len(audio), len(expected))
    assert np.abs(audio[edge:n - edge] - expected[edge:n - edge]).max() < TONE_ATOL


def test_integer_pcm_arrays_become_the_scaled_signal(jfk):
    pcm16 = np.round(jfk * 32767).astype(np.int16)  # [N]
    audio = load_audio(pcm16)  # [N]
    assert audio.dtype == np.float32 and np.array_equal(audio, (pcm16 / 32768).astype(np.float32))
    stereo16 = np.stack([pcm16, pcm16], axis=1)  # [N, 2]
    assert np.array_equal(load_audio(stereo16), (pcm16 / 32768).astype(np.float32))


def test_channels_last_arrays_are_averaged_and_float_rates_accepted(jfk):
    stereo = np.stack([jfk, np.zeros_like(jfk)], axis=1)  # [N, 2]
    assert np.allclose(load_audio(stereo, sample_rate=16000.0), jfk / 2)
    assert np.allclose(load_audio(stereo, sample_rate=16000), jfk / 2)
    assert np.allclose(to_16k_mono(stereo, 16000), jfk / 2)


# ------------------------------------------------------------------------------------- bad samples

def test_nan_or_infinite_samples_give_one_line_naming_the_input_and_the_count(bad_files):
    cases = [  # (input, keyword arguments for load_audio, the name the message starts with, its cause)
        (str(bad_files["nan"]), {}, str(bad_files["nan"]), "1600 of 1600 samples are NaN or infinite"),
        (np.full(16000, np.nan, dtype=np.float32), {}, "array", "16000 of 16000 samples are NaN or infinite"),
        (np.array([0.0, np.inf, 0.5, -np.inf], dtype=np.float32), {"name": "tones"}, "tones",
         "2 of 4 samples are NaN or infinite"),
    ]
    for source, kwargs, name, cause in cases:
        with pytest.raises(InputError) as caught:
            load_audio(source, **kwargs)
        message = str(caught.value)
        assert "\n" not in message, message
        assert message.startswith(name + ": "), message
        assert cause in message, message
        assert isinstance(caught.value, ValueError)
