"""Throughput of a 20-file batch job: one process, two local worker processes, and a Dask cluster of two
workers, side by side.

    .venv/bin/python bench/batch_throughput.py [--work /tmp/numwhisper-batch] [--rounds 2]

Inputs: 20 files of 16 kHz mono FLAC, each 45 s of the shared corpus' English speech (the clips in
file-name order, 0.5 s of silence after each, the k-th file starting at the k-th clip), written once
into the work folder. Each job is one whole ``python -m numwhisper LIST --model tiny.en --beam_size
None --language en --verbose False --output_dir OUT -f json --summary S`` process:

- ``1 process``: the job in the command's own process, with all cores (``--threads`` unset);
- ``2 workers``: ``--workers 2`` (two spawned processes of one thread each, each loading the model);
- ``dask 2``: ``--executor dask --address ...`` to a cluster started for that round the way users
  start one (``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1``, with ``DASK_CONFIG``
  naming numwhisper's Dask settings, ``numwhisper/dask.yaml``, for them and for the job's command);
  the workers load the model when the job registers it, so the job pays for its loading as the local
  workers do. The cluster's own start is not counted.
- ``dask 2, Dask's defaults``: the same without ``DASK_CONFIG``.

The configurations alternate round by round (1 process, 2 workers, dask 2, ..., then again), so a
drift in the shared machine's speed reaches all of them. Reported: each job's wall time (median over
the rounds), audio hours per wall hour, and each against ``2 workers``; the engine's overhead is
dask 2 / 2 workers - 1, by median walls and by the median of the rounds' ratios.
Every job's JSON outputs are compared with the first round of ``2 workers`` (one thread per process on
both, so the floats are the same). Writes ``bench/results/batch_throughput.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_audio import CORPUS, PYTHON, REPO, english_clips, say, write_speech  # noqa: E402

from numwhisper.cluster import SETTINGS_FILE  # noqa: E402

DEFAULT_WORK = Path("/tmp/numwhisper-batch")
DEFAULT_OUT = REPO / "bench" / "results" / "batch_throughput.md"
N_FILES, FILE_SECONDS = 20, 45
COMMAND = ["-m", "numwhisper", "--model", "tiny.en", "--beam_size", "None", "--language", "en", "--verbose", "False",
           "-f", "json"]
CONFIGS = {"1 process": [], "2 workers": ["--workers", "2"], "dask 2": ["--executor", "dask"],
           "dask 2, Dask's defaults": ["--executor", "dask"]}
BASELINE = "2 workers"
WITH_SETTINGS = {"dask 2"}  # the configurations whose cluster and command read numwhisper's Dask settings


def job_files(work: Path) -> Path:
    """The 20 input files and a list file naming them -> the list file's path."""
    clips = english_clips(CORPUS)
    listing = work / "job.txt"
    names = []
    for k in range(N_FILES):
        path = work / f"part_{k:02d}.flac"
        if not path.is_file():
            write_speech(path, clips[k:] + clips[:k], FILE_SECONDS)
        names.append(path.name)
    listing.write_text("".join(name + "\n" for name in names))
    return listing


def environment(config: str) -> dict:
    """The environment of a configuration's processes: DASK_CONFIG names numwhisper's Dask settings
    for those in WITH_SETTINGS (as the README tells users to export it), and nowhere else."""
    env = {k: v for k, v in os.environ.items() if k != "DASK_CONFIG"}
    if config in WITH_SETTINGS:
        env["DASK_CONFIG"] = str(SETTINGS_FILE)
    return env


class DaskCluster:
    """A scheduler and one ``dask worker --nworkers 2 --nthreads 1`` as subprocesses, for one round."""

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env = folder, env
        self.scheduler_file = folder / "scheduler.json"
        self.processes = []
        try:
            self.start()
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """Start the scheduler, then the workers, and wait until both workers have joined."""
        dask = str(Path(PYTHON).parent / "dask")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": self.folder, "env": self.env}
        self.processes.append(subprocess.Popen([dask, "scheduler", "--scheduler-file", str(self.scheduler_file),
                                                "--no-dashboard", "--port", "0", "--host", "127.0.0.1"], **quiet))
        self.wait_for(lambda: self.scheduler_address() is not None, "the scheduler's address")
        self.address = self.scheduler_address()
        self.processes.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(self.scheduler_file),
                                                "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                                "--host", "127.0.0.1"], **quiet))
        self.wait_for(lambda: self.workers() == 2, "two workers")

    def scheduler_address(self):
        """The address in the scheduler file, once the scheduler has written it whole (else None)."""
        try:
            return json.loads(self.scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return None

    def workers(self) -> int:
        """How many workers the scheduler knows."""
        code = ("import distributed, sys; c = distributed.Client(sys.argv[1], timeout=10); "
                "print(len(c.scheduler_info()['workers'])); c.close()")
        done = subprocess.run([str(PYTHON), "-c", code, self.address], capture_output=True, text=True)
        return int(done.stdout.strip() or 0)

    @staticmethod
    def wait_for(condition, what: str, seconds: float = 60.0) -> None:
        """Poll ``condition`` until it holds; RuntimeError after ``seconds``."""
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {what} after {seconds:g} s")
            time.sleep(0.5)

    def stop(self) -> None:
        """Terminate the worker and the scheduler, and wait for them."""
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_job(config: str, listing: Path, out: Path, address: str = None) -> dict:
    """One job as a whole process -> wall seconds and the outputs it wrote."""
    out.mkdir(parents=True)
    extra = CONFIGS[config] + (["--address", address] if address else [])
    cmd = [str(PYTHON), *COMMAND, "--output_dir", str(out), "--summary", str(out / "summary.jsonl"), *extra,
           str(listing)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=listing.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=environment(config))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{config}: exit {done.returncode}\n{done.stderr[-3000:]}")
    outputs = {p.name: p.read_text() for p in sorted(out.glob("*.json"))}
    if len(outputs) != N_FILES:
        raise RuntimeError(f"{config}: {len(outputs)} outputs, expected {N_FILES}")
    return {"wall_s": wall, "load": load, "outputs": outputs}


def measure(work: Path, rounds: int) -> dict:
    """Every configuration, ``rounds`` times, alternating -> {config: [run, ...]}."""
    listing = job_files(work)
    runs = {config: [] for config in CONFIGS}
    for round_number in range(rounds):
        for config in CONFIGS:
            out = Path(tempfile.mkdtemp(prefix=f"r{round_number}-", dir=work)) / "out"
            cluster = DaskCluster(out.parent, environment(config)) if "--executor" in CONFIGS[config] else None
            try:
                say(f"round {round_number + 1}/{rounds}: {config}")
                runs[config].append(run_job(config, listing, out, cluster.address if cluster else None))
                say(f"  {runs[config][-1]['wall_s']:.1f} s")
            finally:
                if cluster:
                    cluster.stop()
    return runs


def report(runs: dict, rounds: int) -> str:
    """The markdown page."""
    audio_hours = N_FILES * FILE_SECONDS / 3600
    base = statistics.median(r["wall_s"] for r in runs[BASELINE])
    reference = runs[BASELINE][0]["outputs"]
    lines = [
        "# Batch throughput: one process, two local workers, a Dask cluster of two workers",
        "",
        f"Written by `bench/batch_throughput.py` on {time.strftime('%Y-%m-%d %H:%M')} ({platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work). A job of {N_FILES} files of {FILE_SECONDS} s of English "
        f"speech ({audio_hours * 60:.0f} min of audio), tiny.en greedy, JSON outputs and a summary; each job one "
        f"whole process, the configurations alternating over {rounds} rounds.",
        "",
        "| configuration | wall, median (min-max) | audio hours per hour | wall / 2 workers | outputs equal 2 workers' |",
        "|---|---|---|---|---|",
    ]
    for config, records in runs.items():
        walls = [r["wall_s"] for r in records]
        median = statistics.median(walls)
        same = all(r["outputs"] == reference for r in records)
        lines.append(f"| {config} | {median:.1f} s ({min(walls):.1f}-{max(walls):.1f}) | {audio_hours * 3600 / median:.1f} "
                     f"| {median / base:.3f} | {'yes' if same else 'NO'} |")
    lines += ["", "The engine's overhead against the local workers:", ""]
    for config in (c for c in runs if "--executor" in CONFIGS[c]):
        dask = statistics.median(r["wall_s"] for r in runs[config])
        ratios = [d["wall_s"] / w["wall_s"] for d, w in zip(runs[config], runs[BASELINE])]
        lines.append(f"- {config}: {100 * (dask / base - 1):+.1f}% by median walls, "
                     f"{100 * (statistics.median(ratios) - 1):+.1f}% by the median of the rounds' ratios "
                     f"({', '.join(f'{r:.3f}' for r in ratios)}).")
    loads = ", ".join(f"{config} {statistics.mean(r['load'] for r in records):.1f}" for config, records in runs.items())
    lines += [
        "",
        "`dask 2` runs with numwhisper's Dask settings (`numwhisper/dask.yaml`: Dask's monitors wake once a",
        "second, the workers' statistical profiler is off); `dask 2, Dask's defaults` without them.",
        "",
        f"Mean 1-minute load average as the jobs started: {loads}.",
        "",
        "`1 process` uses both cores in one process (Numba's and BLAS's threads); its outputs differ from the",
        "others' in the last digits of scores, since a product summed over two threads rounds differently,",
        "so only the one-thread configurations are compared byte for byte.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = measure(args.work, args.rounds)
    args.out.write_text(report(runs, args.rounds))
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
