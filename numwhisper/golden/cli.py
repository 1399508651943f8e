"""``python -m numwhisper.golden check --backend MODULE:FACTORY``: golden parity of any backend.

Runs every selected golden case through the backend, stage by stage (``check``), prints a table per
stage to stdout and every failure's report after it.

The factory is called with the model file's path (and ``device=`` when --device is given) and must
return an object with the ``backend.Backend`` methods. Exit status: 0 when every check passed,
``EXIT_CHECK_FAILED`` (1) when any failed, ``errors.EXIT_ERROR`` (2) when the command could not run
(bad arguments, a backend that cannot be built, missing model or golden files: one ``error:`` line).

Models without golden files (other sizes, random-weight stand-ins of them: ``formats.synthetic``)
are checked against a reference backend instead: ``--reference paddle --model-file F`` runs the
reference on the golden clips and applies the same stage checks and tolerances (``reference``).

``--reference openai`` checks against openai-whisper's goldens instead (``golden/openai/``): whole
transcriptions with compat="openai", their fields and their words (stages ``openai`` and ``words``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..backend import Backend, backend_members
from ..errors import EXIT_ERROR, print_error
from ..formats.checkpoint import load
from ..formats.hub import resolve
from ..transcription import WhisperModel
from . import files, openai_files
from .check import (OPENAI_STAGES, STAGES, case_name, check_case_tensors, check_contract, check_openai_case,
                    check_results, check_tensors, clip_audio, shared_encoder, table)
from .reference import LOGIT_STEPS, reference_case

IN_TREE = {"numpy": "numwhisper.backend:numpy_backend", "paddle": "numwhisper.paddle_backend:paddle_backend"}
OPENAI_REFERENCE = "openai"  # --reference openai: openai-whisper's goldens
QUICK_CONFIGS = ("greedy",)
EXIT_CHECK_FAILED = 1


def load_factory(spec: str, option: str = "--backend") -> Callable:
    """The factory named by "module:function" (or "numpy" / "paddle", the in-tree backends); errors
    name the ``option`` that gave it."""
    spec = IN_TREE.get(spec, spec)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{option} {spec!r}: expected MODULE:FACTORY (or one of {', '.join(IN_TREE)})")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{option} {spec!r}: {err}") from None
    if not callable(factory):
        raise ValueError(f"{option} {spec!r}: {attr} is not callable")
    return factory


def make_backend(factory: Callable, path, device: Optional[str]) -> Backend:
    """Call the factory on a model file; refuse what lacks the Backend methods."""
    backend = factory(str(path)) if device is None else factory(str(path), device=device)
    missing = [m for m in backend_members() if not hasattr(backend, m)]
    if missing:
        raise ValueError(f"the factory returned {type(backend).__name__}, which lacks {', '.join(missing)}")
    return backend


def golden_model(factory: Callable, model_name: str, args) -> WhisperModel:
    """The backend under test for a golden model, as a WhisperModel with its file's tokenizers and heads
    (the backend's name goes to stderr)."""
    path = resolve(model_name)
    backend = make_backend(factory, path, args.device)
    print(f"{model_name}: backend {getattr(backend, 'name', args.backend)}", file=sys.stderr)
    return WhisperModel.with_backend(backend, load(path).metadata)


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
    p.add_argument("--configs", default=",".join(files.CONFIGS), help="golden configs for the results stage")
    p.add_argument("--quick", action="store_true",
                   help=f"results stage on the {'/'.join(QUICK_CONFIGS)} config only (every other stage in full)")
    p.add_argument("--reference", default=None, metavar="MODULE:FACTORY|openai",
                   help="instead of PaddleX's golden files: 'openai' checks whole transcriptions and words "
                        f"(compat=\"openai\", configs {','.join(openai_files.OPENAI_CONFIGS)}) against "
                        "openai-whisper's goldens; a MODULE:FACTORY compares with that reference backend run on "
                        "the golden clips (for models without goldens, e.g. other sizes; needs --model-file; "
                        f"stages {','.join(REFERENCE_STAGES)})")
    p.add_argument("--model-file", default=None, help="with --reference: the model file both backends load")
    return p


REFERENCE_STAGES = ("mel", "encoder", "logits", "language")


def selected_cases(args, root=files.GOLDEN_DIR) -> list:
    """The golden cases that --model and --cases pick."""
    chosen = files.cases(root)
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
    root = files.require(files.GOLDEN_DIR)
    if args.reference == OPENAI_REFERENCE:
        return run_against_openai(args, root)
    if args.reference or args.model_file:
        return run_against_reference(args, root)
    stages = listed(args.stages, STAGES, "--stages")
    configs = QUICK_CONFIGS if args.quick else listed(args.configs, files.CONFIGS, "--configs")
    cases = selected_cases(args, root)
    factory = load_factory(args.backend)
    checks = []
    for model_name in dict.fromkeys(c.model for c in cases):
        model = golden_model(factory, model_name, args)
        backend, tokenizer = model.backend, model.tokenizer
        memo = {}  # encoder outputs, shared by the encoder stage and the transcriptions
        encode = shared_encoder(memo)
        model_cases = [c for c in cases if c.model == model_name]
        for case in model_cases:
            found = check_tensors(backend, tokenizer, case, stages, root, memo)
            if "contract" in stages and case is model_cases[0]:
                found += check_contract(backend, tokenizer, case, root, memo)
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
    return report(checks, stages)


def run_against_openai(args, root) -> int:
    """Whole transcriptions (compat="openai") and their words against openai-whisper's goldens."""
    configs = (openai_files.OPENAI_CONFIGS if args.configs == ",".join(files.CONFIGS)
               else listed(args.configs, openai_files.OPENAI_CONFIGS, "--configs (with --reference openai)"))
    wanted = {w.strip() for w in (args.cases or "").split(",") if w.strip()}
    cases = [c for c in openai_files.cases(root, configs) if (not args.model or c.model in args.model)
             and (not wanted or c.clip in wanted or c.name in wanted or f"{c.model}/{c.clip}" in wanted)]
    if not cases:
        raise ValueError("no openai golden case matches --model/--cases/--configs")
    factory = load_factory(args.backend)
    checks = []
    for model_name in dict.fromkeys(c.model for c in cases):
        model = golden_model(factory, model_name, args)
        encode = shared_encoder({})
        for case in (c for c in cases if c.model == model_name):
            found = check_openai_case(model, case, encode, root)
            bad = [c.stage for c in found if not c.ok]
            print(f"  {case.name}: {'FAIL ' + ','.join(bad) if bad else 'ok'} ({found[0].seconds:.1f}s)",
                  file=sys.stderr)
            checks += found
    print(f"openai-whisper parity of {args.backend}" + (f" on {args.device}" if args.device else "")
          + f": {len(cases)} cases, configs {','.join(configs)}")
    return report(checks, OPENAI_STAGES)


def run_against_reference(args, root) -> int:
    """The tensor stages of the backend against a reference backend, both loading ``--model-file``,
    on the golden clips (``--cases`` picks clips)."""
    if not (args.reference and args.model_file):
        raise ValueError("--reference and --model-file go together")
    stages = listed(args.stages if args.stages != ",".join(STAGES) else ",".join(REFERENCE_STAGES),
                    REFERENCE_STAGES, "--stages (with --reference)")
    clips = list(dict.fromkeys(c.clip for c in selected_cases(argparse.Namespace(model=None, cases=args.cases), root)))
    path = resolve(args.model_file)
    backend = make_backend(load_factory(args.backend), path, args.device)
    reference = make_backend(load_factory(args.reference, "--reference"), path, None)
    tokenizer = WhisperModel.with_backend(backend, load(path).metadata).tokenizer
    label = Path(path).stem
    checks = []
    for clip in clips:
        audio = clip_audio(clip, root)
        tensors = reference_case(reference, tokenizer, label, clip, audio)
        found = check_case_tensors(backend, tokenizer, f"{label}/{clip}", tensors, lambda: audio, stages)
        bad = [c.stage for c in found if not c.ok]
        print(f"  {label}/{clip}: {'FAIL ' + ','.join(bad) if bad else 'ok'}", file=sys.stderr)
        checks += found
    print(f"parity of {args.backend} against {args.reference} on {path}: {len(clips)} clips, "
          f"logits over {LOGIT_STEPS} greedy steps of the reference")
    return report(checks, stages)


def report(checks: list, stages: Sequence[str]) -> int:
    """Print the table and every failure's report; the exit status."""
    print(table(checks, stages))
    failures = [c for c in checks if not c.ok]
    if failures:
        first = next(stage for stage in stages if any(c.stage == stage for c in failures))
        print(f"FAILED: first failing stage: {first}")
    for check in failures:
        print(f"\n[{check.stage} FAIL] {check.case}\n{check.report}")
    return EXIT_CHECK_FAILED if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m numwhisper.golden check ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["check"]:
        print("usage: python -m numwhisper.golden check --backend MODULE:FACTORY [options] (see --help)",
              file=sys.stderr)
        return EXIT_ERROR
    args = build_parser().parse_args(argv[1:])
    try:
        return run(args)
    except ValueError as err:  # the errors module's classes included (GoldenFilesMissing, ModelFileError)
        return print_error(err)
