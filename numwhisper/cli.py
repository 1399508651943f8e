"""``python -m numwhisper AUDIO ...``: transcribe files, directories, list files and URLs from the command line.

Options carry openai-whisper's names where they exist, and PaddleX's spellings too (``--input``,
``--save_path``, ``--device``, ``--pipeline``, ``--get_pipeline_config``). Each input prints its
PaddleX-shaped result as it finishes; a bad input prints one ``error:`` line and the others still run.
The batch options (``--skip_existing``, ``--summary``, ``--workers``, ``--executor``) are parsed and
shown here; planning and running the job is ``batch``'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from typing import Iterator, Optional, Sequence, Union

from .arguments import optional_float, optional_int, positive_int, str2bool
from .batch import (FAILED, SKIPPED, Job, Outcome, Summary, Task, header_seconds, plan_tasks, run_local_job,
                    split_skipped)
from .decoding import COMPAT_MODES, DecodingOptions, openai_defaults, options_for_mode
from .devices import Device, resolve_device
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, ModelFileError, print_error, printable
from .formats.hub import DEFAULT_MODEL, SUPPORTED
from .inputs import DEFAULT_MAX_AUDIO_SECONDS, LIST_SUFFIXES, AudioLimits, expand_inputs
from .pipeline import PIPELINE_NAME, load_config, model_from_config, save_config
from .progress import JobBar, ProgressBar
from .result import Result
from .startup import deliver_interrupts, start_compiler
from .writers import ALL, WRITERS, WriterOptions


class ModeDefault:
    """The default of an option whose default depends on --compat (``decoding_options`` resolves it).
    Not a string, so argparse leaves it unconverted."""

    def __repr__(self) -> str:
        return "the --compat mode's default"


MODE_DEFAULT = ModeDefault()
WORD_LAYOUT_OPTIONS = ("highlight_words", "max_line_width", "max_line_count", "max_words_per_line")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults are PaddleX's: beam 5, temperature 0, language detection; with
    --compat openai, openai-whisper's command line's)."""
    defaults, openai = DecodingOptions(), openai_defaults()
    p = argparse.ArgumentParser(prog="numwhisper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="*", help="audio files, directories, http(s) URLs, or list files "
                                            f"({', '.join(LIST_SUFFIXES)}) naming them")
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
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads (default: all cores; with --workers N, split between them, default 1 each)")
    p.add_argument("--max-audio-seconds", "--max_audio_seconds", dest="max_audio_seconds", type=float,
                   default=DEFAULT_MAX_AUDIO_SECONDS,
                   help=f"longer inputs are refused before they are decoded (default {DEFAULT_MAX_AUDIO_SECONDS:g})")
    p.add_argument("--output_dir", "--save_path", dest="output_dir", default=None,
                   help="where to write the output files (default: print only)")
    p.add_argument("--output_format", "-f", default=None, choices=[*WRITERS, ALL],
                   help="file format(s) to write into --output_dir (default: json)")
    p.add_argument("--skip_existing", action="store_true",
                   help="do not transcribe an input whose every output file is already in --output_dir")
    p.add_argument("--summary", default=None, metavar="FILE",
                   help="append one JSON line per finished input (input, status, error, audio_seconds, "
                        "wall_seconds, language); the file is itself a list of inputs")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes, each with the model loaded once (default 1: this process)")
    p.add_argument("--executor", default="local", choices=["local", "dask"],
                   help="where the inputs run: this machine, or a dask cluster (--address)")
    p.add_argument("--address", default=None, help="the dask scheduler's address, with --executor dask")
    p.add_argument("--verbose", type=str2bool, default=True, help="progress on stderr (True/False)")
    p.add_argument("--task", default=defaults.task, choices=["transcribe", "translate"])
    p.add_argument("--language", default=defaults.language, help="language code or name (default: detect)")
    p.add_argument("--temperature", type=float, default=MODE_DEFAULT,
                   help=f"default {defaults.temperature!r}; {openai.temperature!r} with --compat openai")
    p.add_argument("--temperature_increment_on_fallback", type=optional_float, default=MODE_DEFAULT,
                   help=f"default {defaults.temperature_increment_on_fallback}: no fallback; "
                        f"{openai.temperature_increment_on_fallback} with --compat openai")
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
    p.add_argument("--compat", default=None, choices=[c for c in COMPAT_MODES if c],
                   help="paddlex: reproduce PaddleX's bugs too (README: Differences from PaddleX); openai: "
                        "openai-whisper's transcribe, its defaults and its result dict (README: openai-whisper's "
                        "pipeline)")
    p.add_argument("--word_timestamps", type=str2bool, default=defaults.word_timestamps,
                   help="add each word's start, end and probability to the segments (openai-whisper's method; "
                        "PaddleX's segments stay as they are)")
    p.add_argument("--prepend_punctuations", default=defaults.prepend_punctuations,
                   help="with --word_timestamps True, these marks join the word after them")
    p.add_argument("--append_punctuations", default=defaults.append_punctuations,
                   help="with --word_timestamps True, these marks join the word before them")
    p.add_argument("--clip_timestamps", default=defaults.clip_timestamps,
                   help="(--compat openai) start,end,start,end,... seconds to transcribe; the last end may be left "
                        "out (default 0: the whole input)")
    p.add_argument("--hallucination_silence_threshold", type=optional_float,
                   default=defaults.hallucination_silence_threshold,
                   help="(--compat openai, --word_timestamps True) skip silences longer than this many seconds "
                        "around a likely hallucination")
    p.add_argument("--carry_initial_prompt", type=str2bool, default=defaults.carry_initial_prompt,
                   help="(--compat openai) put --initial_prompt before every window's prompt, not only the first")
    # openai-whisper's word layout of srt and vtt files (writers.WriterOptions)
    p.add_argument("--highlight_words", type=str2bool, default=False,
                   help="(needs --word_timestamps True) in srt and vtt, underline each word while it is spoken")
    p.add_argument("--max_line_width", type=optional_int, default=None,
                   help="(needs --word_timestamps True) characters a subtitle line may hold before it breaks")
    p.add_argument("--max_line_count", type=optional_int, default=None,
                   help="(needs --word_timestamps True and --max_line_width) lines per subtitle; subtitles "
                        "then run across segments")
    p.add_argument("--max_words_per_line", type=optional_int, default=None,
                   help="(needs --word_timestamps True; not with --max_line_count) words per subtitle at most")
    return p


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    """The decoding options the arguments ask for: every DecodingOptions field the parser defines, an
    option left at MODE_DEFAULT taking the default of the --compat mode (ValueError for a bad combination)."""
    given = {f.name: vars(args)[f.name] for f in dataclasses.fields(DecodingOptions) if f.name in vars(args)}
    given = {name: value for name, value in given.items() if value is not MODE_DEFAULT}
    return options_for_mode(**given)


def writer_options(args: argparse.Namespace) -> WriterOptions:
    """The word layout the arguments ask for (ValueError, one line, for a bad combination): the options
    lay out words, so they need --word_timestamps True (openai-whisper refuses them without it too)."""
    given = [name for name in WORD_LAYOUT_OPTIONS if getattr(args, name)]
    if given and not vars(args).get("word_timestamps", False):
        raise ValueError(f"--{given[0]} needs --word_timestamps True: it lays out the words of srt and vtt files")
    try:
        return WriterOptions(**{name: getattr(args, name) for name in WORD_LAYOUT_OPTIONS})
    except ValueError as err:  # the same message, naming the options as they are typed
        raise ValueError(re.sub(rf"\b({'|'.join(WORD_LAYOUT_OPTIONS)})\b", r"--\1", str(err))) from None


def chosen_model(args: argparse.Namespace) -> str:
    """--model_dir, else --model, else the pipeline config's model, else the default."""
    if args.model_dir or args.model:
        return args.model_dir or args.model
    if args.pipeline and args.pipeline != PIPELINE_NAME:
        return model_from_config(load_config(args.pipeline))
    return DEFAULT_MODEL


def check_job_options(args: argparse.Namespace) -> None:
    """The batch options that only make sense together (ValueError, one line, before anything runs)."""
    if args.skip_existing and not args.output_dir:
        raise ValueError("--skip_existing needs --output_dir: it skips the inputs whose outputs are there")
    if args.executor == "dask" and not args.address:
        raise ValueError("--executor dask needs --address, the dask scheduler (e.g. tcp://host:8786)")
    if args.executor != "dask" and args.address:
        raise ValueError("--address is the dask scheduler's; it needs --executor dask")
    if args.executor == "dask" and args.workers is not None:
        raise ValueError("--workers is for --executor local; a dask cluster runs as many workers as it has")


def run(args: argparse.Namespace) -> int:
    """Transcribe every input; 0 when all succeeded (or were skipped), 2 when any input failed."""
    if args.get_pipeline_config:
        if args.get_pipeline_config != PIPELINE_NAME:
            raise ValueError(f"unknown pipeline {args.get_pipeline_config!r}; numwhisper has {PIPELINE_NAME!r}")
        print(save_config(args.output_dir or "."))
        return 0
    inputs = [*args.audio, *args.input]
    if not inputs:
        raise ValueError("no input given: pass audio files, directories, list files or URLs")
    check_job_options(args)
    layout = writer_options(args)
    # a dask cluster's workers resolve the device themselves (they may have what this machine has not)
    device = args.device if args.executor == "dask" else resolve_device(args.device)  # fails before any read
    job = Job(options=decoding_options(args), limits=AudioLimits(max_seconds=args.max_audio_seconds),
              output_dir=os.path.abspath(args.output_dir) if args.output_dir else None,
              output_format=args.output_format or "json", skip_existing=args.skip_existing, writer_options=layout)
    model = chosen_model(args)
    tasks = plan_tasks(expand_inputs(inputs))
    if args.executor == "local" and (args.workers or 1) <= 1:
        start_compiler()  # this process runs the kernels (numwhisper.startup)
    display = Display(tasks, shown=args.verbose and sys.stderr.isatty())
    summary = Summary(args.summary, tasks) if args.summary else None
    try:
        for outcome in job_outcomes(args, model, device, tasks, job, display.progress_for):
            display.report(outcome)
            if summary is not None:
                summary.add(outcome)
    finally:
        display.close()
        if summary is not None:
            summary.close()
    if display.skipped and args.verbose:
        print(f"skipped {display.skipped} of {len(tasks)} inputs: their outputs exist (--skip_existing)",
              file=sys.stderr)
    return EXIT_ERROR if display.failed else 0


def job_outcomes(args: argparse.Namespace, model: str, device: Union[Device, str, None], tasks: Sequence[Task],
                 job: Job, progress_for) -> Iterator[Outcome]:
    """The job's Outcomes as tasks finish: those skipped first, then the rest from the chosen executor."""
    skipped, remaining = split_skipped(tasks, job)
    yield from skipped
    if not remaining:
        return
    if args.executor == "dask":
        from .cluster import run_dask_job
        yield from run_dask_job(args.address, model, device, remaining, job, args.threads or 1)
    else:
        yield from run_local_job(model, device, remaining, job, workers=args.workers or 1, threads=args.threads,
                                 progress=progress_for)


class Display:
    """What the user sees of a job: each result printed as it finishes (an ``error:`` line for a
    failure) and, on a terminal, progress: one input's bar, or the job's bar over files and hours."""

    def __init__(self, tasks: Sequence[Task], shown: bool):
        self.tasks, self.shown = tasks, shown
        self.failed = self.skipped = 0
        self.bar: Optional[ProgressBar] = None
        self.job_bar: Optional[JobBar] = None
        if shown and len(tasks) > 1:
            self.seconds = {task.number: header_seconds(task.item) for task in tasks}
            known = None not in self.seconds.values()
            self.job_bar = JobBar(len(tasks), sum(self.seconds.values()) if known else None)
            self.job_bar.draw()

    def progress_for(self, task: Task):
        """The per-window callback of a task run in this process: the job bar's, or a bar of its own."""
        if self.job_bar is not None:
            return self.job_bar.working
        if not self.shown:
            return None
        self.bar = ProgressBar(f"[{task.number}/{len(self.tasks)}] {printable(task.item.name)}")
        return self.bar

    def report(self, outcome: Outcome) -> None:
        """Print an outcome (the result, or its error line) and move the progress on."""
        self.end_bar()
        if outcome.status == FAILED:
            self.failed += 1
            print_error(outcome.error)
        elif outcome.status == SKIPPED:
            self.skipped += 1
        else:
            Result(outcome.result).print(json_format=True, indent=4, ensure_ascii=False)
            sys.stdout.flush()
        if self.job_bar is not None:
            known = self.seconds.get(outcome.number)
            seconds = known if self.job_bar.total_seconds is not None else (outcome.audio_seconds or known)
            self.job_bar.advance(seconds, failed=outcome.status == FAILED)

    def end_bar(self) -> None:
        """Take the progress line out of the way of what is printed next."""
        self.end_input_bar()
        if self.job_bar is not None:
            self.job_bar.clear()

    def end_input_bar(self) -> None:
        """Finish the line of one input's bar, if one is drawn."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        """End the progress line for good."""
        self.end_input_bar()
        if self.job_bar is not None:
            self.job_bar.close()
            self.job_bar = None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m numwhisper`` and the ``numwhisper`` script (``serve`` starts the HTTP service)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from .serve.cli import main as serve_main
        return serve_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    deliver_interrupts()  # Ctrl-C stops the job even while Numba compiles (numwhisper.startup)
    try:
        return run(args)
    except (ModelFileError, ValueError) as err:
        return print_error(err)
    except KeyboardInterrupt:
        print_error("interrupted (run again with --skip_existing to resume the job)")
        return EXIT_INTERRUPTED
