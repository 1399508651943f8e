"""Batch jobs: many inputs transcribed with one model, resumable and auditable.

A job is planned before anything runs: ``plan_tasks`` numbers the work items and gives each the stem
of its output files, from the item list alone (the same list always gets the same stems, which is
what lets ``--skip_existing`` recognise the outputs of an earlier, interrupted run). ``run_task``
does one task (skip, or transcribe and write its outputs atomically) and reports an ``Outcome``;
it never raises for one input's failure. Executors yield Outcomes in the order tasks finish:
``run_local_job`` on this machine (in this process, or in worker processes that each load the model
once), ``cluster.run_dask_job`` on a Dask cluster. ``Summary`` appends each Outcome to the
``--summary`` file as it comes.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import soundfile

from . import atomic
from .decoding import DecodingOptions
from .devices import Device
from .errors import ModelFileError, OutputError, one_line, printable
from .formats.hub import resolve
from .inputs import UNKNOWN_LENGTH, AudioLimits, WorkItem, is_url
from .mel import HOP_LENGTH, SAMPLE_RATE
from .pipeline import transcribe_item
from .result import input_name, plain
from .startup import start_compiler
from .threads import set_num_threads
from .transcription import WhisperModel, load_model
from .writers import WriterOptions, resolve_formats, write_result

DONE, FAILED, SKIPPED = "done", "failed", "skipped"


# ------------------------------------------------------------------------------------------ contract

@dataclass(frozen=True)
class Job:
    """What every input of a job is done with (picklable, so it can travel to worker processes)."""

    options: DecodingOptions
    output_dir: Optional[str] = None      # absolute path when given; None: nothing written
    output_format: str = "json"           # as --output_format (a writer name or "all")
    limits: AudioLimits = AudioLimits()
    skip_existing: bool = False
    writer_options: WriterOptions = WriterOptions()  # how srt and vtt lay out words


@dataclass(frozen=True)
class Task:
    """One input of a job, its output stem decided before anything runs (picklable)."""

    number: int                 # 1-based position in the job
    item: WorkItem              # what to read
    stem: str                   # file stem of its outputs (unique within the job)


@dataclass(frozen=True)
class Outcome:
    """What happened to one task (picklable)."""

    number: int
    input: str                  # the item's name (path or URL)
    status: str                 # DONE | FAILED | SKIPPED
    error: Optional[str]        # the one-line message when failed
    audio_seconds: Optional[float]
    wall_seconds: float
    language: Optional[str]
    result: Optional[dict]      # the PaddleX-shaped result dict when done (what the CLI prints)

    def summary_row(self) -> dict:
        """The ``--summary`` JSON Lines row; its ``input`` key makes the summary a valid list file."""
        return {"input": self.input, "status": self.status, "error": self.error,
                "audio_seconds": self.audio_seconds, "wall_seconds": round(self.wall_seconds, 3),
                "language": self.language}


def plan_tasks(items: Sequence[WorkItem]) -> List[Task]:
    """Number the items and give each a unique output stem, from the list alone.

    The stem is the input's file name without its suffix; when an earlier item already has it, the
    whole file name (``a.mp3`` and ``a.ogg``; equal names in two folders); when that is taken too, the
    stem with ``_number`` added. An input without a file name (base64 text, bytes) is ``input_number``.
    Items that failed to expand will never write, so they reserve no stem.
    """
    used: set = set()
    tasks = []
    for number, item in enumerate(items, start=1):
        stem = unique_stem(item, number, used)
        if item.error is None:
            used.add(stem)
        tasks.append(Task(number=number, item=item, stem=stem))
    return tasks


def unique_stem(item: WorkItem, number: int, used: set) -> str:
    """The first free stem of ``item`` among ``used`` (see ``plan_tasks``)."""
    name = input_name(item.input_path)
    if not name:
        stem = f"input_{number}"
    else:
        stem = Path(name).stem or name
        if stem in used:
            stem = name
    while stem in used:
        stem = f"{stem}_{number}"
    return stem


def output_paths(task: Task, job: Job) -> List[Path]:
    """The files a task writes: ``output_dir/{stem}.{format}`` for each requested format (none without a folder)."""
    if job.output_dir is None:
        return []
    return [Path(job.output_dir) / f"{task.stem}.{name}" for name in resolve_formats(job.output_format)]


def remove_leftovers(task: Task, job: Job) -> None:
    """Delete the temporaries of the task's output files that a process killed while writing them left
    behind (``atomic.leftovers``)."""
    for path in output_paths(task, job):
        atomic.remove_leftovers(path)


def is_complete(task: Task, job: Job) -> bool:
    """Whether every output file the task would write exists (written atomically, so each is whole)."""
    paths = output_paths(task, job)
    return bool(paths) and all(path.is_file() for path in paths)


def run_task(model: WhisperModel, task: Task, job: Job,
             progress: Optional[Callable[[int, int], None]] = None) -> Outcome:
    """Do one task: skip it when ``job.skip_existing`` and its outputs exist, else transcribe it and
    write its outputs (all or none). Never raises for the input's own failure: that is a FAILED Outcome
    with a one-line error. ``progress(done_frames, total_frames)`` is called after each 30 s window."""
    skipped = skipped_outcome(task, job)
    if skipped is not None:
        return skipped
    if job.skip_existing:  # a resumed job: what an interrupted run was writing is incomplete
        remove_leftovers(task, job)
    started = time.perf_counter()
    frames = FrameCount(progress)
    try:
        result = transcribe_item(model, task.item, job.options, progress=frames, limits=job.limits)
        if job.output_dir is not None:
            with SignalsHeld():
                # with compat="openai" the files are openai-whisper's, written from its own result dict
                written = result["result"] if job.options.openai else result
                write_result(written, job.output_dir, job.output_format, stem=task.stem, options=job.writer_options)
        result = plain(result)
    except Exception as err:  # noqa: BLE001 - one input's failure, whatever it is, must not stop the job
        return Outcome(task.number, task.item.name, FAILED, failure_message(task.item, err), frames.seconds(),
                       time.perf_counter() - started, None, None)
    language = result.get("result", {}).get("language")
    return Outcome(task.number, task.item.name, DONE, None, frames.seconds(), time.perf_counter() - started,
                   language, result)


class SignalsHeld:
    """Inside the block, SIGINT and SIGTERM wait (in this thread) until it ends, so that a job stopped
    while an input's outputs are being put in place leaves all of them or none, and no temporary file.
    Where signals cannot be held, the block runs as it is: a worker stopped inside it leaves temporaries,
    which the parent removes (``WorkerPool.stop_all``)."""

    HELD = {signal.SIGINT, signal.SIGTERM}

    def __enter__(self) -> "SignalsHeld":
        try:
            self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, self.HELD)
        except (AttributeError, OSError, ValueError):
            self.previous = None
        return self

    def __exit__(self, *exc) -> bool:
        if self.previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.previous)
        return False


class FrameCount:
    """A progress callback that remembers the clip's length in mel frames and passes calls on."""

    def __init__(self, forward: Optional[Callable[[int, int], None]] = None):
        self.forward, self.total = forward, None

    def __call__(self, done_frames: int, total_frames: int) -> None:
        self.total = total_frames
        if self.forward is not None:
            self.forward(done_frames, total_frames)

    def seconds(self) -> Optional[float]:
        """The clip's duration in seconds, once a window was transcribed (else None)."""
        return None if self.total is None else round(self.total * HOP_LENGTH / SAMPLE_RATE, 3)


def failure_message(item: WorkItem, err: BaseException) -> str:
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
    return one_line(cause if cause.startswith(name) else f"{name}: {cause}")


# ------------------------------------------------------------------------------------- planning a run

def skipped_outcome(task: Task, job: Job) -> Optional[Outcome]:
    """The SKIPPED outcome of a task whose outputs all exist when ``job.skip_existing``; else None."""
    started = time.perf_counter()
    if job.skip_existing and is_complete(task, job):
        return Outcome(task.number, task.item.name, SKIPPED, None, None, time.perf_counter() - started, None, None)
    return None


def split_skipped(tasks: Sequence[Task], job: Job) -> Tuple[List[Outcome], List[Task]]:
    """(the outcomes of tasks skipped because their outputs exist, the tasks still to run), checked in
    this process so that a resumed job hands its executor only what is left."""
    skipped, remaining = [], []
    for task in tasks:
        outcome = skipped_outcome(task, job)
        if outcome is None:
            remaining.append(task)
        else:
            skipped.append(outcome)
    return skipped, remaining


def header_seconds(item: WorkItem) -> Optional[float]:
    """The duration a local file's header declares; 0 for a file that cannot be read (it will fail at
    once); None when it cannot be known without decoding (URLs, inline audio, streams of unknown length)."""
    if item.error is not None:
        return 0.0
    if item.input_path is None or is_url(item.input_path):
        return None
    try:
        info = soundfile.info(item.input_path)
    except Exception:  # noqa: BLE001 - whatever makes the header unreadable, the input fails when it is run
        return 0.0
    if info.frames == UNKNOWN_LENGTH or info.samplerate <= 0:
        return None
    return info.frames / info.samplerate


def rerun_input(item: WorkItem) -> str:
    """How the summary names an input so that the summary, read as a list file, runs it again from any
    folder: local paths made absolute, URLs and other names as they are."""
    if item.input_path is not None and not is_url(item.input_path):
        return os.path.abspath(item.input_path)
    return item.name


class Summary:
    """The ``--summary`` file: one JSON line per finished input, appended whole and flushed at once,
    so an interrupted job's summary holds every input it finished."""

    def __init__(self, path: Union[str, Path], tasks: Sequence[Task]):
        self.path, self.tasks = Path(path), {task.number: task for task in tasks}
        try:
            self.file = open(self.path, "a", encoding="utf-8")
        except OSError as err:
            raise OutputError(f"cannot open the summary file {self.path}: {err.strerror or err}") from None

    def add(self, outcome: Outcome) -> None:
        """Append the outcome's row (naming its input as ``rerun_input`` does)."""
        row = outcome.summary_row()
        if outcome.number in self.tasks:
            row["input"] = rerun_input(self.tasks[outcome.number].item)
        # ASCII JSON: a file name that is not valid UTF-8 survives the round trip as an escape
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        """Close the file (every row is already written)."""
        self.file.close()


# ---------------------------------------------------------------------------------- the local executor

ProgressFor = Callable[[Task], Optional[Callable[[int, int], None]]]  # a task -> its per-window callback, or None
WORKER_START_ATTEMPTS = 3  # workers in a row that may die while loading the model before the job gives up


def run_local_job(model: str, device: Union[str, Device, None], tasks: Sequence[Task], job: Job,
                  workers: int = 1, threads: Optional[int] = None,
                  progress: Optional[ProgressFor] = None) -> Iterator[Outcome]:
    """Run ``tasks`` on this machine and yield their Outcomes as they finish.

    ``workers`` 1 runs them one after another in this process (``threads``: its CPU threads, None for
    all cores; ``progress(task)`` gives each task's per-window callback). More workers run them in
    that many processes (see ``WorkerPool``), ``threads`` split between them (1 each by default).
    """
    if workers <= 1:
        yield from run_in_process(model, device, tasks, job, threads, progress)
    else:
        each = max(1, threads // workers) if threads else 1
        model_file = str(resolve(model))  # converted here once, not by every worker; a bad name fails here
        yield from WorkerPool(model_file, device, job, workers, each).run(tasks)


def run_in_process(model: str, device: Union[str, Device, None], tasks: Sequence[Task], job: Job,
                   threads: Optional[int] = None, progress: Optional[ProgressFor] = None) -> Iterator[Outcome]:
    """Load the model here (only when some task needs it) and run the tasks in order."""
    loaded = None
    for task in tasks:
        outcome = skipped_outcome(task, job)
        if outcome is None:
            if loaded is None:
                if threads is not None:
                    set_num_threads(threads)
                loaded = load_model(model, device=device)
            outcome = run_task(loaded, task, job, progress(task) if progress else None)
        yield outcome


PR_SET_PDEATHSIG = 1  # prctl option: the signal a process receives when its parent dies


def die_with_parent(parent: int) -> bool:
    """Have Linux send this process SIGTERM when the process that started it dies (even by SIGKILL), so a
    killed job leaves no worker behind (elsewhere nothing is set). False if the parent is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return True
    return os.getppid() == parent  # else it died before the request was made


def worker_main(connection: Connection, model: str, device: Union[str, Device, None], job: Job,
                threads: int, parent: int) -> None:
    """A worker process: load the model once, then run each task the parent sends until it sends None.

    Messages to the parent: ("ready", None) once loaded, ("outcome", Outcome) per task, ("load-failed",
    one-line message) if the model cannot be loaded.

    SIGTERM (the parent stopping the job, or the parent's death) ends the worker at once, wherever it
    is: no Python handler runs, so none can be swallowed inside a callback from Numba's compiler and
    printed as a traceback. Outputs stay whole: ``run_task`` holds the signal while it puts a task's
    files in place, and nothing else the worker does leaves a file behind.
    """
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if not die_with_parent(parent):
            return
        set_num_threads(threads)
        start_compiler()
        try:
            loaded = load_model(model, device=device)
        except Exception as err:  # noqa: BLE001 - the parent reports it as the job's error
            connection.send(("load-failed", one_line(str(err) or type(err).__name__)))
            return
        connection.send(("ready", None))
        while True:
            task = connection.recv()
            if task is None:
                return
            connection.send(("outcome", run_task(loaded, task, job)))
    except (EOFError, BrokenPipeError):  # the parent is gone
        return


@dataclass
class Worker:
    """The parent's view of one worker process: its pipe, and the task it holds (None: idle or loading)."""

    process: BaseProcess
    connection: Connection
    ready: bool = False
    task: Optional[Task] = None
    given_at: float = 0.0


class WorkerPool:
    """Worker processes that each load the model once and take tasks one at a time.

    Processes are started with "spawn" (a fresh interpreter: forking a process whose Numba and BLAS
    threads run is unsafe). The weights are a memory map of the model file, so the page cache holds
    one copy for all workers. The parent knows which task each worker holds: a worker that dies (a
    crash, SIGKILL, the OOM killer) has its task reported failed and is replaced; outputs are only
    ever renamed into place, so no other input's output is lost or written twice.
    """

    def __init__(self, model: str, device: Union[str, Device, None], job: Job, workers: int, threads: int):
        self.model, self.device, self.job = model, device, job
        self.size, self.threads = workers, threads
        self.context = multiprocessing.get_context("spawn")
        self.workers: List[Worker] = []
        self.load_deaths = 0

    def start_worker(self) -> None:
        """Start one worker process (it reports "ready" once its model is loaded)."""
        ours, theirs = self.context.Pipe()
        arguments = (theirs, self.model, self.device, self.job, self.threads, os.getpid())
        process = self.context.Process(target=worker_main, name="numwhisper-worker", daemon=True, args=arguments)
        start_ignoring_ctrl_c(process)
        theirs.close()
        self.workers.append(Worker(process, ours))

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        """Yield each task's Outcome as it finishes; the workers are stopped however this ends."""
        pending = deque(tasks)
        try:
            for _ in range(min(self.size, len(pending))):
                self.start_worker()
            while self.workers:
                wait([w.connection for w in self.workers] + [w.process.sentinel for w in self.workers])
                for worker in list(self.workers):
                    yield from self.collect(worker)
                    if worker.process.exitcode is not None or worker.connection.closed:
                        yield from self.bury(worker, bool(pending))
                    elif worker.ready and worker.task is None:
                        self.hand_out(worker, pending)
        finally:
            self.stop_all()

    def collect(self, worker: Worker) -> Iterator[Outcome]:
        """Read what the worker sent so far: its readiness, its outcomes (yielded), a load failure (raised)."""
        while not worker.connection.closed and worker.connection.poll():
            try:
                kind, body = worker.connection.recv()
            except (EOFError, OSError):  # the worker is gone; its sentinel says how
                worker.connection.close()
                worker.process.join()
                return
            if kind == "load-failed":
                raise ModelFileError(body)
            if kind == "ready":
                worker.ready, self.load_deaths = True, 0
            elif kind == "outcome":
                worker.task = None
                yield body

    def bury(self, worker: Worker, more_to_do: bool) -> Iterator[Outcome]:
        """A worker that exited: report the task it held as failed (unless its outcome came before it
        exited), and start a replacement if work is left."""
        worker.process.join()
        yield from self.collect(worker)
        worker.connection.close()
        self.workers.remove(worker)
        how = death_cause(worker.process.exitcode)
        if worker.task is not None:
            task = worker.task
            remove_leftovers(task, self.job)
            message = f"{printable(task.item.name)}: worker process died ({how}) while transcribing it"
            yield Outcome(task.number, task.item.name, FAILED, message, None,
                          time.perf_counter() - worker.given_at, None, None)
        elif not worker.ready:
            self.load_deaths += 1
            if self.load_deaths >= WORKER_START_ATTEMPTS:
                raise ValueError(f"{self.load_deaths} worker processes in a row died ({how}) while loading "
                                 f"the model {self.model}")
        if more_to_do:
            self.start_worker()

    def hand_out(self, worker: Worker, pending: deque) -> None:
        """Give an idle worker the next task, or tell it to finish when none is left."""
        if not pending:
            self.retire(worker)
            return
        task = pending.popleft()
        try:
            worker.connection.send(task)
        except (BrokenPipeError, OSError):  # it died just now: the task goes back, its death is seen next
            pending.appendleft(task)
            return
        worker.task, worker.given_at = task, time.perf_counter()

    def retire(self, worker: Worker) -> None:
        """Tell an idle worker there is no more work and wait for it to exit."""
        try:
            worker.connection.send(None)
        except (BrokenPipeError, OSError):
            pass
        worker.process.join(timeout=30)
        worker.connection.close()
        self.workers.remove(worker)

    def stop_all(self) -> None:
        """Stop every worker still running (SIGTERM: each ends where it is, or right after putting a task's
        files in place), wait for them (one that does not stop in time is killed), then remove any
        temporary file a stopped task left."""
        for worker in self.workers:
            if worker.process.exitcode is None:
                worker.process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for worker in self.workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
            if worker.task is not None:
                remove_leftovers(worker.task, self.job)
        self.workers.clear()


def start_ignoring_ctrl_c(process: BaseProcess) -> None:
    """Start a worker process that ignores SIGINT from its first moment (a disposition it inherits), so
    that a Ctrl-C while it is still importing does not end it with a traceback: stopping the workers is
    the parent's. (Holding the signal would not do: starting multiprocessing's resource tracker
    unblocks it.) A Ctrl-C in the parent during these milliseconds is ignored too."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signal dispositions are the main thread's to set
        process.start()
        return
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)


STOP_SECONDS = 10.0  # how long stopped workers get to clean up before they are killed


def death_cause(exitcode: Optional[int]) -> str:
    """How a process ended, in a few words: "signal 9" or "exit status 1"."""
    if exitcode is not None and exitcode < 0:
        return f"signal {-exitcode}"
    return f"exit status {exitcode}"
