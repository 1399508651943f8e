"""Golden parity of any backend, stage by stage (the command is ``golden.cli``).

Every golden case goes through the backend in stages, each fed with the golden input of that stage
where there is one, so a failure points at the stage that broke:

    mel       backend.log_mel of the clip (read as PaddleX reads it) vs PaddleX's log-mel
    encoder   backend.encode of the golden mel's window 0: max |diff| and relative Frobenius error
    logits    backend.decode of PaddleX's prefix, then its argmax one token a step, over the features
              of the encoder stage: max |diff|, argmax, top-5 order
    language  backend.language_probs (multilingual models): max |diff| and the top language
    contract  the rules the stages above do not reach (``contract``), once per model
    results   whole transcriptions (shared decoding over the backend, compat="paddlex") of every
              golden config vs PaddleX's result JSON: exact fields equal, scores within tolerance

Against openai-whisper's goldens (``openai_files``; the command's ``--reference openai``):

    openai    whole transcriptions with compat="openai" vs openai-whisper's result dicts
    words     the words of those transcriptions vs openai-whisper's

Each Check says how much it compared (``Coverage``: the golden files hold some tensors in full and
some as subsets) and how close it came to its tolerance (``margin``, the worst difference as a
fraction of the tolerance). Tolerances come from ``tolerances`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..audio import load_audio
from ..backend import Backend
from ..decoding import COMPAT_PADDLEX, DecodingOptions
from ..mel import N_FRAMES, MelWindows, pad_or_trim
from ..tokenizer import Tokenizer
from ..transcription import WhisperModel, Window, transcribe
from . import contract, files
from . import openai_files
from .tolerances import (DECODER_CACHE_ATOL, ENCODER_ATOL, ENCODER_REL_FROBENIUS, LANGUAGE_PROBS_ATOL, LOG_MEL_ATOL,
                         LOGITS_ATOL, LOGITS_TOPK_ORDER, RESULT_SCORE_ATOL, WORD_PROBABILITY_ATOL, WORD_TIME_ATOL,
                         WORD_TIMES_EXACT_SHARE)

STAGES = ("mel", "encoder", "logits", "language", "contract", "results")
OPENAI_STAGES = ("openai", "words")
TOLERANCES = {
    "mel": f"{LOG_MEL_ATOL:g}",
    "encoder": f"{ENCODER_ATOL:g}, relF {ENCODER_REL_FROBENIUS:g}",
    "logits": f"{LOGITS_ATOL:g}, argmax, top-{LOGITS_TOPK_ORDER}",
    "language": f"{LANGUAGE_PROBS_ATOL:g}, top language",
    "contract": f"{DECODER_CACHE_ATOL:g}, ValueError rules",
    "results": f"exact, scores {RESULT_SCORE_ATOL:g}",
    "openai": f"exact, scores {RESULT_SCORE_ATOL:g}",
    "words": f"{WORD_TIME_ATOL:g} s, {100 * WORD_TIMES_EXACT_SHARE:g}% equal, p {WORD_PROBABILITY_ATOL:g}",
}


@dataclass(frozen=True)
class Coverage:
    """What one check compared: ``compared`` of ``total`` units (rows, ids, frames, ...), and whether
    that is everything there is (``full``) or a stored subset."""

    unit: str
    compared: int
    total: int
    steps: int = 0  # decoder steps (logits stage)

    @property
    def full(self) -> bool:
        return self.compared == self.total


NOTHING = Coverage("", 0, 0)
ENCODER_ROWS = N_FRAMES // 2  # one encoder output row per two mel frames (conv2 has stride 2)


@dataclass(frozen=True)
class Check:
    """One stage on one case: passed or not, the largest difference as a number and as a fraction of
    its tolerance (``margin``; inf when the check could not compare), what it compared, and what to
    read on failure."""

    stage: str
    case: str
    ok: bool
    max_diff: float
    report: str
    seconds: float = 0.0
    margin: float = 0.0
    coverage: Coverage = NOTHING


# ---------------------------------------------------------------------------------- running a backend


def case_name(case: files.Case) -> str:
    """"model/clip"."""
    return f"{case.model}/{case.clip}"


def clip_audio(clip: str, root=files.GOLDEN_DIR) -> np.ndarray:
    """A golden clip as PaddleX reads it (float32, channel 0) [N]."""
    return load_audio(str(root / "audio" / f"{clip}.wav"), paddlex=True)


def encoder_input(tensors: files.CaseTensors) -> np.ndarray:
    """Window 0 of the golden mel, padded as PaddleX pads it [n_mels, 3000]."""
    return pad_or_trim(tensors.mel, N_FRAMES)


def decoder_logits(backend: Backend, tensors: files.CaseTensors, cross) -> np.ndarray:
    """Last-position logits of PaddleX's prefix, then of each appended argmax token -> [n_steps, V]."""
    logits, cache = backend.decode(np.array([tensors.prefix]), backend.new_cache(cross))  # [1, P, V]
    steps = [logits[0, -1]]
    for token in tensors.appended:
        logits, cache = backend.decode(np.array([[token]]), cache)  # [1, 1, V]
        steps.append(logits[0, -1])
    return np.stack(steps)  # [n_steps, V]


def language_probs(backend: Backend, tokenizer: Tokenizer, tensors: files.CaseTensors, features, cross):
    """The backend's probabilities of the golden's language codes, in their order [n_languages]."""
    ids = [tokenizer.language_token(code) for code in tensors.language_codes]
    return backend.language_probs(features, tokenizer.sot, ids, cross)


# ---------------------------------------------------------------------------------- the checks


def margin(diff: float, tolerance: float) -> float:
    """A difference as a fraction of its tolerance (1.0 = at the limit)."""
    return diff / tolerance


def check_mel(name: str, ours: np.ndarray, tensors: files.CaseTensors) -> Check:
    """Whole-clip log-mel [n_mels, T]: T frames, and window 0 (the stored frames) within LOG_MEL_ATOL."""
    stored = tensors.mel.shape[-1]
    coverage = Coverage("frames", stored, tensors.n_frames)
    if ours.shape[-1] != tensors.n_frames:
        return Check("mel", name, False, float("inf"), f"{name} mel: {ours.shape[-1]} frames, PaddleX "
                                                        f"{tensors.n_frames}", margin=float("inf"), coverage=coverage)
    report = files.compare(f"{name} mel", ours[:, :stored], tensors.mel, LOG_MEL_ATOL)
    return Check("mel", name, report.ok, report.max_abs_diff, report.report,
                 margin=margin(report.max_abs_diff, LOG_MEL_ATOL), coverage=coverage)


def check_encoder(name: str, features: np.ndarray, tensors: files.CaseTensors) -> Check:
    """Encoder output rows: max |diff| within ENCODER_ATOL and relative Frobenius within ENCODER_REL_FROBENIUS."""
    coverage = Coverage("rows", len(tensors.encoder_rows), ENCODER_ROWS)
    got = np.asarray(features)[tensors.encoder_rows]  # [R, d]
    expected = tensors.encoder_output  # [R, d]
    report = files.compare(f"{name} encoder_output", got, expected, ENCODER_ATOL, index=tensors.encoder_rows)
    if not report.ok:
        return Check("encoder", name, False, report.max_abs_diff, report.report,
                     margin=margin(report.max_abs_diff, ENCODER_ATOL), coverage=coverage)
    diff = (got - expected).astype(np.float64)
    rel = float(np.linalg.norm(diff) / np.linalg.norm(expected.astype(np.float64)))
    ok = rel <= ENCODER_REL_FROBENIUS
    text = report.report if ok else (f"{name} encoder_output: relative Frobenius error {rel:.3g} > "
                                     f"{ENCODER_REL_FROBENIUS}\n{report.report}")
    worst = max(margin(report.max_abs_diff, ENCODER_ATOL), margin(rel, ENCODER_REL_FROBENIUS))
    return Check("encoder", name, ok, report.max_abs_diff, text, margin=worst, coverage=coverage)


def _top_ids(row: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest logits, descending, ties by ascending id (the golden files' order)."""
    ids = np.arange(row.shape[0])
    return ids[np.lexsort((ids, -row))[:k]]


def check_logits(name: str, logits: np.ndarray, tensors: files.CaseTensors) -> Check:
    """Every step's logits [n_steps, V]: stored ids within LOGITS_ATOL, same argmax, same top-k order."""
    vocab = logits.shape[-1]
    coverage = Coverage("ids", sum(len(step.ids) for step in tensors.logits), vocab * len(tensors.logits),
                        steps=len(tensors.logits))
    if logits.shape[0] != len(tensors.logits):
        return Check("logits", name, False, float("inf"), f"{name} logits: {logits.shape[0]} steps, PaddleX "
                                                           f"{len(tensors.logits)}", margin=float("inf"),
                     coverage=coverage)
    failures, worst = [], 0.0
    for k, (step, row) in enumerate(zip(tensors.logits, logits)):
        where = f"{name} logits step {k}"
        report = files.compare(where, row[step.ids], step.values, LOGITS_ATOL, index=step.ids)
        worst = max(worst, report.max_abs_diff)
        if not report.ok:
            failures.append(report.report)
        if int(np.argmax(row)) != tensors.argmax[k]:
            failures.append(f"{where}: argmax ours {int(np.argmax(row))} theirs {tensors.argmax[k]}")
        ours_top, theirs_top = _top_ids(row, LOGITS_TOPK_ORDER), step.top_ids[:LOGITS_TOPK_ORDER]
        if not np.array_equal(ours_top, theirs_top):
            failures.append(f"{where}: top-{LOGITS_TOPK_ORDER} ours {ours_top.tolist()} (logits "
                            f"{row[ours_top].tolist()}) theirs {theirs_top.tolist()}")
    return Check("logits", name, not failures, worst, "\n".join(failures), margin=margin(worst, LOGITS_ATOL),
                 coverage=coverage)


def check_language(name: str, probs: np.ndarray, tensors: files.CaseTensors) -> Check:
    """Language probabilities within LANGUAGE_PROBS_ATOL and the same most likely language."""
    report = files.compare(f"{name} language_probs", probs, tensors.language_probs, LANGUAGE_PROBS_ATOL)
    top = tensors.language_codes[int(np.argmax(probs))]
    text = report.report
    if top != tensors.detected_language:
        text += f"\n{name}: top language ours {top}, PaddleX {tensors.detected_language}"
    return Check("language", name, report.ok and top == tensors.detected_language, report.max_abs_diff, text,
                 margin=margin(report.max_abs_diff, LANGUAGE_PROBS_ATOL),
                 coverage=Coverage("probs", len(tensors.language_probs), len(tensors.language_probs)))


def score_diff(ours: dict, theirs: dict) -> float:
    """Largest |difference| of avg_logprob, no_speech_prob, compression_ratio over paired segments."""
    diffs = [abs(a[f] - b[f]) for a, b in zip(ours["segments"], theirs["segments"]) for f in files.SCORE_FIELDS
             if isinstance(a[f], (int, float)) and isinstance(b[f], (int, float))]
    return max(diffs, default=0.0)


def check_result(name: str, config: str, ours: dict, theirs: dict) -> Check:
    """A result body vs PaddleX's: files.result_differences must find nothing."""
    problems = files.result_differences(ours, theirs)
    worst = score_diff(ours, theirs)
    n_segments = len(theirs["segments"])
    return Check("results", f"{name} {config}", not problems, worst,
                 "\n".join(f"{name} {config}: {p}" for p in problems), margin=margin(worst, RESULT_SCORE_ATOL),
                 coverage=Coverage("segments", n_segments, n_segments))


# ---------------------------------------------------------------------------------- whole transcriptions


def options_for(config: str, compat: Optional[str] = COMPAT_PADDLEX, root=files.GOLDEN_DIR) -> DecodingOptions:
    """DecodingOptions equal to the decode kwargs PaddleX built for a golden config (manifest "configs")."""
    kwargs = files.manifest(root)["configs"][config]

    def value(key):
        return None if kwargs[key] == "None" else kwargs[key]  # PaddleX's inference.yml writes None as "None"

    temperatures = kwargs["temperature"]
    if len(temperatures) != 1:
        raise ValueError(f"golden config {config}: a temperature fallback list is not expected")
    return DecodingOptions(
        task=kwargs["task"], language=value("language"), temperature=temperatures[0],
        temperature_increment_on_fallback=None, compression_ratio_threshold=value("compression_ratio_threshold"),
        logprob_threshold=value("logprob_threshold"), no_speech_threshold=value("no_speech_threshold"),
        condition_on_previous_text=kwargs["condition_on_previous_text"], best_of=value("best_of"),
        beam_size=value("beam_size"), patience=value("patience"), length_penalty=value("length_penalty"),
        initial_prompt=value("initial_prompt"), compat=compat)


def memo_encode(memo: dict, backend: Backend, segment: np.ndarray) -> np.ndarray:
    """backend.encode(segment [n_mels, 3000]), remembered in ``memo`` by (backend, the segment's bytes).

    The backend is kept in the memo too, so its id cannot be reused by another while the memo lives.
    """
    key = (id(backend), hashlib.sha256(np.ascontiguousarray(segment, dtype=np.float32).tobytes()).hexdigest())
    if key not in memo:
        memo[key] = (backend, backend.encode(segment))
    return memo[key][1]


def shared_encoder(memo: Optional[dict] = None) -> Callable[[WhisperModel, MelWindows, int], Window]:
    """A window encoder for ``transcribe`` that encodes each distinct window once per backend
    (``memo_encode`` into ``memo``, a new dict when None); the cross-attention state is remade each time."""
    features = {} if memo is None else memo

    def encode(model: WhisperModel, mel: MelWindows, seek: int) -> Window:
        out = memo_encode(features, model.backend, mel.window(seek))  # [n_audio_ctx, d]
        return Window(seek, out, model.backend.cross_kv(out))

    return encode


# ---------------------------------------------------------------------------------- the command


def check_tensors(backend: Backend, tokenizer: Tokenizer, case: files.Case, stages: Sequence[str],
                  root=files.GOLDEN_DIR, memo: Optional[dict] = None) -> list:
    """The mel, encoder, logits and language checks of one case (those in ``stages``); encoder outputs
    go through ``memo`` (see ``memo_encode``) when one is given."""
    tensors = files.load_case(case.model, case.clip, root)
    return check_case_tensors(backend, tokenizer, case_name(case), tensors, lambda: clip_audio(case.clip, root),
                              stages, memo)


def check_case_tensors(backend: Backend, tokenizer: Tokenizer, name: str, tensors: files.CaseTensors,
                       audio: Callable[[], np.ndarray], stages: Sequence[str], memo: Optional[dict] = None) -> list:
    """The stage checks of ``backend`` against one case's tensors, golden or made by a reference
    (``reference``); ``audio`` gives the clip for the mel stage."""
    checks = []

    def timed(stage: str, run: Callable, check: Callable):
        """(the backend's output or None, its Check); an exception in the backend fails the stage."""
        start = time.perf_counter()
        try:
            ours = run()
        except Exception as err:  # a backend under test may fail any way; report it, do not crash
            return None, Check(stage, name, False, float("inf"), f"{name} {stage}: the backend raised "
                                                                 f"{type(err).__name__}: {err}", margin=float("inf"))
        result = check(name, ours, tensors)
        return ours, dataclasses.replace(result, seconds=time.perf_counter() - start)

    if "mel" in stages:
        checks.append(timed("mel", lambda: backend.log_mel(audio()), check_mel)[1])
    if not {"encoder", "logits", "language"} & set(stages):
        return checks
    memo = {} if memo is None else memo
    features, encoder_check = timed("encoder", lambda: memo_encode(memo, backend, encoder_input(tensors)),
                                    check_encoder)
    if "encoder" in stages:
        checks.append(encoder_check)
    if features is None:
        return checks
    if "logits" in stages:
        checks.append(timed("logits", lambda: decoder_logits(backend, tensors, backend.cross_kv(features)),
                            check_logits)[1])
    if "language" in stages and tensors.language_codes is not None:
        checks.append(timed("language", lambda: language_probs(backend, tokenizer, tensors, features, None),
                            check_language)[1])
    return checks


def check_contract(backend: Backend, tokenizer: Tokenizer, case: files.Case, root=files.GOLDEN_DIR,
                   memo: Optional[dict] = None) -> list:
    """Every contract probe that applies to the case's model, on the case's window 0 (one Check each)."""
    name, tensors = case_name(case), files.load_case(case.model, case.clip, root)
    try:
        features = memo_encode({} if memo is None else memo, backend, encoder_input(tensors))  # [n_audio_ctx, d]
        cross = backend.cross_kv(features)
    except Exception as err:  # a backend under test may fail any way; report it, do not crash
        return [Check("contract", f"{name} setup", False, float("inf"), f"{name} contract: encoding window 0 "
                      f"raised {type(err).__name__}: {err}", margin=float("inf"))]
    checks = []
    for probe in contract.applicable(tensors):
        ok, worst, report, seconds = contract.run_probe(probe, backend, tokenizer, tensors, features, cross)
        checks.append(Check("contract", f"{name} {probe}", ok, worst, f"{name} contract {probe}: {report}",
                            seconds, margin(worst, DECODER_CACHE_ATOL), Coverage("probes", 1, 1)))
    return checks


def check_results(model: WhisperModel, case: files.Case, configs: Sequence[str], encode, root=files.GOLDEN_DIR) -> list:
    """The results check of one case in each golden config."""
    checks = []
    for config in configs:
        start = time.perf_counter()
        path = root / "audio" / f"{case.clip}.wav"
        try:
            ours = transcribe(model, str(path), options_for(config, root=root), encode=encode)["result"]
        except Exception as err:  # a backend under test may fail any way; report it, do not crash
            checks.append(Check("results", f"{case_name(case)} {config}", False, float("inf"),
                                f"{case_name(case)} {config}: transcription raised {type(err).__name__}: {err}",
                                margin=float("inf")))
            continue
        theirs = files.load_result(case.model, case.clip, config, root)["result"]
        result = check_result(case_name(case), config, ours, theirs)
        checks.append(dataclasses.replace(result, seconds=time.perf_counter() - start))
    return checks


def unsampled(result: dict, before: Optional[int]) -> dict:
    """A result cut to the segments of windows before seek ``before`` (None: all of it). The whole
    text is left out of a cut result: it covers the windows that are not compared."""
    if before is None:
        return result
    return {**result, "text": None, "segments": [s for s in result["segments"] if s["seek"] < before]}


def check_openai_case(model: WhisperModel, case: openai_files.OpenAICase, encode, root=files.GOLDEN_DIR) -> list:
    """One openai golden: the "openai" Check (result fields) and the "words" Check.

    Windows openai-whisper decoded at a temperature above 0 drew torch's random numbers, which no
    other implementation reproduces: from the first such window on, nothing is compared, and the
    coverage says how much was.
    """
    start = time.perf_counter()
    path = root / "audio" / f"{case.clip}.wav"
    try:
        ours = transcribe(model, str(path), openai_files.options_for(case.config, root), encode=encode)["result"]
    except Exception as err:  # a backend under test may fail any way; report it, do not crash
        message = f"{case.name}: transcription raised {type(err).__name__}: {err}"
        return [Check(stage, case.name, False, float("inf"), message, margin=float("inf")) for stage in OPENAI_STAGES]
    theirs = openai_files.load_result(case, root)
    cut = openai_files.first_sampled_window(theirs)
    mine, ref = unsampled(ours, cut), unsampled(theirs, cut)
    problems, words = openai_files.result_differences(mine, ref)
    word_problems = [p for p in problems if p in words.problems]
    field_problems = [p for p in problems if p not in words.problems]
    if words.exact_share < WORD_TIMES_EXACT_SHARE:
        word_problems.append(f"{words.times_equal} of {words.words} words have openai-whisper's times "
                             f"({100 * words.exact_share:.1f}% < {100 * WORD_TIMES_EXACT_SHARE:g}%)")
    seconds = time.perf_counter() - start
    segments = Coverage("segments", len(ref["segments"]), len(theirs["segments"]))
    n_words = len(openai_files.words_of(theirs["segments"]))
    score = score_diff(mine, ref)
    return [
        Check("openai", case.name, not field_problems, score, "\n".join(f"{case.name}: {p}" for p in field_problems),
              seconds, margin(score, RESULT_SCORE_ATOL), segments),
        Check("words", case.name, not word_problems, words.worst_time,
              "\n".join(f"{case.name}: {p}" for p in word_problems), 0.0,
              max(margin(words.worst_time, WORD_TIME_ATOL), margin(words.worst_probability, WORD_PROBABILITY_ATOL)),
              Coverage("words", words.words, n_words)),
    ]


def _count(n: int) -> str:
    """A count in a few characters: 3020, 31.5k, 4.4M."""
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.1f}k" if n >= 1e4 else str(n)


def compared(checks: Sequence[Check]) -> str:
    """What a stage's checks compared, summed over them: "rows 3.0k of 31.5k, full in 1 of 21" (the
    logits stage adds its decoder steps)."""
    covered = [c.coverage for c in checks if c.coverage.unit]
    if not covered:
        return "-"
    unit, steps = covered[0].unit, sum(c.steps for c in covered)
    n, total = sum(c.compared for c in covered), sum(c.total for c in covered)
    if n == total:
        text = f"{unit} {_count(n)}, all"
    else:
        text = f"{unit} {_count(n)} of {_count(total)}, full in {sum(c.full for c in covered)} of {len(covered)}"
    return text + (f", {steps} steps" if steps else "")


def percent(fraction: float) -> str:
    """A margin as a percentage of the tolerance."""
    return "inf" if fraction == float("inf") else f"{100 * fraction:.1f}%"


def table(checks: Sequence[Check], stages: Sequence[str]) -> str:
    """The per-stage table: stage, checks, failed, max |diff|, its fraction of the tolerance, tolerance,
    what was compared, seconds, PASS/FAIL."""
    rows = [("stage", "checks", "failed", "maxdiff", "of_tol", "tolerance", "compared", "seconds", "result")]
    for stage in stages:
        mine = [c for c in checks if c.stage == stage]
        if not mine:
            rows.append((stage, "0", "-", "-", "-", TOLERANCES[stage], "-", "-", "n/a"))
            continue
        failed = sum(not c.ok for c in mine)
        rows.append((stage, str(len(mine)), str(failed), f"{max(c.max_diff for c in mine):.3g}",
                     percent(max(c.margin for c in mine)), TOLERANCES[stage], compared(mine),
                     f"{sum(c.seconds for c in mine):.1f}", "FAIL" if failed else "PASS"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
