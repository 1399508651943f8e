"""Decoding and transcription behaviour that needs no golden, and the one home of the tests of what
each decoding option does: the numerics, logit filters, beam search and DecodingOptions on their own,
audio input, then each option's effect on real clips with the session's base and tiny.en models
(language, task, beam_size, patience, length_penalty, temperature, seed, best_of, the fallback
thresholds, no_speech_threshold, initial_prompt, condition_on_previous_text, compat), and a
sub-second clip. That each CLI flag reaches its option is tested in test_cli_options.py.
"""

import dataclasses
import re

import numpy as np
import pytest
import scipy.signal
import soundfile

from numwhisper import decoding
from numwhisper.audio import load_audio
from numwhisper.decoding import (BeamSearchDecoder, BeamState, DecodingOptions, DecodingTask, GreedyDecoder,
                                 MaximumLikelihoodRanker, PaddleXFailure, TimestampRules, log_softmax, top_k)
from numwhisper.mel import SAMPLE_RATE
from numwhisper.mel import log_mel_spectrogram
from numwhisper.transcription import encode_window, transcribe

AUDIO = "golden/audio"
JFK = f"{AUDIO}/en_jfk.wav"
DE = f"{AUDIO}/de_picovoice_test_de.wav"
LONG = f"{AUDIO}/en_voxpopuli_long_000.wav"
JFK_WORDS = "ask not what your country can do for you"
GREEDY = DecodingOptions(beam_size=None)  # PaddleX's greedy config: argmax, no beams


def words(text: str) -> str:
    """Lower-case words separated by single spaces (punctuation dropped)."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


def result_of(model, clip, **options) -> dict:
    """The inner result of ``model.transcribe(clip, **options)`` (the Python API's keyword options)."""
    return model.transcribe(clip, **options)["result"]


def temperatures(result: dict) -> set:
    """The temperatures the result's segments were decoded at."""
    return {segment["temperature"] for segment in result["segments"]}


def plain_words(text: str) -> list:
    """Lower-case words with commas and full stops removed (other punctuation kept)."""
    return text.lower().replace(",", "").replace(".", "").split()


@pytest.fixture(autouse=True)
def _at_repo(repo, monkeypatch):
    """Clip paths are relative to the repository root."""
    monkeypatch.chdir(repo)


# ---------------------------------------------------------------------------- numerics and filters


def test_log_softmax_clamps_at_64_below_the_row_max_like_paddle():
    row = np.array([[3.0, 1.0, -70.0, -np.inf, 2.5]], dtype=np.float32)
    out = log_softmax(row)[0]
    shifted = np.maximum(row[0] - 3.0, -64.0)
    expected = shifted - np.log(np.exp(shifted).sum())
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
    assert np.isfinite(out).all()  # -inf and -70 both come out near -64, as in paddle's kernel
    assert out[2] == out[3]
    plain = row[0, [0, 1, 4]] - np.log(np.exp(row[0, [0, 1, 4]].astype(np.float64)).sum())
    np.testing.assert_allclose(out[[0, 1, 4]], plain, atol=1e-6)


def test_top_k_is_descending_with_ties_by_lower_id():
    row = np.array([[1, 3, 3, 2, 3, 0, 3], [0, 0, -np.inf, 5, 0, 0, 0]], dtype=np.float32)
    values, ids = top_k(row, 3)
    assert ids.tolist() == [[1, 2, 4], [3, 0, 1]] and values.tolist() == [[3, 3, 3], [5, 0, 0]]


def test_top_k_matches_a_full_sort_on_rows_full_of_ties():
    rng = np.random.default_rng(7)
    for _ in range(300):
        rows = rng.integers(-3, 4, size=(rng.integers(1, 6), rng.integers(1, 30))).astype(np.float32)  # [B, V]
        rows[:, ::3] = -np.inf
        k = int(rng.integers(1, 8))
        values, ids = top_k(rows, k)
        for row, got_values, got_ids in zip(rows, values, ids):
            order = np.lexsort((np.arange(row.shape[0]), -row))[:k]  # value descending, then index
            assert got_ids.tolist() == order.tolist() and got_values.tolist() == row[order].tolist()


def test_compression_ratio_is_zlib_based():
    assert decoding.compression_ratio("ab" * 200) > 10
    assert decoding.compression_ratio("") == 0.0


def _rules(tokenizer, monotonic: bool, max_initial=None) -> TimestampRules:
    return TimestampRules(tokenizer.eot, tokenizer.no_timestamps, tokenizer.timestamp_begin, 3, max_initial, monotonic)


def _masked(rule, tokenizer, sampled) -> np.ndarray:
    """Which tokens ``rule`` forbids after the sot sequence + ``sampled`` (timestamps unlikely, so
    the rule forcing a timestamp when timestamps are likelier than any text token stays out of it)."""
    tokens = np.array([list(tokenizer.sot_sequence("en")) + list(sampled)])
    logits = np.zeros((1, tokenizer.n_vocab), dtype=np.float32)
    logits[0, tokenizer.timestamp_begin:] = -10.0
    rule.apply(logits, tokens)
    return np.isneginf(logits[0])


def test_timestamps_come_in_pairs(base):
    tok = base.tokenizer
    ts = tok.timestamp_begin
    rule = _rules(tok, monotonic=False)
    after_pair = _masked(rule, tok, [ts, 400, ts + 50, ts + 50])
    assert after_pair[ts:].all() and not after_pair[:tok.eot].any()  # text must follow a closed pair
    after_end = _masked(rule, tok, [ts, 400, ts + 50])
    assert after_end[:tok.eot].all() and not after_end[ts:].any() and not after_end[tok.eot]
    assert _masked(rule, tok, [ts, 400])[tok.no_timestamps]
    likely = np.zeros((1, tok.n_vocab), dtype=np.float32)  # timestamps together outweigh any text token
    rule.apply(likely, np.array([list(tok.sot_sequence("en")) + [ts, 400]]))
    assert np.isneginf(likely[0, :ts]).all() and not np.isneginf(likely[0, ts:]).any()


def test_monotonic_rule_is_an_opt_in(base):
    tok = base.tokenizer
    ts = tok.timestamp_begin
    sampled = [ts, 400, ts + 50, ts + 50, 401]  # inside the second segment, which began at 1.00
    paddlex_like = _masked(_rules(tok, monotonic=False), tok, sampled)
    ours = _masked(_rules(tok, monotonic=True), tok, sampled)
    assert not paddlex_like[ts:ts + 51].any()  # PaddleX may go back in time or end a segment at its start
    assert ours[ts:ts + 51].all() and not ours[ts + 51]  # the end must be later than the start
    assert not DecodingOptions().monotonic_timestamps  # PaddleX has no such rule; it would change its results


def test_first_timestamp_is_at_most_max_initial_timestamp(base):
    tok = base.tokenizer
    ts = tok.timestamp_begin
    first = _masked(_rules(tok, monotonic=True, max_initial=50), tok, [])
    assert not first[ts:ts + 51].any() and first[ts + 51:].all()


def test_beam_search_collects_finished_candidates_and_ranks_by_length_normalised_score():
    eot, vocab = 9, 10
    beam = BeamSearchDecoder(beam_size=2, eot=eot)
    step1 = np.full((2, vocab), -20.0, dtype=np.float32)
    step1[:, 1], step1[:, 2] = 5.0, 4.0
    tokens, sums, sources, state, done = beam.update(np.array([[0], [0]]), step1, np.zeros(2, np.float32), BeamState())
    assert tokens.tolist() == [[0, 1], [0, 2]] and not done and state.finished == ()
    assert sources == [1, 1]  # the beams were identical: PaddleX keeps the last beam proposing a sequence
    step2 = np.full((2, vocab), -20.0, dtype=np.float32)
    step2[:, eot], step2[:, 1], step2[:, 2] = 5.0, 3.0, 1.0
    tokens, sums2, sources, state, done = beam.update(tokens, step2, sums, state)
    assert done and [seq for seq, _ in state.finished] == [(0, 1, eot), (0, 2, eot)]
    assert tokens.tolist() == [[0, 1, 1], [0, 2, 1]] and sources == [0, 1]
    expected = np.float32(sums[0]) + log_softmax(step2)[0, eot]
    assert state.finished[0][1] == float(expected)  # float32 running sums, as paddle's
    sequences, scores = beam.finalize(tokens, sums2, state)
    assert sequences == [(0, 1, eot), (0, 2, eot)]
    ranker = MaximumLikelihoodRanker()
    assert ranker.rank([s[1:-1] for s in sequences], scores) == 0
    # the length penalty divides by the text length (without <|endoftext|>), or by Google NMT's term
    assert ranker.rank([(1,), (1, 2, 3, 4)], [-1.0, -3.0]) == 1
    assert MaximumLikelihoodRanker(length_penalty=0.0).rank([(1,), (1, 2, 3, 4)], [-1.0, -3.0]) == 0
    assert BeamSearchDecoder(5, eot, patience=2.0).max_candidates == 10


def test_greedy_sums_log_probabilities_unless_paddlex():
    logits = np.array([[0.0, 2.0, 1.0]], dtype=np.float32)
    tokens = np.array([[0]])
    fixed = GreedyDecoder(0, eot=2).update(tokens, logits, np.zeros(1, np.float32), None)
    bug = GreedyDecoder(0, eot=2, accumulate=False).update(tokens, logits, np.zeros(1, np.float32), None)
    assert fixed[0].tolist() == bug[0].tolist() == [[0, 1]]
    assert fixed[1][0] == pytest.approx(log_softmax(logits)[0, 1]) and bug[1][0] == 0.0


def test_options_follow_paddlex_names_defaults_and_checks():
    opts = DecodingOptions()
    assert (opts.beam_size, opts.best_of, opts.temperature, opts.language) == (5, 5, 0, None)
    assert opts.suppress_tokens == "-1" and type(opts.temperature) is int
    assert opts.max_initial_timestamp == 1.0 and opts.temperatures == (0,)
    assert DecodingOptions(temperature_increment_on_fallback=0.2).temperatures == (0.0, 0.2, 0.4, 0.6000000000000001,
                                                                                  0.8, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.beam_size = 1
    for bad in (dict(patience=1.0, beam_size=None), dict(length_penalty=2.0), dict(compat="whisper"),
                dict(task="summarize"), dict(language="klingon"), dict(temperature=-1)):
        with pytest.raises(ValueError):
            DecodingOptions(**bad)


def test_paddlex_decode_fails_where_paddlex_fails(base):
    tok = base.tokenizer
    with pytest.raises(PaddleXFailure):
        decoding.paddlex_decode(tok, [], "a test")
    with pytest.raises(PaddleXFailure):
        decoding.paddlex_decode(tok, [tok.timestamp_begin], "a test")
    assert decoding.paddlex_decode(tok, [400], "a test") == tok.decode([400]) == " And"
    assert tok.decode([]) == ""


@pytest.mark.parametrize("shape", [(5, 51865), (1, 51865), (3, 7), (51865,), (2, 3, 100)])
def test_sequential_sum_is_numpys_front_to_back_float32_sum_bit_for_bit(shape):
    """The Numba row sum must round exactly as np.add.accumulate (paddle's CPU order), on any leading shape."""
    rng = np.random.default_rng(sum(shape))
    x = np.exp(rng.normal(size=shape).astype(np.float32) * 8 - 20).astype(np.float32)  # a wide range of sizes
    expected = np.add.accumulate(x, axis=-1, dtype=np.float32)[..., -1:]  # [..., 1]
    got = decoding.sequential_sum(x)  # [..., 1]
    assert got.shape == expected.shape and got.dtype == np.float32 and np.array_equal(got, expected)


# ------------------------------------------------------------------------------------- audio input


def test_other_sample_rates_are_resampled_unless_paddlex(tmp_path, base):
    audio, rate = soundfile.read(JFK, dtype="float32")
    assert rate == SAMPLE_RATE
    path = tmp_path / "jfk8k.wav"
    soundfile.write(path, scipy.signal.resample_poly(audio, 1, 2), 8000, subtype="FLOAT")
    assert load_audio(path).shape[0] == 2 * soundfile.info(path).frames
    assert load_audio(path, paddlex=True).shape[0] == soundfile.info(path).frames  # PaddleX ignores the rate
    result = transcribe(base, str(path), dataclasses.replace(GREEDY, language="en"))["result"]
    text = words(result["text"])
    assert "not what your country can do for you" in text and "ask what you can do for your country" in text


# ---------------------------------------------------------------------------------------- language


def test_language_forces_the_decoding_language(base):
    detected = result_of(base, DE, beam_size=None)
    forced = result_of(base, DE, beam_size=None, language="en")
    assert detected["language"] == "de" and "Portal" in detected["text"]
    assert forced["language"] == "en" and forced["text"] != detected["text"] and forced["text"].isascii()


def test_forced_language_sets_the_prompt_and_the_result(base):
    result = transcribe(base, f"{AUDIO}/de_picovoice_test_de.wav", dataclasses.replace(GREEDY, language="German"))
    assert result["result"]["language"] == "de"
    assert "raum wurde als" in words(result["result"]["text"])
    task = DecodingTask.build(base.backend, base.tokenizer, DecodingOptions(language="de"), "de")
    assert task.initial_tokens == (base.tokenizer.sot, base.tokenizer.language_token("de"), base.tokenizer.transcribe)
    compat = transcribe(base, f"{AUDIO}/de_picovoice_test_de.wav",
                        dataclasses.replace(GREEDY, language="German", compat="paddlex"))
    assert compat["result"]["language"] == "German"  # PaddleX echoes the language as given
    assert compat["result"]["text"] == result["result"]["text"]


def test_english_only_models_refuse_another_language(tiny_en):
    with pytest.raises(ValueError, match="English-only: it cannot transcribe language 'de'"):
        tiny_en.transcribe(JFK, beam_size=None, language="de")
    assert result_of(tiny_en, JFK, beam_size=None, language="English")["language"] == "en"
    as_paddlex = result_of(tiny_en, JFK, beam_size=None, language="de", compat="paddlex")  # PaddleX decodes English
    assert plain_words(as_paddlex["text"]) == plain_words(result_of(tiny_en, JFK, beam_size=None)["text"])


def test_english_only_model_never_detects_language(tiny_en):
    result = transcribe(tiny_en, JFK, dataclasses.replace(GREEDY, task="translate"))["result"]
    assert result["language"] == "en"
    assert JFK_WORDS in words(result["text"])
    assert tiny_en.tokenizer.sot_sequence("de", "translate") == (tiny_en.tokenizer.sot,)
    window = encode_window(tiny_en, log_mel_spectrogram(load_audio(JFK)), 0)
    with pytest.raises(ValueError, match="English-only"):
        decoding.detect_language(tiny_en.backend, tiny_en.tokenizer, window.features)


# -------------------------------------------------------------------------------------------- task


@pytest.mark.parametrize("clip, source_words, opening", [
    ("de_picovoice_test_de", {"der", "diesem", "wurde", "genutzt", "raum"}, "The "),
    ("fr_picovoice_test_fr", {"sous", "le", "il", "devient", "des", "et", "eaux"}, "Under "),
])
def test_translate_gives_english(base, clip, source_words, opening):
    transcribed = transcribe(base, f"{AUDIO}/{clip}.wav", GREEDY)["result"]
    result = transcribe(base, f"{AUDIO}/{clip}.wav", dataclasses.replace(GREEDY, task="translate"))["result"]
    text = words(result["text"])
    assert result["language"] == clip[:2]  # the detected source language is reported
    assert result["text"] != transcribed["text"] and result["text"].strip().startswith(opening), result["text"]
    assert text.isascii(), text
    assert len({"the", "of", "and", "is", "was", "a", "as", "in", "it"} & set(text.split())) >= 2, text
    assert not source_words & set(text.split()), text


# ------------------------------------------------------------- beam_size, patience, length_penalty


def test_beam_search_and_greedy_differ(tiny_en):
    greedy = result_of(tiny_en, JFK, beam_size=None)
    beam = result_of(tiny_en, JFK, beam_size=5)
    assert greedy["text"].startswith(" And so my") and beam["text"].startswith(" And so, my")


def test_patience_changes_how_many_finished_beams_are_awaited(tiny_en):
    default = result_of(tiny_en, JFK)
    impatient = result_of(tiny_en, JFK, patience=0.5)  # stop after round(5 * 0.5) = 2 finished candidates
    assert impatient["segments"] != default["segments"]


def test_length_penalty_changes_the_ranking_of_candidates(tiny_en):
    clip = "golden/audio/en_ljspeech_LJ001-0001.wav"
    by_length = result_of(tiny_en, clip)
    by_alpha = {alpha: result_of(tiny_en, clip, length_penalty=alpha) for alpha in (0.0, 1.0)}
    assert by_alpha[0.0]["segments"] != by_length["segments"]
    assert by_alpha[1.0]["segments"] != by_length["segments"]


# ---------------------------------------------------------------------- temperature, seed, best_of


def test_temperature_samples_reproducibly_per_seed(tiny_en):
    first = result_of(tiny_en, JFK, beam_size=None, temperature=1.0, seed=1)
    again = result_of(tiny_en, JFK, beam_size=None, temperature=1.0, seed=1)
    other = result_of(tiny_en, JFK, beam_size=None, temperature=1.0, seed=2)
    assert first == again and first != other and temperatures(first) == {1.0}


def test_best_of_changes_how_many_samples_compete(tiny_en):
    five = result_of(tiny_en, JFK, beam_size=None, temperature=1.0, seed=1, best_of=5)
    one = result_of(tiny_en, JFK, beam_size=None, temperature=1.0, seed=1, best_of=1)
    assert five["segments"] != one["segments"]


def test_seeded_sampling_is_reproducible(base):
    window = encode_window(base, log_mel_spectrogram(load_audio(JFK)), 0)
    opts = DecodingOptions(temperature=0.8, best_of=3, language="en", seed=11)

    def sample(options):
        return decoding.decode(base.backend, base.tokenizer, window.features, options, cross=window.cross)

    first, second = sample(opts), sample(opts)
    assert first.tokens == second.tokens and first.avg_logprob == second.avg_logprob
    assert first.temperature == 0.8 and first.avg_logprob < 0
    a = decoding.sampling_generator(opts, (0, 1)).random(4)
    assert np.array_equal(a, decoding.sampling_generator(opts, (0, 1)).random(4))
    assert not np.array_equal(a, decoding.sampling_generator(dataclasses.replace(opts, seed=12), (0, 1)).random(4))
    unseeded = DecodingOptions(compat="paddlex")  # PaddleX draws from fresh entropy
    assert not np.array_equal(decoding.sampling_generator(unseeded, ()).random(4),
                              decoding.sampling_generator(unseeded, ()).random(4))


# ------------------------------------------------------------ temperature fallback: the thresholds


@pytest.mark.parametrize("threshold", [{"logprob_threshold": 0.0}, {"compression_ratio_threshold": 0.5}],
                         ids=["logprob_threshold", "compression_ratio_threshold"])
def test_thresholds_trigger_temperature_fallback(tiny_en, threshold):
    """A threshold no decoding can meet makes every window try 0, 0.5 and 1.0, keeping the last."""
    fallback = result_of(tiny_en, JFK, beam_size=None, temperature_increment_on_fallback=0.5, **threshold)
    no_fallback = result_of(tiny_en, JFK, beam_size=None, temperature_increment_on_fallback=None, **threshold)
    assert temperatures(fallback) == {1.0} and temperatures(no_fallback) == {0}


def test_temperature_fallback_is_triggered_and_the_last_temperature_kept(base):
    clip = f"{AUDIO}/en_ls_1272-128104-0000.wav"
    unreachable = dataclasses.replace(GREEDY, temperature_increment_on_fallback=0.5, logprob_threshold=-0.01,
                                      best_of=2, seed=7)
    fixed = transcribe(base, clip, unreachable)["result"]
    assert [s["temperature"] for s in fixed["segments"]] == [1.0] * len(fixed["segments"])  # 0.0, 0.5, 1.0 all tried
    assert fixed["segments"][0]["avg_logprob"] < -0.01
    again = transcribe(base, clip, unreachable)["result"]
    assert again == fixed  # seeded sampling: the same draws
    paddlex = transcribe(base, clip, dataclasses.replace(unreachable, compat="paddlex"))["result"]
    # PaddleX's greedy avg_logprob is 0.0, so its log-prob fallback never fires
    assert [s["temperature"] for s in paddlex["segments"]] == [0.0] * len(paddlex["segments"])
    assert paddlex["text"] == transcribe(base, clip, GREEDY)["result"]["text"]


# ---------------------------------------------------------- no_speech_threshold: silence and noise


def test_no_speech_threshold_drops_windows_judged_silent(tiny_en):
    kept = result_of(tiny_en, JFK, beam_size=None)
    dropped = result_of(tiny_en, JFK, beam_size=None, no_speech_threshold=0.0, logprob_threshold=10.0)
    assert kept["segments"] and dropped["segments"] == [] and dropped["text"] == ""


def test_noise_is_dropped_as_no_speech_but_paddlex_greedy_keeps_it(base):
    noise = np.random.default_rng(0).normal(0.0, 0.1, 10 * SAMPLE_RATE).astype(np.float32)
    ours = transcribe(base, noise, GREEDY)["result"]
    assert ours["text"] == "" and ours["segments"] == []
    paddlex = transcribe(base, noise, dataclasses.replace(GREEDY, compat="paddlex"))["result"]
    assert paddlex["segments"], "PaddleX's greedy never skips (its avg_logprob is 0.0)"
    assert all(s["no_speech_prob"] > 0.6 and s["avg_logprob"] == 0.0 for s in paddlex["segments"])


def test_silence_gives_no_text(base):
    silence = np.zeros(10 * SAMPLE_RATE, dtype=np.float32)
    result = transcribe(base, silence, dataclasses.replace(GREEDY, language="en"))["result"]
    assert result["text"] == "" and result["segments"] == []


def test_everything_skipped_fails_in_compat_as_paddlex_does(base):
    noise = np.random.default_rng(1).normal(0.0, 0.1, 5 * SAMPLE_RATE).astype(np.float32)
    skip_all = dataclasses.replace(GREEDY, language="en", logprob_threshold=None, no_speech_threshold=0.0)
    assert transcribe(base, noise, skip_all)["result"] == {"text": "", "segments": [], "language": "en"}
    with pytest.raises(PaddleXFailure, match="no tokens"):
        transcribe(base, noise, dataclasses.replace(skip_all, compat="paddlex"))


# ------------------------------------------------------ initial_prompt, condition_on_previous_text


def test_initial_prompt_steers_the_punctuation(tiny_en):
    plain = result_of(tiny_en, JFK)
    prompted = result_of(tiny_en, JFK, initial_prompt="ASK NOT. WHAT YOUR COUNTRY CAN DO FOR YOU.")
    assert "for you ask" in plain["text"] and "for you. Ask" in prompted["text"]


def test_initial_prompt_is_the_decoding_context(base):
    clip = f"{AUDIO}/en_ls_1272-128104-0000.wav"  # one window
    prompt_text = "Mr. Quilter's lecture on the middle classes."
    prompted = transcribe(base, clip, dataclasses.replace(GREEDY, initial_prompt=prompt_text))["result"]
    assert "quilter is the apostle of the middle classes" in words(prompted["text"])
    tok = base.tokenizer
    prompt = tok.encode(" " + prompt_text)
    task = DecodingTask.build(base.backend, tok, GREEDY, "en", prompt)
    assert task.initial_tokens == (tok.sot_prev, *prompt, *tok.sot_sequence("en"))
    window = encode_window(base, log_mel_spectrogram(load_audio(clip)), 0)
    with_prompt = task.run(base.backend, window.features, None, window.cross)
    assert list(with_prompt.tokens) == prompted["segments"][0]["tokens"]  # transcribe fed exactly this prompt
    assert with_prompt.avg_logprob == prompted["segments"][0]["avg_logprob"]
    without = DecodingTask.build(base.backend, tok, GREEDY, "en").run(base.backend, window.features, None, window.cross)
    assert without.avg_logprob != with_prompt.avg_logprob  # the context changed the model's view
    # compat encodes the prompt with PaddleX's BPE, which lacks the first merge ("Ġ t")
    assert tok.encode(" the") == [264] and base.paddlex_tokenizer.encode(" the") == [220, 3322]


def test_condition_on_previous_text_changes_later_windows(tiny_en):
    conditioned = result_of(tiny_en, LONG, beam_size=None)
    unconditioned = result_of(tiny_en, LONG, beam_size=None, condition_on_previous_text=False)
    first_seek = conditioned["segments"][0]["seek"]
    later = [s for s in conditioned["segments"] if s["seek"] != first_seek]
    later_free = [s for s in unconditioned["segments"] if s["seek"] != first_seek]
    assert later and later != later_free
    assert [s for s in conditioned["segments"] if s["seek"] == first_seek] == \
        [s for s in unconditioned["segments"] if s["seek"] == first_seek]  # window 0 has no previous text


def test_previous_text_is_the_next_windows_prompt_unless_disabled(base):
    mel = log_mel_spectrogram(load_audio(JFK))  # 11 s: a second window starts where the first one's text ended
    tok = base.tokenizer
    for condition in (True, False):
        options = dataclasses.replace(GREEDY, language="en", condition_on_previous_text=condition)
        segments = transcribe(base, JFK, options)["result"]["segments"]
        first, second = segments[0], segments[-1]
        assert second["seek"] > 0 and first["seek"] == 0
        tokens = first["tokens"]  # the context runs to the start timestamp after the last pair of timestamps
        pairs = [i for i in range(len(tokens) - 1) if min(tokens[i], tokens[i + 1]) >= tok.timestamp_begin]
        context = tokens[:pairs[-1] + 2] if condition else []
        window = encode_window(base, mel, second["seek"])
        expected = DecodingTask.build(base.backend, tok, options, "en", context).run(
            base.backend, window.features, None, window.cross)
        assert list(expected.tokens) == second["tokens"] and expected.avg_logprob == second["avg_logprob"]


# ------------------------------------------------------------------------------------- other clips


def test_clip_shorter_than_one_second(base):
    audio = load_audio(f"{AUDIO}/zh_sr_chinese.wav")
    assert audio.shape[0] < SAMPLE_RATE
    result = transcribe(base, f"{AUDIO}/zh_sr_chinese.wav", DecodingOptions())["result"]
    assert result["language"] == "zh"
    assert re.search(r"[\u4e00-\u9fff]", result["text"])
    assert result["segments"][0]["start"] == 0.0 and result["segments"][0]["seek"] == 0
