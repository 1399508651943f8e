"""Golden parity of any backend, stage by stage: ``python -m numwhisper.golden check --backend MODULE:FACTORY``.

Every golden case goes through the backend in five stages, each fed with the golden input of that
stage where there is one, so a failure points at the stage that broke:

    mel       backend.log_mel of the clip (read as PaddleX reads it) vs PaddleX's log-mel
    encoder   backend.encode of the golden mel's window 0: max |diff| and relative Frobenius error
    logits    backend.decode of PaddleX's prefix, then its argmax one token a step, over the features
              of the encoder stage: max |diff|, argmax, top-5 order
    language  backend.language_probs (multilingual models): max |diff| and the top language
    results   whole transcriptions (shared decoding over the backend, compat="paddlex") of every
              golden config vs PaddleX's result JSON: exact fields equal, scores within tolerance

The factory is called with the model file's path (and ``device=`` when --device is given) and must
return an object with the ``backend.Backend`` methods. Tolerances come from ``tolerances`` only.
The table goes to stdout; the exit status is 1 when any check fails (2 for a usage error).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from . import golden
from .audio import load_audio
from .backend import BACKEND_MEMBERS, Backend
from .checkpoint import load
from .decoding import COMPAT_PADDLEX, DecodingOptions
from .mel import N_FRAMES, pad_or_trim
from .tokenizer import Tokenizer
from .tolerances import (ENCODER_ATOL, ENCODER_REL_FROBENIUS, LANGUAGE_PROBS_ATOL, LOG_MEL_ATOL, LOGITS_ATOL,
                         LOGITS_TOPK_ORDER, RESULT_SCORE_ATOL)
from .transcribe import Model, Window, transcribe

STAGES = ("mel", "encoder", "logits", "language", "results")
TOLERANCES = {
    "mel": f"{LOG_MEL_ATOL:g}",
    "encoder": f"{ENCODER_ATOL:g}, relF {ENCODER_REL_FROBENIUS:g}",
    "logits": f"{LOGITS_ATOL:g}, argmax, top-{LOGITS_TOPK_ORDER}",
    "language": f"{LANGUAGE_PROBS_ATOL:g}, top language",
    "results": f"exact, scores {RESULT_SCORE_ATOL:g}",
}
IN_TREE = {"numpy": "numwhisper.backend:numpy_backend", "paddle": "numwhisper.paddle_backend:paddle_backend"}
QUICK_CONFIGS = ("greedy",)
EXIT_FAILED, EXIT_USAGE = 1, 2


@dataclass(frozen=True)
class Check:
    """One stage on one case: passed or not, the largest difference, and what to read on failure."""

    stage: str
    case: str
    ok: bool
    max_diff: float
    report: str
    seconds: float = 0.0


# ---------------------------------------------------------------------------------- running a backend


def case_name(case: golden.Case) -> str:
    """"model/clip"."""
    return f"{case.model}/{case.clip}"


def clip_audio(clip: str, root=golden.GOLDEN_DIR) -> np.ndarray:
    """A golden clip as PaddleX reads it (float32, channel 0) [N]."""
    return load_audio(str(root / "audio" / f"{clip}.wav"), compat=COMPAT_PADDLEX)


def encoder_input(tensors: golden.CaseTensors) -> np.ndarray:
    """Window 0 of the golden mel, padded as PaddleX pads it [n_mels, 3000]."""
    return pad_or_trim(tensors.mel, N_FRAMES)


def decoder_logits(backend: Backend, tensors: golden.CaseTensors, cross) -> np.ndarray:
    """Last-position logits of PaddleX's prefix, then of each appended argmax token -> [n_steps, V]."""
    logits, cache = backend.decode(np.array([tensors.prefix]), backend.new_cache(cross, 1))  # [1, P, V]
    steps = [logits[0, -1]]
    for token in tensors.appended:
        logits, cache = backend.decode(np.array([[token]]), cache)  # [1, 1, V]
        steps.append(logits[0, -1])
    return np.stack(steps)  # [n_steps, V]


def language_probs(backend: Backend, tokenizer: Tokenizer, tensors: golden.CaseTensors, features, cross):
    """The backend's probabilities of the golden's language codes, in their order [n_languages]."""
    ids = [tokenizer.language_token(code) for code in tensors.language_codes]
    return backend.language_probs(features, tokenizer.sot, ids, cross)


# ---------------------------------------------------------------------------------- the checks


def check_mel(name: str, ours: np.ndarray, tensors: golden.CaseTensors) -> Check:
    """Whole-clip log-mel [n_mels, T]: T frames, and window 0 within LOG_MEL_ATOL."""
    if ours.shape[-1] != tensors.n_frames:
        return Check("mel", name, False, float("inf"), f"{name} mel: {ours.shape[-1]} frames, PaddleX "
                                                        f"{tensors.n_frames}")
    stored = tensors.mel.shape[-1]
    report = golden.compare(f"{name} mel", ours[:, :stored], tensors.mel, LOG_MEL_ATOL)
    return Check("mel", name, report.ok, report.max_abs_diff, report.report)


def check_encoder(name: str, features: np.ndarray, tensors: golden.CaseTensors) -> Check:
    """Encoder output rows: max |diff| within ENCODER_ATOL and relative Frobenius within ENCODER_REL_FROBENIUS."""
    got = np.asarray(features)[tensors.encoder_rows]  # [R, d]
    expected = tensors.encoder_output  # [R, d]
    report = golden.compare(f"{name} encoder_output", got, expected, ENCODER_ATOL, index=tensors.encoder_rows)
    if not report.ok:
        return Check("encoder", name, False, report.max_abs_diff, report.report)
    diff = (got - expected).astype(np.float64)
    rel = float(np.linalg.norm(diff) / np.linalg.norm(expected.astype(np.float64)))
    ok = rel <= ENCODER_REL_FROBENIUS
    text = report.report if ok else (f"{name} encoder_output: relative Frobenius error {rel:.3g} > "
                                     f"{ENCODER_REL_FROBENIUS}\n{report.report}")
    return Check("encoder", name, ok, report.max_abs_diff, text)


def _top_ids(row: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest logits, descending, ties by ascending id (the golden files' order)."""
    ids = np.arange(row.shape[0])
    return ids[np.lexsort((ids, -row))[:k]]


def check_logits(name: str, logits: np.ndarray, tensors: golden.CaseTensors) -> Check:
    """Every step's logits [n_steps, V]: stored ids within LOGITS_ATOL, same argmax, same top-k order."""
    if logits.shape[0] != len(tensors.logits):
        return Check("logits", name, False, float("inf"),
                     f"{name} logits: {logits.shape[0]} steps, PaddleX {len(tensors.logits)}")
    failures, worst = [], 0.0
    for k, (step, row) in enumerate(zip(tensors.logits, logits)):
        where = f"{name} logits step {k}"
        report = golden.compare(where, row[step.ids], step.values, LOGITS_ATOL, index=step.ids)
        worst = max(worst, report.max_abs_diff)
        if not report.ok:
            failures.append(report.report)
        if int(np.argmax(row)) != tensors.argmax[k]:
            failures.append(f"{where}: argmax ours {int(np.argmax(row))} theirs {tensors.argmax[k]}")
        ours_top, theirs_top = _top_ids(row, LOGITS_TOPK_ORDER), step.top_ids[:LOGITS_TOPK_ORDER]
        if not np.array_equal(ours_top, theirs_top):
            failures.append(f"{where}: top-{LOGITS_TOPK_ORDER} ours {ours_top.tolist()} (logits "
                            f"{row[ours_top].tolist()}) theirs {theirs_top.tolist()}")
    return Check("logits", name, not failures, worst, "\n".join(failures))


def check_language(name: str, probs: np.ndarray, tensors: golden.CaseTensors) -> Check:
    """Language probabilities within LANGUAGE_PROBS_ATOL and the same most likely language."""
    report = golden.compare(f"{name} language_probs", probs, tensors.language_probs, LANGUAGE_PROBS_ATOL)
    top = tensors.language_codes[int(np.argmax(probs))]
    text = report.report
    if top != tensors.detected_language:
        text += f"\n{name}: top language ours {top}, PaddleX {tensors.detected_language}"
    return Check("language", name, report.ok and top == tensors.detected_language, report.max_abs_diff, text)


def score_diff(ours: dict, theirs: dict) -> float:
    """Largest |difference| of avg_logprob, no_speech_prob, compression_ratio over paired segments."""
    diffs = [abs(a[f] - b[f]) for a, b in zip(ours["segments"], theirs["segments"]) for f in golden.SCORE_FIELDS
             if isinstance(a[f], (int, float)) and isinstance(b[f], (int, float))]
    return max(diffs, default=0.0)


def check_result(name: str, config: str, ours: dict, theirs: dict) -> Check:
    """A result body vs PaddleX's: golden.result_differences must find nothing."""
    problems = golden.result_differences(ours, theirs)
    return Check("results", f"{name} {config}", not problems, score_diff(ours, theirs),
                 "\n".join(f"{name} {config}: {p}" for p in problems))


# ---------------------------------------------------------------------------------- whole transcriptions


def options_for(config: str, compat: Optional[str] = COMPAT_PADDLEX, root=golden.GOLDEN_DIR) -> DecodingOptions:
    """DecodingOptions equal to the decode kwargs PaddleX built for a golden config (manifest "configs")."""
    kwargs = golden.manifest(root)["configs"][config]

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


def shared_encoder(memo: Optional[dict] = None) -> Callable[[Model, np.ndarray, int], Window]:
    """A window encoder for ``transcribe`` that encodes each distinct window once per backend
    (``memo_encode`` into ``memo``, a new dict when None); the cross-attention state is remade each time."""
    features = {} if memo is None else memo

    def encode(model: Model, mel: np.ndarray, seek: int) -> Window:
        out = memo_encode(features, model.backend, pad_or_trim(mel[:, seek:], N_FRAMES))  # [n_audio_ctx, d]
        return Window(seek, out, model.backend.cross_kv(out))

    return encode


# ---------------------------------------------------------------------------------- the command


def load_factory(spec: str) -> Callable:
    """The factory named by "module:function" (or "numpy" / "paddle", the in-tree backends)."""
    spec = IN_TREE.get(spec, spec)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--backend {spec!r}: expected MODULE:FACTORY (or one of {', '.join(IN_TREE)})")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--backend {spec!r}: {err}") from None
    if not callable(factory):
        raise ValueError(f"--backend {spec!r}: {attr} is not callable")
    return factory


def make_backend(factory: Callable, path, device: Optional[str]) -> Backend:
    """Call the factory on a model file; refuse what lacks the Backend methods."""
    backend = factory(str(path)) if device is None else factory(str(path), device=device)
    missing = [m for m in BACKEND_MEMBERS if not hasattr(backend, m)]
    if missing:
        raise ValueError(f"the factory returned {type(backend).__name__}, which lacks {', '.join(missing)}")
    return backend


def check_tensors(backend: Backend, tokenizer: Tokenizer, case: golden.Case, stages: Sequence[str],
                  root=golden.GOLDEN_DIR, memo: Optional[dict] = None) -> list:
    """The mel, encoder, logits and language checks of one case (those in ``stages``); encoder outputs
    go through ``memo`` (see ``memo_encode``) when one is given."""
    name, tensors, checks = case_name(case), golden.load_case(case.model, case.clip, root), []

    def timed(stage: str, run: Callable, check: Callable):
        """(the backend's output or None, its Check); an exception in the backend fails the stage."""
        start = time.perf_counter()
        try:
            ours = run()
        except Exception as err:  # a backend under test may fail any way; report it, do not crash
            return None, Check(stage, name, False, float("inf"), f"{name} {stage}: the backend raised "
                                                                 f"{type(err).__name__}: {err}")
        result = check(name, ours, tensors)
        return ours, dataclasses.replace(result, seconds=time.perf_counter() - start)

    if "mel" in stages:
        checks.append(timed("mel", lambda: backend.log_mel(clip_audio(case.clip, root)), check_mel)[1])
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


def check_results(model: Model, case: golden.Case, configs: Sequence[str], encode, root=golden.GOLDEN_DIR) -> list:
    """The results check of one case in each golden config."""
    checks = []
    for config in configs:
        start = time.perf_counter()
        path = root / "audio" / f"{case.clip}.wav"
        try:
            ours = transcribe(model, str(path), options_for(config, root=root), encode=encode)["result"]
        except Exception as err:  # a backend under test may fail any way; report it, do not crash
            checks.append(Check("results", f"{case_name(case)} {config}", False, float("inf"),
                                f"{case_name(case)} {config}: transcription raised {type(err).__name__}: {err}"))
            continue
        theirs = golden.load_result(case.model, case.clip, config, root)["result"]
        result = check_result(case_name(case), config, ours, theirs)
        checks.append(dataclasses.replace(result, seconds=time.perf_counter() - start))
    return checks


def table(checks: Sequence[Check], stages: Sequence[str]) -> str:
    """The per-stage table: stage, cases, failed, max |diff|, tolerance, seconds, PASS/FAIL."""
    rows = [("stage", "cases", "failed", "maxdiff", "tolerance", "seconds", "result")]
    for stage in stages:
        mine = [c for c in checks if c.stage == stage]
        if not mine:
            rows.append((stage, "0", "-", "-", TOLERANCES[stage], "-", "n/a"))
            continue
        failed = sum(not c.ok for c in mine)
        rows.append((stage, str(len(mine)), str(failed), f"{max(c.max_diff for c in mine):.3g}", TOLERANCES[stage],
                     f"{sum(c.seconds for c in mine):.1f}", "FAIL" if failed else "PASS"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def build_parser() -> argparse.ArgumentParser:
    """The arguments of ``check``."""
    p = argparse.ArgumentParser(prog="python -m numwhisper.golden check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", required=True,
                   help=f"MODULE:FACTORY, a callable taking the model file path; or {' / '.join(IN_TREE)}")
    p.add_argument("--device", default=None, help="passed to the factory as device= (e.g. paddle:cpu, gpu:0)")
    p.add_argument("--model", action="append", default=None, help="golden model(s) to check (default: all)")
    p.add_argument("--cases", default=None, help="comma-separated clips or model/clip names (default: all)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {','.join(STAGES)}")
    p.add_argument("--configs", default=",".join(golden.CONFIGS), help="golden configs for the results stage")
    p.add_argument("--quick", action="store_true",
                   help=f"results stage on the {'/'.join(QUICK_CONFIGS)} config only (every other stage in full)")
    return p


def selected_cases(args, root=golden.GOLDEN_DIR) -> list:
    """The golden cases that --model and --cases pick."""
    chosen = golden.cases(root)
    if args.model:
        chosen = [c for c in chosen if c.model in args.model]
    if args.cases:
        wanted = {w.strip() for w in args.cases.split(",") if w.strip()}
        chosen = [c for c in chosen if c.clip in wanted or case_name(c) in wanted]
    if not chosen:
        raise ValueError("no golden case matches --model/--cases")
    return chosen


def listed(text: str, allowed: Sequence[str], what: str) -> tuple:
    """A comma-separated selection, checked against ``allowed``, in ``allowed``'s order."""
    picked = {w.strip() for w in text.split(",") if w.strip()}
    unknown = picked - set(allowed)
    if unknown or not picked:
        raise ValueError(f"{what}: unknown {sorted(unknown)}; choose from {', '.join(allowed)}")
    return tuple(a for a in allowed if a in picked)


def run(args) -> int:
    """Run the selected checks; print the table and every failure's report."""
    from .hub import resolve

    root = golden.GOLDEN_DIR
    stages = listed(args.stages, STAGES, "--stages")
    configs = QUICK_CONFIGS if args.quick else listed(args.configs, golden.CONFIGS, "--configs")
    cases = selected_cases(args, root)
    factory = load_factory(args.backend)
    checks = []
    for model_name in dict.fromkeys(c.model for c in cases):
        path = resolve(model_name)
        backend = make_backend(factory, path, args.device)
        model = Model.with_backend(backend, load(path).metadata)
        tokenizer = model.tokenizer
        memo = {}  # encoder outputs, shared by the encoder stage and the transcriptions
        encode = shared_encoder(memo)
        print(f"{model_name}: backend {getattr(backend, 'name', args.backend)}", file=sys.stderr)
        for case in (c for c in cases if c.model == model_name):
            found = check_tensors(backend, tokenizer, case, stages, root, memo)
            if "results" in stages:
                found += check_results(model, case, configs, encode, root)
            bad = [c.stage for c in found if not c.ok]
            times = " ".join(f"{c.stage}{c.case[len(case_name(case)):].replace(' ', ':')} {c.seconds:.1f}s"
                             for c in found)
            print(f"  {case_name(case)}: {'FAIL ' + ','.join(dict.fromkeys(bad)) if bad else 'ok'} ({times})",
                  file=sys.stderr)
            checks += found
    results = f", results configs {','.join(configs)}" if "results" in stages else ""
    print(f"golden parity of {args.backend}" + (f" on {args.device}" if args.device else "")
          + f": {len(cases)} cases{results}")
    print(table(checks, stages))
    failures = [c for c in checks if not c.ok]
    if failures:
        first = next(stage for stage in stages if any(c.stage == stage for c in failures))
        print(f"FAILED: first failing stage: {first}")
    for check in failures:
        print(f"\n[{check.stage} FAIL] {check.case}\n{check.report}")
    return EXIT_FAILED if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m numwhisper.golden check ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["check"]:
        print("usage: python -m numwhisper.golden check --backend MODULE:FACTORY [options] (see --help)",
              file=sys.stderr)
        return EXIT_USAGE
    args = build_parser().parse_args(argv[1:])
    try:
        return run(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
