"""The transformer vs PaddleX's Whisper on every backend ("numpy": NumPy/Numba; "paddle-cpu": the Paddle
backend on the CPU): log-mel, encoder output, decoder logits and language probabilities on every
golden case (base on every clip, tiny.en on the English ones), plus the decoder cache mechanics.

Each case runs the backend's own chain from the golden mel: encode window 0, then the decoder on
PaddleX's prefix with its cache, one appended token per step, as the generator did. The checks are
``numwhisper.golden_check``'s, the ones ``python -m numwhisper.golden check`` prints.
"""

from pathlib import Path

import numba
import numpy as np
import pytest

from numwhisper import kernels, ops, threads
from numwhisper.dims import attention_scale
from numwhisper.golden import check as golden_check
from numwhisper.golden import files as golden
from numwhisper import model as whisper_model
from numwhisper.formats.checkpoint import load
from numwhisper.tokenizer import Tokenizer
from numwhisper.golden.tolerances import DECODER_CACHE_ATOL, LANGUAGE_PROBS_ATOL

from conftest import BACKEND_DEVICES

BACKENDS = tuple(BACKEND_DEVICES)
CASES = golden.cases()
CASE_IDS = [f"{c.model}/{c.clip}" for c in CASES]
MULTILINGUAL_CASES = [c for c in CASES if c.model == "base"]
AUDIO_MANIFEST = golden.GOLDEN_DIR / "audio" / "manifest.tsv"


def _clip_languages() -> dict:
    """{clip: language} from golden/audio/manifest.tsv."""
    rows = [line.split("\t") for line in AUDIO_MANIFEST.read_text(encoding="utf-8").splitlines()[1:] if line]
    return {Path(row[0]).stem: row[1] for row in rows}


@pytest.fixture(scope="session")
def tokenizers(model_files) -> dict:
    """{name: Tokenizer} for both packaged models."""
    return {name: Tokenizer.from_metadata(load(path).metadata) for name, path in model_files.items()}


def _run_case(backend, tokenizer: Tokenizer, tensors: golden.CaseTensors, memo: dict) -> dict:
    """A backend's encoder output, per-step logits [n_steps, V] and language probabilities for one case."""
    features = golden_check.memo_encode(memo, backend, golden_check.encoder_input(tensors))  # [1500, d]
    cross = backend.cross_kv(features)
    probs = None
    if tensors.language_codes is not None:
        probs = golden_check.language_probs(backend, tokenizer, tensors, features, cross)  # [99]
    return {"encoder": features, "logits": golden_check.decoder_logits(backend, tensors, cross),
            "language_probs": probs}


@pytest.fixture(scope="session")
def outputs(backend_for, tokenizers, encoder_memo):
    """A function (backend id, case) -> (golden CaseTensors, the backend's outputs), each run once per session."""
    memo = {}

    def get(backend_id: str, case: golden.Case):
        key = (backend_id, case.model, case.clip)
        if key not in memo:
            tensors = golden.load_case(case.model, case.clip)
            backend = backend_for(backend_id, case.model)
            memo[key] = (tensors, _run_case(backend, tokenizers[case.model], tensors, encoder_memo))
        return memo[key]

    return get


def test_every_golden_clip_has_its_cases():
    languages = _clip_languages()
    have = {(c.model, c.clip) for c in CASES}
    english = [clip for clip, language in languages.items() if language == "en"]
    expected = {("base", clip) for clip in languages} | {("tiny.en", clip) for clip in english}
    assert expected <= have, f"golden cases missing (run golden/generate.py): {sorted(expected - have)}"


@pytest.mark.parametrize("case", MULTILINGUAL_CASES, ids=[c.clip for c in MULTILINGUAL_CASES])
@pytest.mark.parametrize("backend_id", BACKENDS)
def test_log_mel_matches_paddlex(backend_id, case, backend_for):
    tensors = golden.load_case(case.model, case.clip)
    ours = backend_for(backend_id, case.model).log_mel(golden_check.clip_audio(case.clip))  # [80, T]
    check = golden_check.check_mel(case.clip, ours, tensors)
    assert check.ok, check.report


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("backend_id", BACKENDS)
def test_encoder_output_matches_paddlex(backend_id, case, outputs):
    tensors, ours = outputs(backend_id, case)
    check = golden_check.check_encoder(f"{case.model}/{case.clip}", ours["encoder"], tensors)
    assert check.ok, check.report


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("backend_id", BACKENDS)
def test_decoder_logits_match_paddlex(backend_id, case, outputs):
    tensors, ours = outputs(backend_id, case)
    check = golden_check.check_logits(f"{case.model}/{case.clip}", ours["logits"], tensors)
    assert check.ok, check.report


@pytest.mark.parametrize("case", MULTILINGUAL_CASES, ids=[f"{c.model}/{c.clip}" for c in MULTILINGUAL_CASES])
@pytest.mark.parametrize("backend_id", BACKENDS)
def test_language_probs_match_paddlex(backend_id, case, outputs):
    tensors, ours = outputs(backend_id, case)
    assert tensors.language_probs is not None, f"{case.model}/{case.clip}: golden language_probs missing"
    check = golden_check.check_language(f"{case.model}/{case.clip}", ours["language_probs"], tensors)
    assert check.ok, check.report


# ---------------------------------------------------------------- cache mechanics (each backend vs itself)

@pytest.fixture(scope="session")
def jfk_cross(backend_for):
    """A function backend id -> (tiny.en backend, its cross-attention state of en_jfk's first window)."""
    memo = {}

    def get(backend_id: str):
        if backend_id not in memo:
            backend = backend_for(backend_id, "tiny.en")
            mel = golden_check.encoder_input(golden.load_case("tiny.en", "en_jfk"))  # [80, 3000]
            memo[backend_id] = backend, backend.cross_kv(backend.encode(mel))
        return memo[backend_id]

    return get


TOKENS = [50257, 50362, 843, 523, 616, 5891, 3399, 1265, 407, 644]  # tiny.en: sot, notimestamps, "And so my ..."


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_stepwise_decoding_equals_one_pass(backend_id, jfk_cross):
    backend, cross = jfk_cross(backend_id)
    whole, _ = backend.decode(np.array([TOKENS]), backend.new_cache(cross))  # [1, T, V]
    logits, cache = backend.decode(np.array([TOKENS[:3]]), backend.new_cache(cross))
    rows = [logits[0]]  # [3, V]
    logits, cache = backend.decode(np.array([TOKENS[3:6]]), cache)  # several new tokens after a filled cache
    rows.append(logits[0])  # [3, V]
    for token in TOKENS[6:]:
        logits, cache = backend.decode(np.array([[token]]), cache)
        rows.append(logits[0])
    stepwise = np.concatenate(rows)  # [T, V]
    assert np.abs(stepwise - whole[0]).max() <= DECODER_CACHE_ATOL


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_beams_are_independent_and_reorder_follows_indices(backend_id, jfk_cross):
    backend, cross = jfk_cross(backend_id)
    a, b = TOKENS, TOKENS[:4] + [1002, 318, 257, 1332, 13, 50256]  # two different continuations
    single = {}
    for name, seq in (("a", a), ("b", b)):
        single[name], _ = backend.decode(np.array([seq]), backend.new_cache(cross))  # [1, T, V]
    # one batch of [a, b] for the first half, then swap the beams and continue with [b, a]
    half = 5
    first, cache = backend.decode(np.array([a[:half], b[:half]]), backend.new_cache(cross, batch=2))  # [2, half, V]
    cache = backend.reorder(cache, [1, 0])
    second, cache = backend.decode(np.array([b[half:], a[half:]]), cache)  # [2, T - half, V]
    assert np.abs(first[0] - single["a"][0, :half]).max() <= DECODER_CACHE_ATOL
    assert np.abs(first[1] - single["b"][0, :half]).max() <= DECODER_CACHE_ATOL
    assert np.abs(second[0] - single["b"][0, half:]).max() <= DECODER_CACHE_ATOL
    assert np.abs(second[1] - single["a"][0, half:]).max() <= DECODER_CACHE_ATOL


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_reorder_can_grow_the_batch(backend_id, jfk_cross):
    backend, cross = jfk_cross(backend_id)
    _, cache = backend.decode(np.array([TOKENS[:3]]), backend.new_cache(cross))
    cache = backend.reorder(cache, [0, 0, 0, 0, 0])  # one sequence -> a beam of 5
    logits5, cache = backend.decode(np.array([[t] for t in TOKENS[3:8]]), cache)  # [5, 1, V]
    assert logits5.shape == (5, 1, backend.dims.n_vocab) and logits5.dtype == np.float32
    for i, token in enumerate(TOKENS[3:8]):
        expected, _ = backend.decode(np.array([TOKENS[:3] + [token]]), backend.new_cache(cross))
        assert np.abs(logits5[i, 0] - expected[0, -1]).max() <= DECODER_CACHE_ATOL


@pytest.mark.parametrize("backend_id", BACKENDS)
@pytest.mark.parametrize("n_tokens", [4, 40])  # the few-row kernel's side of FEW_ROWS and BLAS's
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("logits_at", [(-1,), (1, -1), (-1, -1), (0, 2, -1)])
def test_logits_at_gives_the_full_calls_rows_bit_for_bit(backend_id, jfk_cross, n_tokens, batch, logits_at):
    backend, cross = jfk_cross(backend_id)
    tokens = np.array([(TOKENS * 4)[:n_tokens]] * batch)  # [B, T]
    tokens[1:, 2:] = tokens[1:, :1:-1]  # a second sequence differs from the first
    whole, whole_cache = backend.decode(tokens, backend.new_cache(cross, batch))  # [B, T, V]
    picked, cache = backend.decode(tokens, backend.new_cache(cross, batch), logits_at=logits_at)  # [B, P, V]
    assert picked.shape == (batch, len(logits_at), backend.dims.n_vocab) and picked.dtype == np.float32
    expected = whole[:, list(logits_at)]  # [B, P, V]
    assert np.array_equal(picked, expected), f"maxdiff {np.abs(picked - expected).max():.3g}"
    step, _ = backend.decode(tokens[:, -1:], cache)  # [B, 1, V]: the cache took every new token
    assert np.array_equal(step, backend.decode(tokens[:, -1:], whole_cache)[0])


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_decode_refuses_bad_shapes_and_overflow(backend_id, jfk_cross):
    backend, cross = jfk_cross(backend_id)
    dims = backend.dims
    with pytest.raises(ValueError):
        backend.decode(np.array([TOKENS[:2], TOKENS[:2]]), backend.new_cache(cross, batch=1))
    with pytest.raises(ValueError):
        backend.decode(np.zeros((1, dims.n_text_ctx + 1), np.int64), backend.new_cache(cross))
    with pytest.raises(ValueError):
        backend.decode(np.array([[dims.n_vocab]]), backend.new_cache(cross))
    with pytest.raises(ValueError):
        backend.encode(np.zeros((dims.n_mels, 100), np.float32))


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_language_probs_are_a_distribution(backend_id, outputs):
    tensors, ours = outputs(backend_id, MULTILINGUAL_CASES[0])
    probs = ours["language_probs"]  # [99]
    assert probs.shape == (len(tensors.language_codes),) and probs.dtype == np.float32
    assert abs(float(probs.sum(dtype=np.float64)) - 1.0) <= LANGUAGE_PROBS_ATOL and (probs >= 0).all()


def test_float16_decoder_matrices_give_the_float32_products_exactly(model_files):
    """The NumPy backend keeps the decoder's float16 matrices as stored; every product path (one row,
    a beam of rows, the threaded vocabulary projection, BLAS for a prompt, cross_kv) must equal the
    same model run on float32 copies, bit for bit."""
    checkpoint = load(model_files["tiny.en"])
    kept = whisper_model.weights_from_checkpoint(checkpoint)
    widened = whisper_model.Weights(kept.dims, {name: np.asarray(t, dtype=np.float32) for name, t in kept.tensors.items()})
    half = sorted(name for name, t in kept.tensors.items() if t.dtype == np.float16)
    assert "decoder.token_embedding.weight" in half and "decoder.blocks.0.mlp.0.weight" in half
    assert all(name.startswith("decoder.") for name in half) and "decoder.positional_embedding" not in half
    mel = golden_check.encoder_input(golden.load_case("tiny.en", "en_jfk"))  # [80, 3000]
    features = whisper_model.encode(kept, mel)  # [1500, d]
    runs = []
    for weights in (kept, widened):
        cross = whisper_model.cross_kv(weights, features)
        prompt = TOKENS + TOKENS[2:] * 2  # 26 rows: the BLAS path, the embedding widened in blocks
        logits, cache = whisper_model.decode(weights, np.array([prompt]), whisper_model.new_cache(weights, cross))
        step, cache = whisper_model.decode(weights, np.array([[TOKENS[3]]]), cache)  # one row
        beams, _ = whisper_model.decode(weights, np.array([[t] for t in TOKENS[3:8]]),
                                        whisper_model.reorder(cache, [0] * 5))  # five rows
        runs.append((cross.keys[0], cross.values[-1], logits, step, beams))
    for ours, reference in zip(*runs):
        assert np.array_equal(ours, reference), np.abs(ours - reference).max()


def test_cross_kv_layouts_hold_the_plain_products_bits(model_files):
    """cross_kv computes keys transposed and values head by head, straight into the kernels' layouts;
    each must equal the plain product of the features and the weight, rearranged, bit for bit."""
    weights = whisper_model.load_weights(model_files["base"])
    features = np.random.default_rng(0).standard_normal((1500, 512)).astype(np.float32)  # [S, d]
    cross = whisper_model.cross_kv(weights, features)
    n_head, d_head = weights.dims.n_text_head, weights.dims.n_text_state // weights.dims.n_text_head
    scale = np.float32(attention_scale(weights.dims.n_text_state, n_head))
    for i in (0, weights.dims.n_text_layer - 1):
        name = f"decoder.blocks.{i}.cross_attn"
        k = ops.linear(features, weights[f"{name}.key.weight"]) * scale  # [S, d]
        v = ops.linear(features, weights[f"{name}.value.weight"]) + weights[f"{name}.value.bias"]
        assert np.array_equal(cross.keys[i], k.reshape(1500, n_head, d_head).transpose(1, 2, 0))  # [H, d_head, S]
        assert np.array_equal(cross.values[i], v.reshape(1500, n_head, d_head).transpose(1, 0, 2))  # [H, S, d_head]


def test_decoder_kernels_give_the_same_values_on_any_thread_count_and_batch(model_files):
    """The decoder's few-row products split weight rows across threads, its cross-attention heads and
    its causal attention beams: a step must give the same logits bit for bit on one thread and on
    the suite's count, and each beam of a batch the same as that sequence alone."""
    weights = whisper_model.load_weights(model_files["tiny.en"])
    mel = golden_check.encoder_input(golden.load_case("tiny.en", "en_jfk"))  # [80, 3000]
    cross = whisper_model.cross_kv(weights, whisper_model.encode(weights, mel))
    _, cache = whisper_model.decode(weights, np.array([TOKENS[:3]]), whisper_model.new_cache(weights, cross))
    beams = np.array([[t] for t in TOKENS[3:8]])  # [5, 1]
    suite_threads = numba.get_num_threads()  # the suite's count, restored below
    try:
        by_threads = {}
        for n in sorted({1, suite_threads}):
            threads.set_num_threads(n)
            by_threads[n], _ = whisper_model.decode(weights, beams, whisper_model.reorder(cache, [0] * 5))  # [5, 1, V]
    finally:
        threads.set_num_threads(suite_threads)
    assert np.array_equal(by_threads[1], by_threads[suite_threads])
    for i, token in enumerate(TOKENS[3:8]):
        alone, _ = whisper_model.decode(weights, np.array([[token]]), whisper_model.reorder(cache, [0]))  # [1, 1, V]
        beam = by_threads[suite_threads][i]  # [1, V]
        assert np.array_equal(alone[0], beam), np.abs(alone[0] - beam).max()


def test_softmax_kernel_matches_float64_softmax_for_any_row_length():
    """The attention softmax keeps eight running maxima and builds 2^k from exponent bits; on rows of
    every length up to 40, with the largest score placed first, last or in the tail the eight lanes
    leave over, it must equal a float64 softmax rounded to float32 within one float32 rounding."""
    rng = np.random.default_rng(3)
    for n in range(1, 41):
        for peak in sorted({0, n - 1, n // 2, 8 * (n // 8) if n % 8 else n - 1}):
            x = (rng.standard_normal((2, n)) * 6).astype(np.float32)  # [2, n]
            x[:, peak] = 800.0 + peak  # exp(800) overflows float64: a missed maximum gives inf and NaN
            x[1, (peak + 1) % n] = 800.0 + peak  # and a tie
            expected = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))  # [2, n]
            expected = (expected / expected.sum(axis=1, keepdims=True)).astype(np.float32)  # [2, n]
            for run in (kernels.softmax, kernels.softmax_parallel):
                got = x.copy()
                run(got)
                assert np.allclose(got, expected, rtol=2.5e-7, atol=1e-30), \
                    (n, peak, run.__name__, np.abs(got - expected).max())
