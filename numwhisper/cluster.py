"""Batch jobs on a Dask distributed cluster: ``run_dask_job`` sends each task of a job to the
cluster's workers and yields its Outcome as it finishes.

Each worker process loads the model once (a worker plugin, ``ModelOnWorker``, which the scheduler
also hands to workers that join or restart later) and keeps it for every task and every later job
that asks for the same model and device. A task reads its input and writes its outputs itself, so
inputs, the model and ``job.output_dir`` must be at the same path on every machine (a shared folder);
only the Outcome travels back to the driver.

Failures: a worker that dies takes its running task with it, and the scheduler runs the task again
elsewhere; a task that has killed ``distributed.scheduler.allowed-failures`` + 1 workers (default 4)
ends as ``KilledWorker``, which becomes that input's one-line error. Any other exception of a task
fails that input alone. A scheduler that cannot be reached is a ValueError naming its address.

Settings: ``SETTINGS_FILE`` (``numwhisper/dask.yaml``) is the Dask configuration a transcription
cluster should run with (``export DASK_CONFIG=...`` before starting the scheduler, the workers and the
driver): Dask's monitors, tuned for tasks of milliseconds, made to wake once a second.

``distributed`` is imported when this module is, and only the dask executor imports this module.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .batch import FAILED, Job, Outcome, Task, failure_message, remove_leftovers, run_task, split_skipped
from .errors import one_line, printable
from .inputs import kind_of
from .threads import set_num_threads
from .transcription import WhisperModel, load_model

try:
    import distributed
except ImportError:  # the optional extra is missing; run_dask_job says how to install it
    distributed = None

INSTALL_DASK = "pip install 'numwhisper[dask]'"
SETTINGS_FILE = Path(__file__).with_name("dask.yaml")  # Dask's configuration for a transcription cluster
CONNECT_TIMEOUT = 10.0  # most seconds to reach the scheduler, and to wait for a first worker
PluginBase = distributed.WorkerPlugin if distributed is not None else object
# glibc's mallopt(3) parameters, and the largest mmap threshold its own sliding rule reaches on 64-bit
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_CEILING = 32 * 2**20


class ModelOnWorker(PluginBase):
    """Loads one model into a worker process when the worker starts (or when the plugin is
    registered) and keeps it there for the tasks of every job that uses it.

    ``idempotent``: registering a plugin of the same name again (a later job with the same model and
    device) leaves the loaded model in place instead of loading it anew.
    """

    idempotent = True

    def __init__(self, model: str, device: Optional[str], threads: int):
        self.model_name, self.device, self.threads = model, device, threads
        self.model: Optional[WhisperModel] = None
        self.error: Optional[str] = None  # why the model could not be loaded here

    async def setup(self, worker) -> None:
        """Load the model in a thread, so the worker keeps answering the scheduler meanwhile."""
        try:
            self.model = await asyncio.get_running_loop().run_in_executor(None, self.load)
        except Exception as err:
            self.error = one_line(err if isinstance(err, ValueError) else f"{type(err).__name__}: {err}")
            raise

    def load(self) -> WhisperModel:
        """The model, loaded after the thread settings (the BLAS pool is set for the whole process) and
        malloc's (``reuse_freed_blocks``)."""
        reuse_freed_blocks()
        set_num_threads(self.threads)
        return load_model(self.model_name, device=self.device)

    def teardown(self, worker) -> None:
        self.model = None


def reuse_freed_blocks() -> bool:
    """Let malloc keep freed blocks of up to 32 MiB for reuse in this worker process, as glibc does
    by default; True when that changed a setting.

    Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_`` (64 KiB by default), so that freed
    memory returns to the system at once. Setting it also freezes glibc's mmap threshold at 128 KiB, and
    then every array above that size which a decoding step makes and drops (logits, attention scores)
    is a new mapping the kernel must fill with zeros page by page: several times the page faults of the
    same transcription in a plain process. The thresholds set here are where glibc's own sliding rule
    ends up (map from 32 MiB, trim above twice that). Nothing changes without the variable, or
    without glibc.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_CEILING) and mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_CEILING))


def plugin_name(model: str, device: Optional[str]) -> str:
    """The plugin's name on the cluster: one loaded model per (model, device) and worker process."""
    return f"numwhisper-model:{model}:{device or 'default'}"


def transcribe_on_worker(name: str, threads: int, task: Task, job: Job) -> Outcome:
    """The function a worker runs for one task: the worker's loaded model does ``batch.run_task``.

    Numba's thread count belongs to the calling thread, and tasks run in the worker's own threads,
    so it is set here for each task (the plugin set it only for the thread that loaded the model).
    """
    worker = distributed.get_worker()
    plugin = worker.plugins.get(name)
    if plugin is None or plugin.model is None:
        cause = plugin.error if plugin is not None and plugin.error else "the model was never loaded there"
        raise RuntimeError(f"worker {worker.address} has no model: {cause}")
    set_num_threads(threads)
    return run_task(plugin.model, task, job)


def run_dask_job(address: str, model: str, device: Optional[str], tasks: Sequence[Task], job: Job,
                 threads: int = 1) -> Iterator[Outcome]:
    """Run every task of ``job`` on the Dask cluster whose scheduler is at ``address``; yield each
    task's Outcome as it finishes (skipped tasks first: those are decided here, not sent).

    ``model`` is a name or a path every worker can read; ``device`` is each worker's device (None: each
    worker's own default); ``threads`` is the CPU threads each task uses. ValueError (one line) when
    distributed is not installed, the scheduler cannot be reached in time (``connect_timeout``), no
    worker joins it, or the workers cannot load the model.
    """
    if distributed is None:
        raise ValueError(f"--executor dask needs the distributed package: {INSTALL_DASK}")
    skipped, to_send = split_skipped(tasks, job)
    yield from skipped
    if not to_send:
        return
    model = shared_path(model) if Path(model).exists() else model
    device = getattr(device, "name", device)  # a resolved Device travels as its spelling
    client = connect(address)
    try:
        name = load_on_workers(client, address, model, device, threads)
        yield from gather_outcomes(client, submit_all(client, name, threads, to_send, job))
    finally:
        client.close()
        remove_stale_temporaries(to_send, job)


def connect_timeout() -> float:
    """Seconds to wait for the scheduler, and then for a first worker: Dask's own setting
    ``distributed.comm.timeouts.connect`` (default 30 s), but at most CONNECT_TIMEOUT: a wrong address
    should not keep a command waiting long."""
    import dask

    configured = dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
    return min(CONNECT_TIMEOUT, float(configured))


def connect(address: str):
    """A client of the scheduler at ``address``; ValueError (one line, with the address) when it
    cannot be reached within ``connect_timeout()`` seconds or has no worker by then.

    The address is checked first: a client given a malformed one fails half-started (its clean-up
    at interpreter exit then hangs for seconds and prints a traceback), and one given the address of
    another kind of server (the dashboard's port, say) waits for an answer forever."""
    try:
        distributed.comm.get_address_host_port(address)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{address!r} is no Dask scheduler address (like tcp://HOST:8786): {one_line(err)}") from None
    timeout = connect_timeout()
    try:
        identity = ask_identity(address, timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        cause = one_line(err) or f"no answer within {timeout:g} s"
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {cause}") from None
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        raise ValueError(f"the server at {address} is not a Dask scheduler")
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {one_line(err)}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as err:
        client.close()
        raise ValueError(f"the Dask scheduler at {address} has no workers "
                         f"(none joined within {timeout:g} s): {one_line(err)}") from None
    return client


def ask_identity(address: str, timeout: float):
    """What the server at ``address`` says it is (a scheduler answers {"type": "Scheduler", ...});
    TimeoutError when it does not answer within ``timeout`` seconds, OSError when it cannot be reached.
    Runs on an event loop of its own, in a thread, so that a caller's running loop is not disturbed."""

    async def ask():
        comm = await distributed.comm.connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def within_timeout():
        return await asyncio.wait_for(ask(), timeout)

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, within_timeout()).result()


def load_on_workers(client, address: str, model: str, device: Optional[str], threads: int) -> str:
    """Register the model plugin (every worker loads the model now; later ones when they join) -> its name.

    A load that fails on a worker is a ValueError, and the plugin is withdrawn again so that the next
    job tries anew instead of finding a plugin without a model."""
    name = plugin_name(model, device)
    try:
        client.register_plugin(ModelOnWorker(model, device, threads), name=name)
    except Exception as err:  # noqa: BLE001 - whatever the workers raised while loading the model
        try:
            client.unregister_worker_plugin(name)
        except Exception:  # noqa: BLE001 - best effort: the plugin may not have been stored
            pass
        raise ValueError(f"the workers of {address} cannot load model {model!r}: {one_line(err)}") from None
    return name


def submit_all(client, name: str, threads: int, tasks: Sequence[Task], job: Job) -> dict:
    """Send every task to the cluster -> {future: task}. Keys name the task and this run, so that two
    jobs on one cluster (or the same job twice) never share a result."""
    run = uuid.uuid4().hex[:8]
    futures = {}
    for task in tasks:
        key = f"numwhisper-{task.number}-{task.stem}-{run}"
        future = client.submit(transcribe_on_worker, name, threads, for_workers(task), job, key=key, pure=False)
        futures[future] = task
    return futures


def gather_outcomes(client, futures: dict) -> Iterator[Outcome]:
    """Yield each task's Outcome as its future finishes; a task that raised becomes a FAILED Outcome
    (its wall_seconds: from submission to the report of its failure). Unfinished tasks are cancelled
    when the caller stops early."""
    started = time.perf_counter()
    pending = set(futures)
    try:
        for future in distributed.as_completed(list(futures), loop=client.loop):
            pending.discard(future)
            task = futures[future]
            if future.status == "finished":
                outcome = future.result()
            else:
                outcome = Outcome(task.number, task.item.name, FAILED, task_failure(task, future),
                                  None, time.perf_counter() - started, None, None)
            future.release()
            yield outcome
    finally:
        if pending:
            client.cancel(list(pending))


def task_failure(task: Task, future) -> str:
    """The one-line error of a task whose future did not finish (it raised, killed workers, or was cancelled)."""
    if future.status == "cancelled":
        return f"{printable(task.item.name)}: cancelled by the Dask cluster"
    err = future.exception()
    if isinstance(err, distributed.KilledWorker):
        return killed_worker_message(task, err)
    return failure_message(task.item, err)


def killed_worker_message(task: Task, err: BaseException) -> str:
    """One line for a task that every worker trying it died on (a crash or running out of memory)."""
    tries = getattr(err, "allowed_failures", None)
    times = f"{tries + 1} " if isinstance(tries, int) else ""
    return (f"{printable(task.item.name)}: {times}Dask workers died while transcribing it "
            "(it may crash the process or exhaust its memory); see the workers' logs")


def shared_path(path) -> str:
    """A path as every machine must see it: absolute (a relative one is read from the driver's folder)."""
    return os.path.abspath(os.fspath(path))


def for_workers(task: Task) -> Task:
    """The task with a relative input path made absolute (workers run in other folders); the item's
    name and input_path stay as given, so results and outputs equal those of a run in one process."""
    source = task.item.source
    if isinstance(source, (str, Path)) and kind_of(source) == "path" and not os.path.isabs(source):
        return replace(task, item=replace(task.item, source=shared_path(source)))
    return task


def remove_stale_temporaries(tasks: Sequence[Task], job: Job) -> None:
    """Delete the temporaries of the job's output files that a worker killed while writing left behind;
    the task ran again elsewhere. Nothing happens where the driver does not see the output folder."""
    for task in tasks:
        remove_leftovers(task, job)
