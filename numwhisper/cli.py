"""``python -m numwhisper AUDIO ...``: transcribe files, directories and URLs from the command line.

Options carry openai-whisper's names where they exist, and PaddleX's spellings too (``--input``,
``--save_path``, ``--device``, ``--pipeline``, ``--get_pipeline_config``). Each input prints its
PaddleX-shaped result; a bad input prints one ``error:`` line and the others still run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence

from .arguments import optional_float, optional_int, positive_int, str2bool
from .decoding import COMPAT_PADDLEX, DecodingOptions
from .devices import resolve_device
from .errors import EXIT_ERROR, ModelFileError, print_error, printable
from .formats.hub import DEFAULT_MODEL, SUPPORTED
from .inputs import DEFAULT_MAX_AUDIO_SECONDS, AudioLimits, WorkItem, expand_inputs
from .pipeline import PIPELINE_NAME, load_config, model_from_config, save_config, transcribe_item
from .progress import ProgressBar
from .result import Result
from .threads import set_num_threads
from .transcription import load_model
from .writers import ALL, WRITERS, write_result


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults are PaddleX's: beam 5, temperature 0, language detection)."""
    defaults = DecodingOptions()
    p = argparse.ArgumentParser(prog="numwhisper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="*", help="audio files, directories or http(s) URLs")
    p.add_argument("--input", action="append", default=[], help="an input, PaddleX's spelling (repeatable)")
    p.add_argument("--model", default=None, help=f"model name (tiny .. large-v3-turbo; default {DEFAULT_MODEL}) or "
                                                 f"path: {SUPPORTED}")
    p.add_argument("--model_dir", default=None, help=f"a model path: {SUPPORTED}")
    p.add_argument("--pipeline", default=None, help=f"{PIPELINE_NAME} or a pipeline config .yaml")
    p.add_argument("--get_pipeline_config", default=None, metavar=PIPELINE_NAME,
                   help="write the pipeline config to --save_path and exit")
    p.add_argument("--device", default=None,
                   help="cpu (NumPy), paddle:cpu (Paddle on the CPU), gpu:N, npu:N, xpu:N, mlu:N, dcu:N (Paddle); "
                        "default: gpu:0 when Paddle sees a GPU, else cpu")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--max-audio-seconds", "--max_audio_seconds", dest="max_audio_seconds", type=float,
                   default=DEFAULT_MAX_AUDIO_SECONDS,
                   help=f"longer inputs are refused before they are decoded (default {DEFAULT_MAX_AUDIO_SECONDS:g})")
    p.add_argument("--output_dir", "--save_path", dest="output_dir", default=None,
                   help="where to write the output files (default: print only)")
    p.add_argument("--output_format", "-f", default=None, choices=[*WRITERS, ALL],
                   help="file format(s) to write into --output_dir (default: json)")
    p.add_argument("--verbose", type=str2bool, default=True, help="progress on stderr (True/False)")
    p.add_argument("--task", default=defaults.task, choices=["transcribe", "translate"])
    p.add_argument("--language", default=defaults.language, help="language code or name (default: detect)")
    p.add_argument("--temperature", type=float, default=defaults.temperature)
    p.add_argument("--temperature_increment_on_fallback", type=optional_float,
                   default=defaults.temperature_increment_on_fallback)
    p.add_argument("--best_of", type=optional_int, default=defaults.best_of)
    p.add_argument("--beam_size", type=optional_int, default=defaults.beam_size, help="None for greedy decoding")
    p.add_argument("--patience", type=optional_float, default=defaults.patience)
    p.add_argument("--length_penalty", type=optional_float, default=defaults.length_penalty)
    p.add_argument("--initial_prompt", default=defaults.initial_prompt)
    p.add_argument("--condition_on_previous_text", type=str2bool, default=defaults.condition_on_previous_text)
    p.add_argument("--compression_ratio_threshold", type=optional_float, default=defaults.compression_ratio_threshold)
    p.add_argument("--logprob_threshold", type=optional_float, default=defaults.logprob_threshold)
    p.add_argument("--no_speech_threshold", type=optional_float, default=defaults.no_speech_threshold)
    p.add_argument("--seed", type=int, default=None, help="seed for sampling at temperature > 0")
    p.add_argument("--compat", default=None, choices=[COMPAT_PADDLEX],
                   help="reproduce PaddleX's bugs too (see README: Differences from PaddleX)")
    return p


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    """The decoding options the arguments ask for: every DecodingOptions field the parser defines
    (ValueError for a bad combination)."""
    given = vars(args)
    return DecodingOptions(**{f.name: given[f.name] for f in dataclasses.fields(DecodingOptions) if f.name in given})


def chosen_model(args: argparse.Namespace) -> str:
    """--model_dir, else --model, else the pipeline config's model, else the default."""
    if args.model_dir or args.model:
        return args.model_dir or args.model
    if args.pipeline and args.pipeline != PIPELINE_NAME:
        return model_from_config(load_config(args.pipeline))
    return DEFAULT_MODEL


def batch_stem(result: Result, number: int, used: set) -> str:
    """The file stem for a batch's output: the input's stem, else its whole file name, else with ``_number``.

    Two inputs with one stem (``a.mp3`` and ``a.ogg``, or equal names in two directories) must not
    overwrite each other's output.
    """
    stem = result.stem()
    if stem in used and result.get("input_path"):
        stem = Path(str(result["input_path"])).name
    if stem in used:
        stem = f"{stem}_{number}"
    used.add(stem)
    return stem


def run(args: argparse.Namespace) -> int:
    """Transcribe every input; 0 when all succeeded, 2 when any input failed."""
    if args.get_pipeline_config:
        if args.get_pipeline_config != PIPELINE_NAME:
            raise ValueError(f"unknown pipeline {args.get_pipeline_config!r}; numwhisper has {PIPELINE_NAME!r}")
        print(save_config(args.output_dir or "."))
        return 0
    inputs = [*args.audio, *args.input]
    if not inputs:
        raise ValueError("no input given: pass audio files, directories or URLs")
    device = resolve_device(args.device)  # fails before anything is read
    options = decoding_options(args)
    if args.threads is not None:
        set_num_threads(args.threads)
    limits = AudioLimits(max_seconds=args.max_audio_seconds)
    model = load_model(chosen_model(args), device=device)
    failures, used_stems = 0, set()
    items = expand_inputs(inputs)
    show_progress = args.verbose and sys.stderr.isatty()
    for number, item in enumerate(items, start=1):
        bar = ProgressBar(f"[{number}/{len(items)}] {printable(item.name)}") if show_progress else None
        try:
            result = Result(transcribe_item(model, item, options, progress=bar, limits=limits))
            if bar is not None:
                bar.close()
                bar = None
            result.print(json_format=True, indent=4, ensure_ascii=False)
            if args.output_dir:
                write_result(result, args.output_dir, args.output_format or "json",
                             stem=batch_stem(result, number, used_stems))
        except Exception as err:  # noqa: BLE001 - one input's failure, whatever it is, must not stop the batch
            if bar is not None:
                bar.close()
            print_error(failure_message(item, err))
            failures += 1
    return EXIT_ERROR if failures else 0


def failure_message(item: WorkItem, err: Exception) -> str:
    """One line for a failed input: its name first, then the cause in words (not a traceback)."""
    name = printable(item.name)
    if isinstance(err, MemoryError):
        cause = "not enough memory to transcribe it"
    elif isinstance(err, OSError):
        cause = f"{err.strerror or err}" + (f" ({err.filename})" if err.filename else "")
    elif isinstance(err, ValueError):
        cause = str(err)
    else:
        cause = f"unexpected {type(err).__name__}: {err}"
    return cause if cause.startswith(name) else f"{name}: {cause}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m numwhisper`` and the ``numwhisper`` script (``serve`` starts the HTTP service)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from .serve.cli import main as serve_main
        return serve_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ModelFileError, ValueError) as err:
        return print_error(err)
