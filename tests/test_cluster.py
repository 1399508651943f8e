"""Batch jobs on a real Dask cluster (numwhisper.cluster), started as users start one: ``dask scheduler``
and ``dask worker --nworkers 2 --nthreads 1`` processes on this machine (tests/cluster_support.py).

What a job on the cluster must equal is what one process writes: the command line run once, in one
process, on the same inputs (``reference``). The scheduler here allows a task one worker death
(``allowed-failures`` 1; the default is 3) so that a task which keeps killing its workers ends quickly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import pytest
import yaml

from cluster_support import local_cluster
from server_support import free_port

from numwhisper import cluster as dask_executor
from numwhisper.batch import DONE, FAILED, SKIPPED, Job, plan_tasks
from numwhisper.decoding import DecodingOptions
from numwhisper.inputs import expand_inputs
from numwhisper.writers import resolve_formats, to_json

REPO = Path(__file__).resolve().parent.parent
MODEL = "tiny.en"
OPTIONS = DecodingOptions(beam_size=None)  # greedy: the fast configuration
CLIPS = [f"golden/audio/{name}.wav" for name in (  # relative: the driver's folder is not the workers'
    "en_jfk", "en_ls_1272-128104-0000", "fr_picovoice_test_fr", "pt_picovoice_test_pt", "ko_picovoice_test_ko",
    "zh_sr_chinese")]  # en_jfk, the slowest, is the one whose workers the tests kill
MISSING = "golden/audio/no_such_clip.wav"
ALLOWED_FAILURES = 1


@pytest.fixture(scope="module")
def corrupt_wav(tmp_path_factory) -> str:
    """A .wav file whose header promises audio that is not there."""
    path = tmp_path_factory.mktemp("bad") / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 40)
    return str(path)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, corrupt_wav):
    """The command line in one process on the clips and two bad inputs, started (not awaited): the
    cluster starts meanwhile."""
    folder, logs = tmp_path_factory.mktemp("reference"), tmp_path_factory.mktemp("reference_logs")
    with open(logs / "stdout", "w") as stdout, open(logs / "stderr", "w") as stderr:
        process = subprocess.Popen(cli_command(*CLIPS, corrupt_wav, MISSING, "--output_dir", str(folder),
                                               "--output_format", "all"), cwd=REPO, stdout=stdout, stderr=stderr)
    yield process, folder, logs
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, reference_run):
    environment = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES)}
    with local_cluster(tmp_path_factory.mktemp("cluster"), nworkers=2, environment=environment) as started:
        yield started


@pytest.fixture(scope="module")
def reference(reference_run):
    """What the single process did: its output folder, printed results and error lines."""
    process, folder, logs = reference_run
    process.wait(timeout=300)
    stdout, stderr = (logs / "stdout").read_text(), (logs / "stderr").read_text()
    assert process.returncode == 2, stderr  # two inputs failed
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, stderr
    return {"folder": folder, "printed": printed_results(stdout), "errors": errors}


def cli_command(*args: str) -> list:
    """``python -m numwhisper ARGS`` with greedy tiny.en, one thread and no progress bars."""
    return [sys.executable, "-m", "numwhisper", *args, "--model", MODEL, "--beam_size", "None", "--threads", "1",
            "--verbose", "False"]


def run_cli(*args: str, timeout: float = 300, environment: dict = None) -> subprocess.CompletedProcess:
    """The command line run from the repository to its end (``environment`` added to this one's)."""
    return subprocess.run(cli_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(environment or {})})


def printed_results(stdout: str) -> dict:
    """{input_path: result} of the results a command printed (JSON objects one after another)."""
    decoder, found, position = json.JSONDecoder(), {}, 0
    while position < len(stdout):
        if stdout[position].isspace():
            position += 1
            continue
        value, position = decoder.raw_decode(stdout, position)
        found[value["res"]["input_path"]] = value
    return found


def folder_files(folder: Path) -> dict:
    """{file name: bytes} of every file in ``folder``, hidden ones included."""
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def clip_files(clip: str) -> list:
    """The sorted names of the files a job of every output format writes for ``clip``."""
    return sorted(f"{Path(clip).stem}.{name}" for name in resolve_formats("all"))


def run_job(address: str, inputs, output_dir: Path, **job_fields) -> dict:
    """Run a job of ``inputs`` on the cluster, every output format -> {task number: Outcome}; each task
    must report exactly once."""
    tasks = plan_tasks(expand_inputs(inputs))
    job = Job(options=OPTIONS, output_dir=str(output_dir), output_format="all", **job_fields)
    outcomes = list(dask_executor.run_dask_job(address, MODEL, "cpu", tasks, job, threads=1))
    assert sorted(outcome.number for outcome in outcomes) == [task.number for task in tasks]
    return {outcome.number: outcome for outcome in outcomes}


def assert_same_as_one_process(outcomes: dict, output_dir: Path, reference: dict, clips=CLIPS) -> None:
    """Every clip done, its result the one printed by the single process, and the output folder holding
    exactly the files that process wrote for these clips, byte for byte (no temporaries)."""
    names = {name for clip in clips for name in clip_files(clip)}
    expected_files = {name: data for name, data in folder_files(reference["folder"]).items() if name in names}
    assert len(expected_files) == len(names)
    for number, clip in enumerate(clips, start=1):
        outcome = outcomes[number]
        assert (outcome.status, outcome.error, outcome.input) == (DONE, None, clip)
        assert {"res": outcome.result} == reference["printed"][clip]
        assert to_json(outcome.result).encode() == expected_files[f"{Path(clip).stem}.json"]
    assert folder_files(output_dir) == expected_files


def test_a_job_on_the_cluster_writes_what_one_process_writes(cluster, reference, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the clips are named relative to the driver's folder
    outcomes = run_job(cluster.address, CLIPS, tmp_path / "out")
    assert_same_as_one_process(outcomes, tmp_path / "out", reference)


def test_bad_inputs_fail_alone_with_the_one_line_errors_of_one_process(cluster, reference, corrupt_wav, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(REPO)
    outcomes = run_job(cluster.address, [corrupt_wav, CLIPS[3], MISSING], tmp_path / "out")
    assert [outcomes[n].status for n in (1, 2, 3)] == [FAILED, DONE, FAILED]
    assert [f"error: {outcomes[n].error}" for n in (1, 3)] == reference["errors"]
    assert corrupt_wav in outcomes[1].error and MISSING in outcomes[3].error
    assert {"res": outcomes[2].result} == reference["printed"][CLIPS[3]]
    assert sorted(os.listdir(tmp_path / "out")) == clip_files(CLIPS[3])


def test_skipped_tasks_are_decided_on_the_driver_and_never_sent(reference, tmp_path, monkeypatch):
    """Every output exists: nothing is sent, so not even an unreachable scheduler is contacted."""
    monkeypatch.chdir(REPO)
    tasks = plan_tasks(expand_inputs(CLIPS[:2]))
    job = Job(options=OPTIONS, output_dir=str(reference["folder"]), output_format="all", skip_existing=True)
    started = time.monotonic()
    outcomes = list(dask_executor.run_dask_job(f"tcp://127.0.0.1:{free_port()}", MODEL, "cpu", tasks, job))
    assert [(o.number, o.status, o.result) for o in outcomes] == [(1, SKIPPED, None), (2, SKIPPED, None)]
    assert time.monotonic() - started < 1.0


def test_the_connect_timeout_is_dasks_own_setting_but_at_most_ten_seconds():
    assert dask_executor.connect_timeout() == dask_executor.CONNECT_TIMEOUT == 10.0  # Dask's default is 30 s
    with dask.config.set({"distributed.comm.timeouts.connect": "1500ms"}):
        assert dask_executor.connect_timeout() == 1.5


def test_an_unreachable_scheduler_is_one_error_naming_its_address_within_the_timeout():
    address = f"tcp://127.0.0.1:{free_port()}"
    tasks = plan_tasks(expand_inputs(CLIPS[:1]))
    started = time.monotonic()
    with dask.config.set({"distributed.comm.timeouts.connect": "1500ms"}), pytest.raises(ValueError) as raised:
        list(dask_executor.run_dask_job(address, MODEL, "cpu", tasks, Job(options=OPTIONS)))
    assert 1.5 <= time.monotonic() - started < 1.5 + 3
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"cannot reach the Dask scheduler at {address}")


def test_a_server_that_never_answers_is_one_error_within_the_timeout():
    """A port where something listens but says nothing (another service, a dashboard port): Dask's
    own client would wait for its handshake forever."""
    tasks = plan_tasks(expand_inputs(CLIPS[:1]))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with dask.config.set({"distributed.comm.timeouts.connect": "1500ms"}), pytest.raises(ValueError) as raised:
            list(dask_executor.run_dask_job(address, MODEL, "cpu", tasks, Job(options=OPTIONS)))
    assert time.monotonic() - started < 1.5 + 3
    assert str(raised.value) == f"cannot reach the Dask scheduler at {address}: no answer within 1.5 s"


@pytest.mark.parametrize("address", ["localhost", "http://127.0.0.1:8786"])
def test_a_malformed_address_is_refused_before_connecting(address):
    tasks = plan_tasks(expand_inputs(CLIPS[:1]))
    with pytest.raises(ValueError, match="is no Dask scheduler address"):
        list(dask_executor.run_dask_job(address, MODEL, "cpu", tasks, Job(options=OPTIONS)))


def test_a_model_the_workers_cannot_load_is_one_error_and_is_not_kept(cluster, tmp_path):
    missing_model = str(tmp_path / "no_such_model.safetensors")
    tasks = plan_tasks(expand_inputs(CLIPS[:1]))
    with pytest.raises(ValueError) as raised:
        list(dask_executor.run_dask_job(cluster.address, missing_model, "cpu", tasks, Job(options=OPTIONS)))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"the workers of {cluster.address} cannot load model {missing_model!r}: ")
    with cluster.client() as client:  # withdrawn, so that a later job tries to load it again
        registered = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    assert dask_executor.plugin_name(missing_model, "cpu") not in registered


def test_a_task_that_raises_on_its_worker_fails_that_input_alone(cluster, tmp_path, monkeypatch):
    """The task function raises (here: no model under the name it was given); the exception comes back
    to the driver and becomes that input's one-line error."""
    monkeypatch.chdir(REPO)
    tasks = plan_tasks(expand_inputs(CLIPS[-2:]))
    job = Job(options=OPTIONS, output_dir=str(tmp_path), output_format="all")
    client = dask_executor.connect(cluster.address)
    try:
        futures = dask_executor.submit_all(client, "numwhisper-model:never-registered", 1, tasks, job)
        outcomes = sorted(dask_executor.gather_outcomes(client, futures), key=lambda outcome: outcome.number)
    finally:
        client.close()
    assert [(o.number, o.status, o.result) for o in outcomes] == [(1, FAILED, None), (2, FAILED, None)]
    for outcome, clip in zip(outcomes, CLIPS[-2:]):
        assert outcome.error.startswith(f"{clip}: unexpected RuntimeError: worker tcp://127.0.0.1:")
        assert outcome.error.endswith(" has no model: the model was never loaded there")
    assert list(tmp_path.iterdir()) == []


FAULTS_OF_ALLOCATIONS = """
import resource
import numpy as np

def faults_of_allocations(times=50):
    \"\"\"Minor page faults of making and dropping a 1 MiB array (every page written) ``times`` times.\"\"\"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        np.ones(2**18, np.float32)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""
PAGES_PER_MIB = 256


def test_reuse_freed_blocks_undoes_the_nannys_malloc_setting_in_a_worker_process():
    """Under the nanny's MALLOC_TRIM_THRESHOLD_ each 1 MiB array is a new mapping (its 256 pages fault
    every time); after reuse_freed_blocks the freed block is reused."""
    code = FAULTS_OF_ALLOCATIONS + (
        "from numwhisper.cluster import reuse_freed_blocks\n"
        "print(faults_of_allocations(), reuse_freed_blocks(), faults_of_allocations())\n")
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, changed, after = done.stdout.split()
    assert changed == "True"
    assert int(before) >= 50 * PAGES_PER_MIB * 0.9 and int(after) < 5 * PAGES_PER_MIB, done.stdout
    unset = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    done = subprocess.run([sys.executable, "-c", code], env=unset, capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[1] == "False", done.stderr  # a plain process is left as glibc runs it


def test_workers_holding_the_model_reuse_freed_blocks(cluster):
    """The workers were started by the nanny (MALLOC_TRIM_THRESHOLD_ set); once the job's plugin has
    loaded the model there, dropping and making a 1 MiB array no longer faults its pages anew."""
    def measure():
        namespace = {}
        exec(FAULTS_OF_ALLOCATIONS, namespace)
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), namespace["faults_of_allocations"]()

    client = dask_executor.connect(cluster.address)
    try:
        dask_executor.load_on_workers(client, cluster.address, MODEL, "cpu", 1)
        measured = client.run(measure)
    finally:
        client.close()
    assert len(measured) == 2
    for address, (variable, faults) in measured.items():
        assert variable is not None and faults < 5 * PAGES_PER_MIB, (address, variable, faults)


def flattened(tree: dict, prefix: str = "") -> dict:
    """{"a.b.c": value} for a nested mapping {"a": {"b": {"c": value}}}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flattened(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def test_every_process_of_the_cluster_runs_with_numwhispers_dask_settings(cluster):
    """The scheduler, the nannies and the workers read numwhisper/dask.yaml: each of its settings is
    in force there (a misspelt key would leave Dask's default, which differs from every value)."""
    settings = flattened(yaml.safe_load(dask_executor.SETTINGS_FILE.read_text()))
    assert len(settings) == 4

    def in_force() -> dict:
        return {key: dask.config.get(key) for key in settings}

    defaults = {key: dask.config.get(key) for key in settings}  # this process has no DASK_CONFIG
    assert all(defaults[key] != value for key, value in settings.items()), defaults
    with cluster.client() as client:
        seen = [client.run_on_scheduler(in_force), *client.run(in_force).values(),
                *client.run(in_force, nanny=True).values()]
    assert len(seen) == 5  # the scheduler, two workers and their two nannies
    assert all(found == settings for found in seen), seen


def test_the_command_line_runs_a_job_on_the_cluster(cluster, reference, tmp_path):
    clips = CLIPS[1:3]
    done = run_cli(*clips, "--executor", "dask", "--address", cluster.address, "--output_dir", str(tmp_path),
                   "--output_format", "all")
    assert done.returncode == 0, done.stderr
    assert printed_results(done.stdout) == {clip: reference["printed"][clip] for clip in clips}
    names = {name for clip in clips for name in clip_files(clip)}
    assert folder_files(tmp_path) == {name: data for name, data in folder_files(reference["folder"]).items()
                                      if name in names}


def test_the_command_line_reports_an_unreachable_scheduler_in_one_line(tmp_path):
    """Dask's own environment variable shortens the wait (the default, 10 s, is checked above)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = run_cli(CLIPS[0], "--executor", "dask", "--address", address, "--output_dir", str(tmp_path), timeout=60,
                   environment={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert (done.returncode, done.stdout) == (2, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and address in lines[0], done.stderr
    assert "within 2 s" in lines[0] or "after 2 s" in lines[0], lines[0]
    assert time.monotonic() - started < 2 + 10  # the timeout, plus starting Python
    assert list(tmp_path.iterdir()) == []


def test_importing_numwhisper_and_its_command_line_leaves_dask_unimported():
    code = ("import sys, numwhisper, numwhisper.cli, numwhisper.batch, numwhisper.pipeline; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_without_distributed_installed_the_dask_executor_says_how_to_install_it():
    code = ("import sys; sys.modules['distributed'] = None\n"  # what an environment without the extra sees
            "from numwhisper.cluster import run_dask_job\n"
            "try:\n    next(run_dask_job('tcp://127.0.0.1:8786', 'tiny.en', None, [], None))\n"
            "except ValueError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (
        0, "--executor dask needs the distributed package: pip install 'numwhisper[dask]'"), done.stderr


# ------------------------------------------------------------------------------ workers that die

def key_of(task_number: int, stem: str) -> str:
    """The start of the cluster key of a task (``cluster.submit_all``; a run id follows)."""
    return f"numwhisper-{task_number}-{stem}-"


class WorkerKiller:
    """Watches the cluster while a job runs and SIGKILLs the worker process (not its nanny) that is
    executing a chosen task, up to ``times`` times."""

    def __init__(self, cluster, key_prefix: str, times: int):
        self.cluster, self.key_prefix, self.times = cluster, key_prefix, times
        self.killed = []  # (pid, key running there)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        def running(dask_worker) -> tuple:  # runs on each worker (a nested function travels by value)
            return os.getpid(), [str(task.key) for task in dask_worker.state.executing]

        with self.cluster.client() as client:
            while not self.stop.is_set() and len(self.killed) < self.times:
                for address, (pid, keys) in client.run(running, on_error="ignore").items():
                    chosen = [key for key in keys if key.startswith(self.key_prefix)]
                    if chosen:
                        os.kill(pid, signal.SIGKILL)
                        self.killed.append((pid, chosen[0]))
                        self.wait_until_gone(client, address)
                        break
                time.sleep(0.02)

    @staticmethod
    def wait_until_gone(client, address: str) -> None:
        """Wait until the scheduler has noticed the death (else the dead worker could be chosen again)."""
        deadline = time.monotonic() + 30
        while address in client.scheduler_info(n_workers=-1)["workers"] and time.monotonic() < deadline:
            time.sleep(0.02)

    def __enter__(self) -> "WorkerKiller":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def test_a_worker_killed_mid_job_loses_nothing_and_writes_nothing_twice(cluster, reference, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    # What a worker killed while writing leaves behind (atomic.staged's name): removed once the job ends.
    (output_dir / ".en_jfk.json.k1ll3d_0.partial").write_text("{")
    pids_before = set(cluster.worker_pids().values())
    with WorkerKiller(cluster, key_of(1, "en_jfk"), times=1) as killer:
        outcomes = run_job(cluster.address, CLIPS[:4], output_dir)
    assert len(killer.killed) == 1, "the worker running the first clip was never caught"
    assert_same_as_one_process(outcomes, output_dir, reference, CLIPS[:4])
    cluster.wait_for_workers(2)  # the nanny started a new worker process in place of the killed one
    pids_after = set(cluster.worker_pids().values())
    assert killer.killed[0][0] in pids_before and killer.killed[0][0] not in pids_after and len(pids_after) == 2


def test_a_task_that_keeps_killing_its_workers_fails_alone(cluster, reference, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    output_dir = tmp_path / "out"
    with WorkerKiller(cluster, key_of(1, "en_jfk"), times=ALLOWED_FAILURES + 1) as killer:
        outcomes = run_job(cluster.address, [CLIPS[0], CLIPS[3]], output_dir)
    assert len(killer.killed) == ALLOWED_FAILURES + 1
    assert outcomes[1].status == FAILED and outcomes[1].result is None
    assert outcomes[1].error == (f"{CLIPS[0]}: {ALLOWED_FAILURES + 1} Dask workers died while transcribing it "
                                 "(it may crash the process or exhaust its memory); see the workers' logs")
    assert outcomes[2].status == DONE and {"res": outcomes[2].result} == reference["printed"][CLIPS[3]]
    assert sorted(os.listdir(output_dir)) == clip_files(CLIPS[3])
    cluster.wait_for_workers(2)
