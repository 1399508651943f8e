"""Word-level timestamps (``numwhisper.timing``) against openai-whisper's own word timing (golden/openai/).

- The alignment steps, on the tensors openai-whisper recorded (``<model>/alignment/``): our
  normalisation and median filter of its qk give its filtered matrix within float32 noise, and our
  DTW of its matrix (and of ours) gives its path exactly.
- Our forced pass (``Backend.alignment``) on the window openai-whisper read (the clip followed by
  30 s of zeros, ``mel.PaddedLogMel``): its qk and token probabilities, and ``find_alignment``'s words.
- PaddleX mode, every PaddleX golden: the words our pipeline gives PaddleX's own segments
  (``split_window``'s pieces, ``add_word_timestamps`` without adjusting segments, as ``transcribe_mel``
  runs them) against openai-whisper's word timing of the same tokens (``<model>/paddlex_words/``):
  same words, times within WORD_TIME_ATOL, and the segments stay PaddleX's. A few whole
  transcriptions with word_timestamps=True check the loop itself; with the segments adjusted, the
  segment edges are openai-whisper's.
- The Paddle backend's forced pass against the NumPy one's.
"""

import dataclasses
import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from numwhisper import timing
from numwhisper.audio import open_samples
from numwhisper.decoding import DecodingOptions, DecodingResult, choose_language, needs_detection
from numwhisper.formats.checkpoint import load
from numwhisper.golden import check as golden_check
from numwhisper.golden import files as golden
from numwhisper.golden import openai_files
from numwhisper.golden.tolerances import (ALIGNMENT_MATRIX_ATOL, ALIGNMENT_QK_ATOL, LOGITS_ATOL, WORD_PROBABILITY_ATOL,
                                          WORD_TIME_ATOL)
from numwhisper.mel import N_FRAMES, N_SAMPLES, PaddedLogMel, WholeLogMel, log_mel_spectrogram
from numwhisper.transcription import WhisperModel, log_mel_windows, split_window, transcribe, transcribe_mel

from plain_backend import PlainBackend

FILTERED_ATOL = ALIGNMENT_MATRIX_ATOL
QK_ATOL = PADDLE_QK_ATOL = ALIGNMENT_QK_ATOL

ALIGNMENT_CASES = [("base", "en_jfk"), ("base", "zh_paddlespeech_zh"), ("tiny.en", "en_jfk")]
ALIGNMENT_IDS = [f"{m}/{c}" for m, c in ALIGNMENT_CASES]
# The words of every PaddleX golden are checked in test_transcribe_parity (its compat transcriptions
# run with word_timestamps=True).
# Whole transcriptions with word_timestamps=True: two windows (tiny.en), and a language cut character
# by character, beam search and default compat (base).
TRANSCRIBED = [("tiny.en", "en_jfk", "greedy", "paddlex"), ("base", "zh_paddlespeech_zh", "beam5", None)]


def audio_of(clip: str) -> np.ndarray:
    """A golden clip's 16 kHz samples [N]."""
    return open_samples(str(golden.GOLDEN_DIR / "audio" / f"{clip}.wav")).all()


# ---------------------------------------------------------------------------------- the alignment steps


def recorded_alignment(model: str, clip: str) -> tuple:
    """openai-whisper's recorded alignment of a clip's first window -> (tensors, metadata)."""
    path = openai_files.alignment_path(model, clip)
    with safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata()
    return load_file(str(path)), metadata


@pytest.mark.parametrize("model_name, clip", ALIGNMENT_CASES, ids=ALIGNMENT_IDS)
def test_median_filter_and_dtw_reproduce_openai_whispers_steps(model_name, clip):
    tensors, metadata = recorded_alignment(model_name, clip)
    num_frames = int(metadata["num_frames"])
    n_sot = len(json.loads(metadata["sot_sequence"]))
    filtered = timing.median_filter(timing.standardised_weights(tensors["qk"], num_frames), 7)  # [A, T, F]
    matrix = filtered.mean(axis=0)[n_sot:-1]  # [n_text + 1, F]
    assert matrix.shape == tensors["matrix"].shape
    assert np.abs(matrix - tensors["matrix"]).max() <= FILTERED_ATOL
    for cost in (-tensors["matrix"], -matrix):
        text_indices, time_indices = timing.dtw(cost)
        assert np.array_equal(text_indices, tensors["text_indices"])
        assert np.array_equal(time_indices, tensors["time_indices"])


def test_median_filter_leaves_too_short_rows_and_refuses_even_widths():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)  # [2, 3]
    assert timing.median_filter(x, 7) is x
    with pytest.raises(ValueError, match="odd"):
        timing.median_filter(x, 4)


def test_punctuation_joins_its_words_as_in_openai_whisper():
    """Expected: openai-whisper's merge_punctuations on the same list (run once in its environment)."""
    words = [' "', "Hello", ",", " (", "world", ")", ".", " -", " ok", " "]
    alignment = [timing.WordTiming(w, [i], i, i + 1, 0.5) for i, w in enumerate(words)]
    timing.merge_punctuations(alignment, DecodingOptions().prepend_punctuations, DecodingOptions().append_punctuations)
    assert [(w.word, w.tokens) for w in alignment] == [
        ("", []), (' "Hello,', [0, 1, 2]), ("", []), ("", []), (" (world).", [3, 4, 5, 6]), ("", []), ("", []),
        ("", []), (" - ok", [7, 8]), (" ", [9])]


@pytest.mark.parametrize("model_name, clip", ALIGNMENT_CASES, ids=ALIGNMENT_IDS)
def test_forced_pass_and_words_match_openai_whisper(model_name, clip, loaded):
    tensors, metadata = recorded_alignment(model_name, clip)
    model = loaded(model_name)
    num_frames = int(metadata["num_frames"])
    heads = [tuple(h) for h in json.loads(metadata["heads"])]
    assert heads == list(model.alignment_heads)
    samples = np.concatenate([audio_of(clip), np.zeros(N_SAMPLES, np.float32)])  # openai-whisper's padded input
    mel = PaddedLogMel(WholeLogMel(log_mel_spectrogram(samples, model.backend.dims.n_mels)))
    assert mel.frames_at(0) == num_frames
    cross = model.backend.cross_kv(model.backend.encode(mel.window(0)))
    tokens = tensors["tokens"].tolist()
    qk, logits = model.backend.alignment(cross, tokens, heads)  # [A, T, 1500], [T, V]
    assert qk.dtype == logits.dtype == np.float32
    assert qk.shape == (len(heads), len(tokens), model.backend.dims.n_audio_ctx)
    assert np.abs(qk[:, :, :num_frames // 2] - tensors["qk"]).max() <= QK_ATOL

    language = metadata["language"] if model.tokenizer.is_multilingual else None
    text_tokens = json.loads(metadata["text_tokens"])
    assert timing.forced_tokens(model.tokenizer, language, "transcribe", text_tokens) == tokens
    n_sot = len(json.loads(metadata["sot_sequence"]))
    probs = timing.token_probabilities(logits[n_sot:n_sot + len(text_tokens), :model.tokenizer.eot], text_tokens)
    assert np.abs(probs - tensors["text_token_probs"]).max() <= WORD_PROBABILITY_ATOL

    words = timing.find_alignment(model.backend, model.tokenizer, cross, language, "transcribe", text_tokens,
                                  num_frames, heads)
    theirs = json.loads(metadata["words"])
    assert [(w.word, w.tokens) for w in words] == [(w["word"], w["tokens"]) for w in theirs]
    for mine, ref in zip(words, theirs):
        assert abs(mine.start - ref["start"]) <= WORD_TIME_ATOL and abs(mine.end - ref["end"]) <= WORD_TIME_ATOL
        assert abs(mine.probability - ref["probability"]) <= WORD_PROBABILITY_ATOL


# ---------------------------------------------------------------------------------- PaddleX mode


def window_result(segment: dict) -> DecodingResult:
    """The decoded window a PaddleX golden segment came from (its "tokens" are the window's)."""
    return DecodingResult(language="", tokens=tuple(segment["tokens"]), text="", avg_logprob=segment["avg_logprob"],
                          no_speech_prob=segment["no_speech_prob"], temperature=segment["temperature"],
                          compression_ratio=segment["compression_ratio"], sum_logprob=0.0)


def decoded_windows(segments: list) -> list:
    """A PaddleX result's segments grouped by the window that made them: runs of consecutive segments
    with the same seek and window tokens (a window can end where it began, so a seek may recur)."""
    windows = []
    for segment in segments:
        if windows and (windows[-1][0]["seek"], windows[-1][0]["tokens"]) == (segment["seek"], segment["tokens"]):
            windows[-1].append(segment)
        else:
            windows.append([segment])
    return windows


def paddlex_segments_with_words(model: WhisperModel, model_name: str, clip: str, config: str, encode,
                                adjust_segments: bool = False) -> list:
    """A PaddleX golden's segments, remade window by window by ``split_window`` from their window's
    tokens and given words as ``transcribe_mel`` gives them (or with the segments adjusted)."""
    options = golden_check.options_for(config, "paddlex")
    tokenizer = model.tokenizer_for(options)
    result = golden.load_result(model_name, clip, config)["result"]
    detected = result["language"] if needs_detection(tokenizer, options) else None
    language, _ = choose_language(tokenizer, options, detected)
    path = str(golden.GOLDEN_DIR / "audio" / f"{clip}.wav")
    mel = log_mel_windows(model, open_samples(path, paddlex=options.paddlex))
    made, last_speech = [], 0.0
    for segments in decoded_windows(result["segments"]):
        seek = segments[0]["seek"]
        found, _, _, pieces = split_window(tokenizer, options, seek, window_result(segments[0]), model.input_stride)
        assert found == [{k: v for k, v in s.items() if k != "id"} for s in segments], f"window at seek {seek}"
        last_speech = timing.add_word_timestamps(
            segments=found, segment_tokens=pieces, backend=model.backend, tokenizer=tokenizer,
            cross=encode(model, mel, seek).cross, language=language, task=options.task,
            num_frames=min(N_FRAMES, mel.n_frames - seek), heads=model.alignment_heads,
            prepend_punctuations=options.prepend_punctuations, append_punctuations=options.append_punctuations,
            last_speech_timestamp=last_speech, adjust_segments=adjust_segments)
        made += [{"id": s["id"], **f} for s, f in zip(segments, found)]
    return made


@pytest.fixture(scope="module")
def paddlex_words(loaded, encoder_memo):
    """A function (model, clip, config) -> (our segments with words, [WordComparison with openai-whisper's
    per segment]), each computed once per module."""
    done, encode = {}, golden_check.shared_encoder(encoder_memo)

    def get(model_name: str, clip: str, config: str):
        key = (model_name, clip, config)
        if key not in done:
            ours = paddlex_segments_with_words(loaded(model_name), model_name, clip, config, encode)
            reference = openai_files.load_paddlex_words(model_name, config, clip)["segments"]
            assert [s["id"] for s in ours] == [s["id"] for s in reference]
            compared = [openai_files.compare_words(mine["words"], ref["words"], f"segment {ref['id']}")
                        for mine, ref in zip(ours, reference)]
            done[key] = ours, compared
        return done[key]

    return get


@pytest.mark.parametrize("model_name, clip", [("tiny.en", "en_voxpopuli_long_000")])
def test_adjusted_segment_edges_are_openai_whispers(model_name, clip, loaded, encoder_memo):
    """With adjust_segments the segments move as openai-whisper moves them (adjusted_start/end): four
    windows of several segments each, where each segment's rules read the adjusted end before it."""
    ours = paddlex_segments_with_words(loaded(model_name), model_name, clip, "greedy",
                                       golden_check.shared_encoder(encoder_memo), adjust_segments=True)
    reference = openai_files.load_paddlex_words(model_name, "greedy", clip)["segments"]
    for mine, ref in zip(ours, reference):
        edge_words = openai_files.compare_words(mine["words"], ref["words"], f"segment {ref['id']}")
        assert not edge_words.problems
        assert abs(mine["start"] - ref["adjusted_start"]) <= WORD_TIME_ATOL
        assert abs(mine["end"] - ref["adjusted_end"]) <= WORD_TIME_ATOL


@pytest.mark.parametrize("model_name, clip, config, compat", TRANSCRIBED,
                         ids=[f"{m}/{c}-{g}-{x}" for m, c, g, x in TRANSCRIBED])
def test_transcribe_with_words_keeps_paddlexs_result(model_name, clip, config, compat, loaded, encoder_memo,
                                                     paddlex_words, repo, monkeypatch):
    monkeypatch.chdir(repo)
    options = dataclasses.replace(golden_check.options_for(config, compat), word_timestamps=True)
    encode = golden_check.shared_encoder(encoder_memo)
    result = transcribe(loaded(model_name), f"golden/audio/{clip}.wav", options, encode=encode)["result"]
    words = [s.pop("words") for s in result["segments"]]
    problems = golden.result_differences(result, golden.load_result(model_name, clip, config)["result"])
    assert not problems, "\n".join(problems)
    expected, _ = paddlex_words(model_name, clip, config)
    assert words == [s["words"] for s in expected]


def test_word_timestamps_need_an_alignment_backend_and_heads(loaded, model_files):
    mel = np.zeros((80, 100), np.float32)  # [n_mels, T]
    options = dataclasses.replace(golden_check.options_for("greedy", None), word_timestamps=True)
    plain = WhisperModel.with_backend(PlainBackend(model_files["tiny.en"]), load(model_files["tiny.en"]).metadata)
    with pytest.raises(ValueError, match="has no alignment"):
        transcribe_mel(plain, mel, options)
    headless = dataclasses.replace(loaded("tiny.en"), alignment_heads=())
    with pytest.raises(ValueError, match="no alignment heads"):
        transcribe_mel(headless, mel, options)
    with pytest.raises(ValueError, match="outside the decoder"):
        loaded("tiny.en").backend.alignment(None, [1, 2], [(9, 0)])



def test_a_model_file_naming_no_heads_gets_the_decoders_second_half(model_files):
    metadata = {**load(model_files["tiny.en"]).metadata, "alignment_heads": "[]"}
    model = WhisperModel.with_backend(PlainBackend(model_files["tiny.en"]), metadata)
    assert model.alignment_heads == tuple((layer, head) for layer in (2, 3) for head in range(6))  # tiny: 4 x 6


# ---------------------------------------------------------------------------------- the Paddle backend


@pytest.mark.parametrize("model_name", ["base", "tiny.en"])
def test_paddle_backends_forced_pass_equals_numpys(model_name, loaded, backend_for, encoder_memo):
    model = loaded(model_name)
    paddle = backend_for("paddle-cpu", model_name)
    mel = log_mel_windows(model, open_samples(str(golden.GOLDEN_DIR / "audio" / "en_jfk.wav")))
    window = golden_check.shared_encoder(encoder_memo)(model, mel, 0)
    tokenizer = model.tokenizer
    language = "en" if tokenizer.is_multilingual else None
    text = tokenizer.encode(" And so my fellow Americans, ask not what your country can do for you.")
    tokens = timing.forced_tokens(tokenizer, language, "transcribe", text)
    qk, logits = model.backend.alignment(window.cross, tokens, model.alignment_heads)
    paddle_cross = paddle.cross_kv(window.features)
    paddle_qk, paddle_logits = paddle.alignment(paddle_cross, tokens, model.alignment_heads)
    assert paddle_qk.shape == qk.shape and paddle_logits.shape == logits.shape
    assert np.abs(paddle_qk - qk).max() <= PADDLE_QK_ATOL
    assert np.abs(paddle_logits - logits).max() <= LOGITS_ATOL
    num_frames = min(N_FRAMES, mel.n_frames)
    words = [timing.find_alignment(backend, tokenizer, cross, language, "transcribe", text, num_frames,
                                   model.alignment_heads)
             for backend, cross in ((model.backend, window.cross), (paddle, paddle_cross))]
    assert [(w.word, w.start, w.end) for w in words[0]] == [(w.word, w.start, w.end) for w in words[1]]
    assert max(abs(a.probability - b.probability) for a, b in zip(*words)) <= WORD_PROBABILITY_ATOL
