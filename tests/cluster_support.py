"""A real local Dask cluster for the tests, started the way a user starts one: ``dask scheduler`` and
``dask worker`` as separate processes (the venv's ``dask`` script), found through a scheduler file,
with numwhisper's Dask settings (``DASK_CONFIG`` naming ``numwhisper/dask.yaml``, as the README says).

Both listen on the loopback address only. ``LocalCluster.stop`` ends every process it started (the
scheduler, the worker command, its nannies and their worker processes) and says which, if any,
outlived it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List

import psutil
from distributed import Client

from numwhisper.cluster import SETTINGS_FILE

DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT = 60.0  # seconds for the scheduler file to appear and the workers to join


class LocalCluster:
    """A scheduler and one ``dask worker --nworkers N --nthreads 1`` command, as subprocesses."""

    def __init__(self, folder: Path, nworkers: int = 2, environment: Dict[str, str] = None):
        self.folder, self.nworkers = folder, nworkers
        self.scheduler_file = folder / "scheduler.json"
        self.environment = {**os.environ, "DASK_CONFIG": str(SETTINGS_FILE), **(environment or {})}
        self.processes: List[subprocess.Popen] = []
        self.address = ""

    def start(self) -> "LocalCluster":
        """Start the scheduler, then the workers; return once all workers have joined."""
        self.spawn("scheduler", [DASK, "scheduler", "--scheduler-file", self.scheduler_file, "--no-dashboard",
                                 "--port", "0", "--host", "127.0.0.1"])
        self.address = self.wait_for_address()
        self.spawn("workers", [DASK, "worker", "--scheduler-file", self.scheduler_file, "--nworkers",
                               str(self.nworkers), "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"])
        self.wait_for_workers(self.nworkers)
        return self

    def spawn(self, name: str, command: list) -> None:
        """Start one command in the cluster's folder (not the repository: workers must not depend on
        the driver's working directory), its output in ``{name}.log``."""
        log = open(self.folder / f"{name}.log", "wb")
        self.processes.append(subprocess.Popen([str(part) for part in command], cwd=self.folder, env=self.environment,
                                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        log.close()

    def wait_for_address(self) -> str:
        """The scheduler's address, from the scheduler file once it is written."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_running()
            try:
                return json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise TimeoutError(f"no scheduler file after {START_TIMEOUT:g} s; see {self.folder}/scheduler.log")

    def check_running(self) -> None:
        """Fail at once, with its log, when a command of the cluster has exited."""
        for process, name in zip(self.processes, ("scheduler", "workers")):
            if process.poll() is not None:
                log = (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"dask {name} exited with {process.returncode}:\n{log}")

    def client(self) -> Client:
        """A client of this cluster (for the tests' own looks at it; close it after use)."""
        return Client(self.address, timeout=START_TIMEOUT, set_as_default=False)

    def wait_for_workers(self, count: int) -> None:
        """Return once exactly ``count`` workers are connected."""
        deadline = time.monotonic() + START_TIMEOUT
        with self.client() as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) != count:
                self.check_running()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{count} workers did not join within {START_TIMEOUT:g} s")
                time.sleep(0.1)

    def worker_pids(self) -> Dict[str, int]:
        """{worker address: pid of its worker process} (the nannies' children, not the nannies)."""
        with self.client() as client:
            return client.run(os.getpid)

    def all_pids(self) -> List[int]:
        """Every process of the cluster now alive: the two commands and all their descendants."""
        pids = []
        for process in self.processes:
            try:
                parent = psutil.Process(process.pid)
                pids += [process.pid] + [child.pid for child in parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return pids

    def stop(self) -> List[int]:
        """End the workers, then the scheduler (SIGTERM; SIGKILL after 20 s) -> the pids of the processes
        still alive 10 s after their commands ended (killed then). Workers whose scheduler is gone
        first linger for seconds before their nannies kill them."""
        pids = self.all_pids()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        survivors = []
        for pid in pids:
            try:
                survivors.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(survivors, timeout=10)
        for leftover in alive:
            leftover.kill()
        return [process.pid for process in alive]


@contextmanager
def local_cluster(folder: Path, nworkers: int = 2, environment: Dict[str, str] = None) -> Iterator[LocalCluster]:
    """A started LocalCluster; stopped on exit, failing if any of its processes outlived the stop."""
    cluster = LocalCluster(folder, nworkers, environment)
    try:
        yield cluster.start()
    finally:
        leftovers = cluster.stop()
    assert leftovers == [], f"cluster processes still running after the stop: {leftovers}"
