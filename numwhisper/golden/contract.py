"""The ``contract`` stage: probes of the backend rules that no comparison with PaddleX's numbers reaches.

The tensor stages feed one sequence, one token at a time, after a prompt pass without ``logits_at``.
Decoding also asks a backend for a prompt pass with ``logits_at``, for caches reordered from one
sequence to a beam and between beams, and for language probabilities with the cross state given;
and the contract promises ``ValueError`` for malformed calls. Each probe below checks one of those
rules. Where a probe compares numbers, the expectation is the backend's own single-sequence result
for the same tokens (no cache tricks involved), so a failure means the rule is broken, not the
arithmetic, which the other stages judge.

    logits_at       a prompt pass with logits_at=(sot, -1) gives those positions of the full pass
    reorder         1 -> 5 sequences, then a permutation with repeats: row b continues its source
    language_cross  language_probs(..., cross=cross_kv(features)) equals language_probs(features)
    decode_errors   ValueError for tokens not [batch, t] and for ids outside [0, n_vocab); a cache
                    filled to exactly n_text_ctx is accepted, one token more is a ValueError
    encode_errors   ValueError for a mel that is not [n_mels, 3000]
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ..backend import Backend
from ..tokenizer import Tokenizer
from . import files
from .tolerances import DECODER_CACHE_ATOL

PROBES = ("logits_at", "reorder", "language_cross", "decode_errors", "encode_errors")
BEAM = 5
SOURCES = (3, 3, 0, 4, 1)  # the second reorder: repeats, a dropped row (2) and a new order
PREVIOUS_TEXT_TOKENS = 8  # the prompt of the logits_at probe carries this many earlier tokens


class ProbeFailed(Exception):
    """A rule the probe checks does not hold; the message says which and how."""


def _tokens(rows) -> np.ndarray:
    """Token ids as an int64 [batch, t] array."""
    return np.array(rows, dtype=np.int64)


def _logits(backend: Backend, cross, tokens: Sequence[int], logits_at=None) -> np.ndarray:
    """Logits [t or len(logits_at), V] of one sequence decoded in one pass on a new cache."""
    out, _ = backend.decode(_tokens([list(tokens)]), backend.new_cache(cross), **(
        {} if logits_at is None else {"logits_at": logits_at}))
    return np.asarray(out)[0]


def _expect_shape(what: str, array, shape: tuple) -> np.ndarray:
    """The array as float32 when its shape is ``shape``; ProbeFailed otherwise."""
    array = np.asarray(array)
    if array.shape != shape:
        raise ProbeFailed(f"{what}: shape {list(array.shape)}, the contract says {list(shape)}")
    return array.astype(np.float32, copy=False)


def _within(what: str, ours: np.ndarray, expected: np.ndarray) -> float:
    """Max |ours - expected|; ProbeFailed when over DECODER_CACHE_ATOL."""
    report = files.compare(what, ours, expected, DECODER_CACHE_ATOL)
    if not report.ok:
        raise ProbeFailed(report.report)
    return report.max_abs_diff


# ---------------------------------------------------------------------------------- the probes


def probe_logits_at(backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features, cross) -> float:
    """A prompt as decoding builds one (<|startofprev|>, earlier tokens, then the prefix), asked for the
    logits at <|startoftranscript|> and at the last token, vs the same positions of a full pass."""
    prompt = [tokenizer.sot_prev, *tensors.appended[:PREVIOUS_TEXT_TOKENS], *tensors.prefix]
    sot_index, n_vocab = prompt.index(tokenizer.sot), backend.dims.n_vocab
    full = _expect_shape("decode without logits_at", _logits(backend, cross, prompt),
                         (len(prompt), n_vocab))  # [T, V]
    picked = _expect_shape(f"decode with logits_at=({sot_index}, -1)",
                           _logits(backend, cross, prompt, (sot_index, -1)), (2, n_vocab))  # [2, V]
    last = _expect_shape("decode with logits_at=(-1,)", _logits(backend, cross, prompt, (-1,)), (1, n_vocab))
    return max(_within(f"logits_at=({sot_index}, -1) vs the full pass", picked, full[[sot_index, -1]]),
               _within("logits_at=(-1,) vs the full pass", last, full[[-1]]))


def probe_reorder(backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features, cross) -> float:
    """After the prefix, reorder 1 -> 5 sequences and step each with its own token; reorder by SOURCES
    and step again. Row b must equal the one-sequence pass over the tokens of its history."""
    prefix, n_vocab = list(tensors.prefix), backend.dims.n_vocab
    first = [int(t) for t in tensors.logits[0].top_ids[:BEAM]]  # plausible, distinct next tokens
    second = [int(t) for t in tensors.logits[-1].top_ids[:BEAM]]

    def alone(history):  # [V] the expectation: one sequence, one pass
        return _logits(backend, cross, prefix + history, (-1,))[-1]

    _, cache = backend.decode(_tokens([prefix]), backend.new_cache(cross))
    cache = backend.reorder(cache, [0] * BEAM)
    out, cache = backend.decode(_tokens([[t] for t in first]), cache)
    out = _expect_shape(f"decode after reorder(cache, {[0] * BEAM})", out, (BEAM, 1, n_vocab))  # [5, 1, V]
    worst = _within(f"reorder 1 -> {BEAM}, then one token per row", out[:, 0],
                    np.stack([alone([t]) for t in first]))
    cache = backend.reorder(cache, list(SOURCES))
    out, cache = backend.decode(_tokens([[t] for t in second]), cache)
    out = _expect_shape(f"decode after reorder(cache, {list(SOURCES)})", out, (BEAM, 1, n_vocab))
    expected = np.stack([alone([first[s], t]) for s, t in zip(SOURCES, second)])  # [5, V]
    return max(worst, _within(f"reorder by {list(SOURCES)}, then one token per row", out[:, 0], expected))


def probe_language_cross(backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features,
                         cross) -> float:
    """language_probs with the window's cross state given, as decoding calls it, vs without."""
    ids = [tokenizer.language_token(code) for code in tensors.language_codes]
    plain = _expect_shape("language_probs", backend.language_probs(features, tokenizer.sot, ids), (len(ids),))
    given = _expect_shape("language_probs with cross", backend.language_probs(features, tokenizer.sot, ids,
                                                                                cross=cross), (len(ids),))
    return _within("language_probs with cross vs without", given, plain)


def _must_raise(what: str, call: Callable) -> None:
    """ProbeFailed unless ``call()`` raises ValueError."""
    try:
        call()
    except ValueError:
        return
    except Exception as err:  # the wrong kind of failure is a broken rule too
        raise ProbeFailed(f"{what}: raised {type(err).__name__}: {err}, the contract says ValueError") from None
    raise ProbeFailed(f"{what}: no error, the contract says ValueError")


def probe_decode_errors(backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features,
                        cross) -> float:
    """decode's ValueError rules, and the text context's exact limit accepted."""
    prefix, dims = list(tensors.prefix), backend.dims
    new = lambda: backend.new_cache(cross)  # noqa: E731 a fresh cache per call
    _must_raise("decode of tokens shaped [t] (not [batch, t])", lambda: backend.decode(np.array(prefix), new()))
    _must_raise("decode of 2 rows on a cache of 1 sequence", lambda: backend.decode(_tokens([prefix, prefix]), new()))
    _must_raise(f"decode of id {dims.n_vocab} (= n_vocab)", lambda: backend.decode(_tokens([[dims.n_vocab]]), new()))
    _must_raise("decode of id -1", lambda: backend.decode(_tokens([[-1]]), new()))
    _must_raise(f"decode of {dims.n_text_ctx + 1} tokens (n_text_ctx + 1)",
                lambda: backend.decode(np.zeros((1, dims.n_text_ctx + 1), np.int64), new()))
    filler = (prefix * dims.n_text_ctx)[:dims.n_text_ctx]
    try:
        _, full = backend.decode(_tokens([filler]), new(), logits_at=(-1,))
    except Exception as err:
        raise ProbeFailed(f"decode of exactly n_text_ctx = {dims.n_text_ctx} tokens: raised "
                          f"{type(err).__name__}: {err}") from None
    _must_raise("decode of one token on a cache holding n_text_ctx tokens",
                lambda: backend.decode(_tokens([[tokenizer.eot]]), full))
    return 0.0


def probe_encode_errors(backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features,
                        cross) -> float:
    """encode's ValueError rule: only [n_mels, 3000] is a window."""
    n_mels, frames = backend.dims.n_mels, 2 * backend.dims.n_audio_ctx
    for shape in ((n_mels, frames - 1), (n_mels + 1, frames), (1, n_mels, frames)):
        _must_raise(f"encode of a mel shaped {list(shape)}", lambda: backend.encode(np.zeros(shape, np.float32)))
    return 0.0


PROBE_FUNCTIONS = {"logits_at": probe_logits_at, "reorder": probe_reorder, "language_cross": probe_language_cross,
                   "decode_errors": probe_decode_errors, "encode_errors": probe_encode_errors}


def applicable(tensors: files.CaseTensors) -> tuple:
    """The probes that apply to a case's model (language_cross needs a multilingual model)."""
    return tuple(p for p in PROBES if p != "language_cross" or tensors.language_codes is not None)


def run_probe(probe: str, backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features,
              cross) -> tuple:
    """(passed, worst difference, report, seconds) of one probe; any exception of the backend fails it."""
    start = time.perf_counter()
    try:
        worst = PROBE_FUNCTIONS[probe](backend, tokenizer, tensors, features, cross)
        ok, report = True, ""
    except ProbeFailed as err:
        ok, worst, report = False, float("inf"), str(err)
    except Exception as err:  # a backend under test may fail any way; report it, do not crash
        ok, worst, report = False, float("inf"), f"the backend raised {type(err).__name__}: {err}"
    return ok, worst, report, time.perf_counter() - start
