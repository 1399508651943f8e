"""compat="openai": openai-whisper's ``transcribe``, result for result, and its seek rules on real audio.

golden/openai/ holds what openai-whisper 20250625 itself gives on the golden clips
(``numwhisper/golden/openai_files.py`` reads it). Every golden is transcribed here once on the NumPy
backend, each window encoded once for all configs, and must match: text, language, every
segment's id, seek, start, end, text, tokens and temperature exactly (types included), the scores
within RESULT_SCORE_ATOL, the words as ``openai_files.compare_words`` compares them (same words,
times within WORD_TIME_ATOL and equal for at least WORD_TIMES_EXACT_SHARE of them, probabilities
within WORD_PROBABILITY_ATOL). No golden needs an exception: none decoded a window above
temperature 0, and no decision came within the measured logit error.

The seek rules are also pinned on their own, against openai-whisper's output on en_jfk with
clip_timestamps (taken from openai-whisper 20250625 on the .pt of our tiny.en weights, float32, one
thread, temperature 0, no fallback) and on the first window of en_voxpopuli_long_000.
"""

import json
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from numwhisper.audio import open_samples
from numwhisper.decoding import (COMPAT_OPENAI, OPENAI_CLI_DEFAULTS, DecodingOptions, DecodingResult, decode_with_fallback,
                                 needs_fallback, openai_defaults)
from numwhisper.golden import check as golden_check
from numwhisper.golden import openai_files
from numwhisper.golden.tolerances import WORD_TIMES_EXACT_SHARE
from numwhisper.mel import N_FRAMES, PaddedLogMel, WholeLogMel, log_mel_spectrogram
from numwhisper.result import Result, plain
from numwhisper.timing import add_word_timestamps
from numwhisper.transcription import transcribe, transcribe_mel
from numwhisper.transcription_openai import (FRAMES_PER_SECOND, clear_blank_segments, last_end, openai_log_mel,
                                             seek_clips, split_window)

AUDIO = Path(__file__).resolve().parent.parent / "golden" / "audio"
CASES = {case.name: case for case in openai_files.cases()}
GREEDY = dict(beam_size=None, best_of=None, temperature_increment_on_fallback=None)

# openai-whisper's segments (seek, start, end, text, tokens) on en_jfk, tiny.en, greedy at temperature 0,
# no word timestamps, for three clip_timestamps. Every window here ends in text + one timestamp (the
# first also holds a pair), so the next window starts after the whole window, clipped at its stretch's end.
JFK_CLIPS = {
    "1.5,4,6.2": [
        (150, 1.5, 2.5, " All Americans.", [50363, 1439, 3399, 13, 50413]),
        (150, 2.5, 3.5, " Ask.", [50413, 16981, 13, 50463]),
        (620, 6.2, 10.2, " You can do for your country.", [50363, 921, 460, 466, 329, 534, 1499, 13, 50563]),
    ],
    "0,3.3": [(0, 0.0, 2.0, " And so am I fellow Americans.", [50363, 843, 523, 716, 314, 5891, 3399, 13, 50463])],
    "8": [(800, 8.0, 11.0, " ask what you can do for your country.",
           [50363, 1265, 644, 345, 460, 466, 329, 534, 1499, 13, 50513])],
}


@pytest.fixture(scope="module")
def encode(encoder_memo):
    """The session's window encoder: each distinct window encoded once (shared by every config)."""
    return golden_check.shared_encoder(encoder_memo)


@pytest.fixture(scope="module")
def jfk_clipped(loaded, encode):
    """clip_timestamps -> our compat="openai" transcription of en_jfk as JFK_CLIPS made it (wrapped)."""

    @lru_cache(maxsize=None)
    def get(clips: str) -> dict:
        options = openai_defaults(clip_timestamps=clips, **GREEDY)
        return transcribe(loaded("tiny.en"), str(AUDIO / "en_jfk.wav"), options, encode=encode)

    return get


@pytest.fixture(scope="module")
def golden_transcript(loaded, encode):
    """case -> our compat="openai" result body for it, each transcribed once."""

    @lru_cache(maxsize=None)
    def get(case: openai_files.OpenAICase) -> dict:
        options = openai_files.options_for(case.config)
        return transcribe(loaded(case.model), str(AUDIO / f"{case.clip}.wav"), options, encode=encode)["result"]

    return get


# ---------------------------------------------------------------------------------- the goldens


@pytest.mark.parametrize("name", sorted(CASES))
def test_result_matches_openai_whisper(name, golden_transcript):
    case = CASES[name]
    ours, theirs = golden_transcript(case), openai_files.load_result(case)
    assert openai_files.first_sampled_window(theirs) is None, f"{case.name}: a window was sampled (T > 0)"
    problems, words = openai_files.result_differences(ours, theirs)
    assert not problems, f"{case.name}:\n" + "\n".join(problems)
    assert words.exact_share >= WORD_TIMES_EXACT_SHARE, (case.name, words)


def test_goldens_cover_every_config_and_model():
    found = {(c.model, c.config) for c in CASES.values()}
    assert found == {("base", "cli"), ("base", "greedy"), ("base", "options"), ("tiny.en", "cli"),
                     ("tiny.en", "greedy")}


def test_result_is_wrapped_as_paddlex_results_are(jfk_clipped, tiny_en, tmp_path):
    wrapped = Result(jfk_clipped("0,3.3"))
    assert wrapped["input_path"].endswith("en_jfk.wav") and list(wrapped["result"]) == ["text", "segments", "language"]
    segment = wrapped.segments[0]
    assert list(segment) == ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                             "compression_ratio", "no_speech_prob"]
    assert type(segment["temperature"]) is float and type(segment["start"]) is float
    assert all(type(t) is int for t in segment["tokens"]) and segment["tokens"][0] >= tiny_en.tokenizer.timestamp_begin
    saved = wrapped.save_to_json(tmp_path / "jfk.json")
    assert json.loads(saved.read_text(encoding="utf-8")) == plain(wrapped)


# ---------------------------------------------------------------------------------- seek rules


@pytest.mark.parametrize("clips", list(JFK_CLIPS))
def test_clip_timestamps_and_single_timestamp_endings(clips, jfk_clipped):
    result = jfk_clipped(clips)["result"]
    got = [(s["seek"], s["start"], s["end"], s["text"], s["tokens"]) for s in result["segments"]]
    assert got == JFK_CLIPS[clips]
    assert result["text"] == "".join(s[3] for s in JFK_CLIPS[clips]) and result["language"] == "en"


def test_instantaneous_or_blank_segments_stay_emptied(jfk_clipped):
    """openai-whisper keeps such segments (their times and scores) with no text, tokens or words."""
    segment = dict(jfk_clipped("1.5,4,6.2")["result"]["segments"][0])  # (150, 1.5, 2.5, " All Americans.")
    instant, blank, spoken = dict(segment, end=segment["start"]), dict(segment, text=" "), dict(segment)
    clear_blank_segments([instant, blank, spoken])
    for emptied in (instant, blank):
        assert (emptied["text"], emptied["tokens"], emptied["words"]) == ("", [], [])
        assert emptied["avg_logprob"] == segment["avg_logprob"]
    assert spoken == segment


def test_seek_clips():
    assert seek_clips("0", 1100) == [(0, 1100)]
    assert seek_clips("", 1100) == [(0, 1100)]
    assert seek_clips("1.5,4,6.2", 1100) == [(150, 400), (620, 1100)]
    assert seek_clips([2.0, 30.0], 1100) == [(200, 1100)]  # never past the clip's end
    assert seek_clips("0.125,0.135", 1100) == [(12, 14)]  # round() to frames, as openai-whisper


def window_result(avg_logprob: float, no_speech_prob: float, compression_ratio: float = 1.5) -> DecodingResult:
    """A decoded window's scores (no tokens): what the fallback rule reads."""
    return DecodingResult("en", (), "", avg_logprob, no_speech_prob, 0.0, compression_ratio, 0.0)


@pytest.mark.parametrize("compat", [None, "paddlex", COMPAT_OPENAI])
def test_fallback_rule_of_each_mode(compat):
    """Too unlikely or too repetitive falls back in every mode; a window that also looks silent falls
    back in PaddleX's modes but not in openai-whisper's."""
    options = DecodingOptions(compat=compat)  # thresholds: log-prob -1.0, compression 2.4, no-speech 0.6
    assert needs_fallback(window_result(-1.5, 0.1), options)
    assert needs_fallback(window_result(-0.5, 0.9, compression_ratio=3.0), options)
    assert not needs_fallback(window_result(-0.5, 0.9), options)
    assert needs_fallback(window_result(-1.5, 0.9), options) == (compat != COMPAT_OPENAI)


def test_next_window_starts_at_the_last_pair_or_the_last_word(loaded, encode):
    """en_voxpopuli_long_000's first window (greedy) ends with speech cut off: no single timestamp
    ending, so the next window starts at the last pair's time, and with words at the last word's end
    (openai-whisper's next seek in its golden)."""
    model, case = loaded("base"), openai_files.OpenAICase("base", "greedy", "en_voxpopuli_long_000")
    options = openai_defaults(word_timestamps=True, **GREEDY)  # the greedy golden's options
    mel = openai_log_mel(model.backend, open_samples(str(AUDIO / f"{case.clip}.wav")))
    window = encode(model, mel, 0)
    tokenizer = model.tokenizer_for(options)
    result = decode_with_fallback(model.backend, tokenizer, window.features, window.cross, 0, options, "en", [])
    segments, seek, single_ending = split_window(tokenizer, 0, N_FRAMES, result, model.input_stride)
    theirs = openai_files.load_result(case)["segments"]
    first = [s for s in theirs if s["seek"] == 0]
    assert not single_ending and [s["tokens"] for s in segments] == [s["tokens"] for s in first]
    pairs = [i for i in range(len(result.tokens) - 1) if min(result.tokens[i:i + 2]) >= tokenizer.timestamp_begin]
    assert seek == (result.tokens[pairs[-1]] - tokenizer.timestamp_begin) * 2 < N_FRAMES

    add_word_timestamps(segments=segments, segment_tokens=[s["tokens"] for s in segments], backend=model.backend,
                        tokenizer=tokenizer, cross=window.cross, language="en", task="transcribe",
                        num_frames=N_FRAMES, heads=model.alignment_heads,
                        prepend_punctuations=options.prepend_punctuations,
                        append_punctuations=options.append_punctuations, last_speech_timestamp=0.0)
    next_seek = round(last_end(segments) * FRAMES_PER_SECOND)
    assert next_seek != seek and next_seek == theirs[len(first)]["seek"]


# ---------------------------------------------------------------------------------- the log-mel


def test_padded_log_mel_streamed_equals_whole(loaded, jfk):
    """The NumPy backend's streamed windows equal those of a backend that only has a whole-clip
    log_mel, and openai-whisper's recipe written out here."""
    backend = loaded("base").backend
    streamed = openai_log_mel(backend, open_samples(str(AUDIO / "en_jfk.wav")))
    whole = openai_log_mel(SimpleNamespace(log_mel=backend.log_mel), open_samples(str(AUDIO / "en_jfk.wav")))
    padded = np.concatenate([jfk, np.zeros(16000 * 30, np.float32)])  # [N + 480000]
    recipe = PaddedLogMel(WholeLogMel(log_mel_spectrogram(padded)))  # over [80, T + 3000]
    assert streamed.n_frames == whole.n_frames == recipe.n_frames == len(jfk) // 160 == 1100
    for seek in (0, 620, 1099):
        assert np.array_equal(streamed.window(seek), whole.window(seek))
        assert np.array_equal(streamed.window(seek), recipe.window(seek))
    first, detection = streamed.window(0), streamed.detection_window()  # [80, 3000] each
    assert np.array_equal(first[:, :1100], detection[:, :1100])
    silence = detection[0, 1105]  # the floor, (max - 8 + 4) / 4: frames past the audio's reach hold only zeros
    assert not first[:, 1100:].any() and silence < 0 and (detection[:, 1105:] == silence).all()
    clipped = streamed.clipped(400).window(150)  # [80, 3000]
    assert np.array_equal(clipped[:, :250], first[:, 150:400]) and not clipped[:, 250:].any()


def test_transcribe_mel_needs_openai_windows(loaded, jfk):
    with pytest.raises(ValueError, match="log_mel_windows"):
        transcribe_mel(loaded("tiny.en"), log_mel_spectrogram(jfk), openai_defaults())


# ---------------------------------------------------------------------------------- options


def test_openai_defaults_are_its_command_line_defaults():
    options = openai_defaults()
    assert options.compat == COMPAT_OPENAI and options.openai
    assert options.temperatures == (0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0)  # np.arange, as its CLI
    assert (options.beam_size, options.best_of, options.patience) == (5, 5, None)
    assert (options.compression_ratio_threshold, options.logprob_threshold, options.no_speech_threshold) == (2.4, -1.0, 0.6)
    assert options.condition_on_previous_text and not options.word_timestamps and options.clip_timestamps == "0"
    assert openai_defaults(beam_size=None, language="de").beam_size is None
    assert set(OPENAI_CLI_DEFAULTS) <= set(DecodingOptions.__dataclass_fields__)
    with pytest.raises(ValueError, match="compat"):
        openai_defaults(compat="paddlex")
