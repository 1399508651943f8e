"""Long recordings in bounded memory: the log-mel made window by window from an input read twice
(``mel.StreamedLogMel`` over ``audio.open_samples``) equals the whole clip's log-mel bit for bit, on
every golden clip, on a generated clip of several minutes, and at the lengths where the reflection at
the ends or the block seams could go wrong; it holds a few blocks, not the clip; and a transcription
made from it equals one made from the whole clip's log-mel. The same holds for the Paddle backend's
``log_mel_windows`` (its own ops through the same blocks) against its whole-clip ``log_mel``, with 80
and 128 mel bins."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.signal
import soundfile

from numwhisper import mel
from numwhisper.audio import load_audio, open_samples
from numwhisper.decoding import DecodingOptions
from numwhisper.formats.synthetic import SHAPES
from numwhisper.paddle_backend import MEL_BLOCK_FRAMES as PADDLE_BLOCK
from numwhisper.transcription import log_mel_windows, transcribe_audio, transcribe_mel
from numwhisper.transcription_openai import openai_log_mel

GOLDEN_AUDIO = Path(__file__).resolve().parent.parent / "golden" / "audio"
GOLDEN_CLIPS = sorted(p.stem for p in GOLDEN_AUDIO.glob("*.wav"))


def seeks_of(n_frames: int, block: int = mel.MEL_BLOCK_FRAMES) -> list:
    """Window starts a transcription may ask for: the seams of blocks of ``block`` frames, odd places,
    and the very end."""
    seams = [k * block + d for k in range(n_frames // block + 1) for d in (-1, 0, 1)]
    odd = list(range(0, n_frames, 1237))
    return sorted({s for s in [0, *seams, *odd, n_frames - 1] if 0 <= s < n_frames})


def assert_windows_equal(windows, whole: np.ndarray, block: int = mel.MEL_BLOCK_FRAMES) -> None:
    """Every window of ``windows`` at ``seeks_of`` equals the same window cut from ``whole`` [n_mels, T]."""
    assert windows.n_frames == whole.shape[1]
    for seek in seeks_of(whole.shape[1], block):
        got, expected = windows.window(seek), mel.pad_or_trim(whole[:, seek:])  # [n_mels, 3000] each
        differ = np.count_nonzero(got != expected)
        assert differ == 0, f"seek {seek}: {differ} values differ, maxdiff {np.abs(got - expected).max():.3g}"


def unblocked_log_mel(audio: np.ndarray) -> np.ndarray:
    """The log-mel with the mel product taken in one piece over the whole clip, as before it was cut
    into blocks: [80, T]."""
    power = np.maximum(mel.mel_filters(80) @ mel.power_spectrum(audio), np.float32(mel.POWER_FLOOR))  # [80, T]
    log_spec = mel.log_of_power(power)  # [80, T]
    return mel.scaled_log_mel(log_spec, log_spec.max())  # [80, T]


@pytest.mark.parametrize("clip", GOLDEN_CLIPS)
def test_every_golden_clip_gives_the_same_log_mel_window_by_window(clip):
    path = str(GOLDEN_AUDIO / f"{clip}.wav")
    whole = mel.log_mel_spectrogram(load_audio(path, paddlex=True))  # [80, T]
    # the blocked product changed no value of any golden clip
    assert np.array_equal(whole, unblocked_log_mel(load_audio(path, paddlex=True)))
    samples = open_samples(path, paddlex=True)
    assert_windows_equal(mel.StreamedLogMel(samples.pieces), whole)


def speech_file(folder: Path, seconds: int) -> Path:
    """``seconds`` of speech (the golden clips in turn, repeated) as 44.1 kHz stereo FLAC, so the
    resampler's and the log-mel's seams are both crossed."""
    clips = [soundfile.read(GOLDEN_AUDIO / f"{clip}.wav", dtype="float32", always_2d=True)[0][:, 0]
             for clip in GOLDEN_CLIPS]
    speech = np.concatenate(clips * 3)[:seconds * mel.SAMPLE_RATE]  # [N] 16 kHz
    at_44k = scipy.signal.resample_poly(speech, 441, 160).astype(np.float32)  # [N * 2.76]
    stereo = np.stack([at_44k, 0.5 * at_44k], axis=1)  # [M, 2]
    path = folder / f"speech_{seconds}s.flac"
    soundfile.write(path, stereo, 44100, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def long_stereo_file(tmp_path_factory) -> Path:
    """Seven minutes of speech: 14 log-mel blocks."""
    return speech_file(tmp_path_factory.mktemp("long"), 7 * 60)


def test_a_long_resampled_file_gives_the_same_log_mel_window_by_window(long_stereo_file):
    whole = mel.log_mel_spectrogram(load_audio(long_stereo_file))  # [80, 42000]
    assert whole.shape[1] == 7 * 60 * 100
    windows = mel.StreamedLogMel(open_samples(long_stereo_file).pieces)
    assert_windows_equal(windows, whole)
    # a seek before the blocks it holds reads the file again from the start
    assert np.array_equal(windows.window(5), mel.pad_or_trim(whole[:, 5:]))


def uneven_pieces(audio: np.ndarray):
    """A function giving ``audio`` [N] again on each call, in pieces of uneven sizes (1 .. 70,000)."""
    sizes = np.random.default_rng(1).integers(1, 70_000, size=audio.shape[0] // 1000 + 2)  # [k]
    cuts = np.minimum(np.cumsum(sizes), audio.shape[0])  # [k]
    return lambda: (piece for piece in np.split(audio, cuts) if piece.size)


@pytest.mark.parametrize("n_samples", [1, 159, 160, 161, 200, 201, 202, 399, 400, 401, 4000,
                                       480_000 - 1, 480_000, 480_000 + 39, 480_000 + 40, 480_000 + 41,
                                       480_160, 480_199, 480_200, 480_201, 960_123])
def test_the_ends_and_the_seams_give_the_whole_clips_values(n_samples):
    audio = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)  # [N]
    whole = mel.log_mel_spectrogram(audio)  # [80, N // 160]
    windows = mel.StreamedLogMel(uneven_pieces(audio))
    assert windows.n_frames == whole.shape[1]
    if whole.shape[1]:
        assert_windows_equal(windows, whole)


def test_the_streamed_log_mel_holds_a_few_blocks_not_the_clip():
    """Twenty minutes of noise: the whole clip's log-mel would allocate about 700 MB on the way
    (frames, spectrum, power); the streamed one's largest allocation at a time stays near its blocks."""
    import tracemalloc

    seconds, piece = 20 * 60, 1 << 16

    def pieces():
        rng = np.random.default_rng(0)
        for _ in range(seconds * mel.SAMPLE_RATE // piece):
            yield (0.1 * rng.standard_normal(piece)).astype(np.float32)  # [piece]

    tracemalloc.start()
    try:
        windows = mel.StreamedLogMel(pieces)
        for seek in range(0, windows.n_frames, 2_900):
            windows.window(seek)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert windows.n_frames == seconds * mel.SAMPLE_RATE // piece * piece // mel.HOP_LENGTH
    assert peak < 60 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_transcription_from_streamed_windows_equals_one_from_the_whole_log_mel(loaded, tmp_path):
    path = speech_file(tmp_path, 75)  # three windows or more, across the first block seam (frame 3000)
    model = loaded("tiny.en")
    options = DecodingOptions(beam_size=None, language="en", condition_on_previous_text=False)
    samples = open_samples(path)
    assert isinstance(log_mel_windows(model, samples), mel.StreamedLogMel)
    streamed = transcribe_audio(model, samples, options)["result"]
    whole = transcribe_mel(model, mel.log_mel_spectrogram(load_audio(path)), options)
    assert streamed == whole
    assert len(streamed["segments"]) > 5 and streamed["segments"][-1]["start"] > 60


# ---------------------------------------------------------------------------------- the Paddle backend


@pytest.fixture(scope="module")
def paddle_mel(backend_for):
    """{n_mels: a Paddle backend on the CPU} for 80 mel bins (tiny.en) and 128 (tiny.en's tensors with
    large-v3's dims: only ``dims.n_mels`` reaches the log-mel)."""
    tiny = backend_for("paddle-cpu", "tiny.en")
    return {80: tiny, 128: dataclasses.replace(tiny, dims=SHAPES["large-v3"])}


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("clip", GOLDEN_CLIPS)
def test_paddle_windows_of_every_golden_clip_equal_its_whole_log_mel(paddle_mel, clip, n_mels):
    path = str(GOLDEN_AUDIO / f"{clip}.wav")
    whole = paddle_mel[n_mels].log_mel(load_audio(path, paddlex=True))  # [n_mels, T]
    windows = paddle_mel[n_mels].log_mel_windows(open_samples(path, paddlex=True).pieces)
    assert isinstance(windows, mel.StreamedLogMel)
    assert_windows_equal(windows, whole, PADDLE_BLOCK)


def test_paddle_windows_of_a_long_resampled_file_equal_its_whole_log_mel(paddle_mel, long_stereo_file):
    whole = paddle_mel[80].log_mel(load_audio(long_stereo_file))  # [80, 42000]: 12 blocks, then 5136 frames in one
    windows = paddle_mel[80].log_mel_windows(open_samples(long_stereo_file).pieces)
    assert_windows_equal(windows, whole, PADDLE_BLOCK)
    assert np.array_equal(windows.window(5), mel.pad_or_trim(whole[:, 5:]))  # read again from the start


# Around the reflections at both ends (one FFT frame: 400 samples; two frames: the clips read whole) and
# the first two block seams, where the frames after the last whole block join it (1 .. 8 frames more).
PADDLE_LENGTHS = [1, 159, 160, 161, 200, 201, 202, 399, 400, 401, 479, 480, 4000] + [
    k * PADDLE_BLOCK * mel.HOP_LENGTH + d for k in (1, 2) for d in (-1, 0, 39, 40, 41, 160, 199, 200, 201, 1125, 1280)]


@pytest.mark.parametrize("n_samples", PADDLE_LENGTHS)
def test_paddle_windows_at_the_ends_and_the_seams_equal_its_whole_log_mel(paddle_mel, n_samples):
    audio = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)  # [N]
    backend = paddle_mel[80]
    whole = backend.log_mel(audio)  # [80, N // 160]
    if n_samples < mel.N_FFT:  # under one FFT frame the whole-clip path is mel's
        assert np.array_equal(whole, mel.log_mel_spectrogram(audio))
    windows = backend.log_mel_windows(uneven_pieces(audio))
    assert windows.n_frames == whole.shape[1] == n_samples // mel.HOP_LENGTH
    if whole.shape[1]:
        assert_windows_equal(windows, whole, PADDLE_BLOCK)


def test_a_paddle_transcription_from_streamed_windows_equals_one_from_the_whole_log_mel(model_for):
    path = str(GOLDEN_AUDIO / "en_jfk.wav")
    model = model_for("paddle-cpu", "tiny.en")
    options = DecodingOptions(beam_size=None, language="en", condition_on_previous_text=False)
    samples = open_samples(path)
    assert isinstance(log_mel_windows(model, samples), mel.StreamedLogMel)
    streamed = transcribe_audio(model, samples, options)["result"]
    whole = transcribe_mel(model, model.backend.log_mel(load_audio(path)), options)
    assert streamed == whole
    assert "ask not what your country can do for you" in streamed["text"]


def test_paddle_windows_of_openai_whispers_padded_log_mel_equal_those_of_the_whole_one(paddle_mel):
    """compat="openai" streams the clip followed by 30 s of zeros: the same windows as those cut from
    the whole-clip log_mel of that signal."""
    path = str(GOLDEN_AUDIO / "en_jfk.wav")
    backend = paddle_mel[80]
    streamed = openai_log_mel(backend, open_samples(path))
    assert isinstance(streamed.padded, mel.StreamedLogMel)
    whole = openai_log_mel(SimpleNamespace(log_mel=backend.log_mel), open_samples(path))
    assert streamed.n_frames == whole.n_frames == 1100
    for seek in (0, 620, 1099):
        assert np.array_equal(streamed.window(seek), whole.window(seek))
    assert np.array_equal(streamed.detection_window(), whole.detection_window())
