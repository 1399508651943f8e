"""The transformer vs PaddleX's Whisper: encoder output, decoder logits and language probabilities on
every golden case (base on every clip, tiny.en on the English ones), plus the decoder cache mechanics.

Each case runs our own chain from the golden mel: encode window 0, then the decoder on PaddleX's
prefix with its kv cache, one appended token per step, as the generator did.
"""

from pathlib import Path

import numpy as np
import pytest

from numwhisper import golden, model
from numwhisper.checkpoint import load
from numwhisper.mel import N_FRAMES, pad_or_trim
from numwhisper.tokenizer import Tokenizer
from numwhisper.tolerances import (DECODER_CACHE_ATOL, ENCODER_ATOL, ENCODER_REL_FROBENIUS, LANGUAGE_PROBS_ATOL,
                                   LOGITS_ATOL, LOGITS_TOPK_ORDER)

CASES = golden.cases()
CASE_IDS = [f"{c.model}/{c.clip}" for c in CASES]
MULTILINGUAL_CASES = [c for c in CASES if c.model == "base"]
AUDIO_MANIFEST = golden.GOLDEN_DIR / "audio" / "manifest.tsv"


def _clip_languages() -> dict:
    """{clip: language} from golden/audio/manifest.tsv."""
    rows = [line.split("\t") for line in AUDIO_MANIFEST.read_text(encoding="utf-8").splitlines()[1:] if line]
    return {Path(row[0]).stem: row[1] for row in rows}


@pytest.fixture(scope="session")
def models(model_files) -> dict:
    """{name: (Weights, Tokenizer)} for both packaged models."""
    out = {}
    for name, path in model_files.items():
        checkpoint = load(path)
        out[name] = (model.weights_from_checkpoint(checkpoint), Tokenizer.from_metadata(checkpoint.metadata))
    return out


def _run_case(weights: model.Weights, tokenizer: Tokenizer, case: golden.CaseTensors) -> dict:
    """Our encoder output, per-step logits [n_steps, V] and language probabilities for one case."""
    mel = pad_or_trim(case.mel, N_FRAMES)  # [80, 3000]
    audio_features = model.encode(weights, mel)  # [1500, d]
    cross = model.cross_kv(weights, audio_features)
    logits, cache = model.decode(weights, np.array([case.prefix]), model.new_cache(weights, cross))  # [1, P, V]
    steps = [logits[0, -1]]
    for token in case.appended:
        logits, cache = model.decode(weights, np.array([[token]]), cache)  # [1, 1, V]
        steps.append(logits[0, -1])
    probs = None
    if case.language_codes is not None:
        ids = [tokenizer.language_token(code) for code in case.language_codes]
        probs = model.language_probs(weights, audio_features, tokenizer.sot, ids, cross=cross)  # [99]
    return {"encoder": audio_features, "logits": np.stack(steps), "language_probs": probs}


@pytest.fixture(scope="session")
def outputs(models):
    """A function case -> (golden CaseTensors, our outputs), each case run once per session."""
    memo = {}

    def get(case: golden.Case):
        key = (case.model, case.clip)
        if key not in memo:
            tensors = golden.load_case(case.model, case.clip)
            memo[key] = (tensors, _run_case(*models[case.model], tensors))
        return memo[key]

    return get


def _top_ids(values: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest values, descending, ties by ascending id (the golden files' order)."""
    return ids[np.lexsort((ids, -values))[:k]]


def test_every_golden_clip_has_its_cases():
    languages = _clip_languages()
    have = {(c.model, c.clip) for c in CASES}
    english = [clip for clip, language in languages.items() if language == "en"]
    expected = {("base", clip) for clip in languages} | {("tiny.en", clip) for clip in english}
    assert expected <= have, f"golden cases missing (run golden/generate.py): {sorted(expected - have)}"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_encoder_output_matches_paddlex(case, outputs):
    tensors, ours = outputs(case)
    got = ours["encoder"][tensors.encoder_rows]  # [R, d]
    expected = tensors.encoder_output  # [R, d]
    report = golden.compare(f"{case.model}/{case.clip} encoder_output", got, expected, ENCODER_ATOL,
                            index=tensors.encoder_rows)
    assert report.ok, report.report
    rel = float(np.linalg.norm((got - expected).astype(np.float64)) / np.linalg.norm(expected.astype(np.float64)))
    assert rel <= ENCODER_REL_FROBENIUS, (f"{case.model}/{case.clip} encoder_output: relative Frobenius error "
                                          f"{rel:.3g} > {ENCODER_REL_FROBENIUS}\n{report.report}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_decoder_logits_match_paddlex(case, outputs):
    tensors, ours = outputs(case)
    assert ours["logits"].shape == (len(tensors.logits), ours["logits"].shape[1])
    failures = []
    for k, (step, row) in enumerate(zip(tensors.logits, ours["logits"])):
        name = f"{case.model}/{case.clip} logits step {k}"
        report = golden.compare(name, row[step.ids], step.values, LOGITS_ATOL, index=step.ids)
        if not report.ok:
            failures.append(report.report)
        if int(np.argmax(row)) != tensors.argmax[k]:
            failures.append(f"{name}: argmax ours {int(np.argmax(row))} theirs {tensors.argmax[k]}")
        vocab = np.arange(row.shape[0])  # [V]
        ours_top = _top_ids(row, vocab, LOGITS_TOPK_ORDER)
        theirs_top = step.top_ids[:LOGITS_TOPK_ORDER]
        if not np.array_equal(ours_top, theirs_top):
            failures.append(f"{name}: top-{LOGITS_TOPK_ORDER} ours {ours_top.tolist()} (logits "
                            f"{row[ours_top].tolist()}) theirs {theirs_top.tolist()}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", MULTILINGUAL_CASES, ids=[f"{c.model}/{c.clip}" for c in MULTILINGUAL_CASES])
def test_language_probs_match_paddlex(case, outputs):
    tensors, ours = outputs(case)
    assert tensors.language_probs is not None, f"{case.model}/{case.clip}: golden language_probs missing"
    report = golden.compare(f"{case.model}/{case.clip} language_probs", ours["language_probs"],
                            tensors.language_probs, LANGUAGE_PROBS_ATOL)
    assert report.ok, report.report
    top = tensors.language_codes[int(np.argmax(ours["language_probs"]))]
    assert top == tensors.detected_language, f"top language ours {top}, PaddleX {tensors.detected_language}"


# ---------------------------------------------------------------- cache mechanics (ours vs ours)

@pytest.fixture(scope="session")
def jfk_features(models):
    """tiny.en weights and the cross-attention K/V of en_jfk's first window."""
    weights, _ = models["tiny.en"]
    mel = pad_or_trim(golden.load_mel("en_jfk")[0], N_FRAMES)  # [80, 3000]
    return weights, model.cross_kv(weights, model.encode(weights, mel))


TOKENS = [50257, 50362, 843, 523, 616, 5891, 3399, 1265, 407, 644]  # tiny.en: sot, notimestamps, "And so my ..."


def test_stepwise_decoding_equals_one_pass(jfk_features):
    weights, cross = jfk_features
    whole, cache = model.decode(weights, np.array([TOKENS]), model.new_cache(weights, cross))  # [1, T, V]
    assert cache.length == len(TOKENS)
    logits, cache = model.decode(weights, np.array([TOKENS[:3]]), model.new_cache(weights, cross))
    rows = [logits[0]]  # [3, V]
    for token in TOKENS[3:]:
        logits, cache = model.decode(weights, np.array([[token]]), cache)
        rows.append(logits[0])
    stepwise = np.concatenate(rows)  # [T, V]
    assert np.abs(stepwise - whole[0]).max() <= DECODER_CACHE_ATOL


def test_beams_are_independent_and_reorder_follows_indices(jfk_features):
    weights, cross = jfk_features
    a, b = TOKENS, TOKENS[:4] + [1002, 318, 257, 1332, 13, 50256]  # two different continuations
    single = {}
    for name, seq in (("a", a), ("b", b)):
        single[name], _ = model.decode(weights, np.array([seq]), model.new_cache(weights, cross))  # [1, T, V]
    # one batch of [a, b] for the first half, then swap the beams and continue with [b, a]
    half = 5
    cache = model.new_cache(weights, cross, batch=2)
    first, cache = model.decode(weights, np.array([a[:half], b[:half]]), cache)  # [2, half, V]
    cache = model.reorder(cache, [1, 0])
    second, cache = model.decode(weights, np.array([b[half:], a[half:]]), cache)  # [2, T - half, V]
    assert np.abs(first[0] - single["a"][0, :half]).max() <= DECODER_CACHE_ATOL
    assert np.abs(first[1] - single["b"][0, :half]).max() <= DECODER_CACHE_ATOL
    assert np.abs(second[0] - single["b"][0, half:]).max() <= DECODER_CACHE_ATOL
    assert np.abs(second[1] - single["a"][0, half:]).max() <= DECODER_CACHE_ATOL


def test_reorder_can_grow_the_batch(jfk_features):
    weights, cross = jfk_features
    logits1, cache = model.decode(weights, np.array([TOKENS[:3]]), model.new_cache(weights, cross))
    cache = model.reorder(cache, [0, 0, 0, 0, 0])  # one sequence -> a beam of 5
    assert cache.batch == 5 and cache.length == 3
    logits5, cache = model.decode(weights, np.array([[t] for t in TOKENS[3:8]]), cache)  # [5, 1, V]
    for i, token in enumerate(TOKENS[3:8]):
        expected, _ = model.decode(weights, np.array([TOKENS[:3] + [token]]), model.new_cache(weights, cross))
        assert np.abs(logits5[i, 0] - expected[0, -1]).max() <= DECODER_CACHE_ATOL


def test_decode_refuses_bad_shapes_and_overflow(jfk_features):
    weights, cross = jfk_features
    with pytest.raises(ValueError):
        model.decode(weights, np.array([TOKENS[:2], TOKENS[:2]]), model.new_cache(weights, cross, batch=1))
    with pytest.raises(ValueError):
        model.decode(weights, np.zeros((1, weights.dims.n_text_ctx + 1), np.int64), model.new_cache(weights, cross))
    with pytest.raises(ValueError):
        model.decode(weights, np.array([[weights.dims.n_vocab]]), model.new_cache(weights, cross))


def test_language_probs_are_a_distribution(outputs):
    tensors, ours = outputs(MULTILINGUAL_CASES[0])
    probs = ours["language_probs"]  # [99]
    assert probs.shape == (len(tensors.language_codes),) and probs.dtype == np.float32
    assert abs(float(probs.sum(dtype=np.float64)) - 1.0) <= LANGUAGE_PROBS_ATOL and (probs >= 0).all()
