"""Batch jobs through the command line, as a user runs them on an archive: list files, an interrupted
job resumed with --skip_existing, worker processes (and one killed under the job), the --summary
file (and re-running its failures), Ctrl-C, the job's progress line, and the batch options' errors.

Every job is ``python -m numwhisper`` in a subprocess on real clips (copies of two golden clips under
many names) with tiny.en greedy and one CPU thread per process, so that any two runs give the same
floats and each output can be compared byte for byte with a clean single run. (Options refused
before anything runs are checked through ``cli.main`` in this process.)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from numwhisper.batch import Job, WorkerPool, plan_tasks
from numwhisper.cli import main
from numwhisper.decoding import DecodingOptions
from numwhisper.inputs import expand_inputs
from test_cli import numwhisper, printed_results, start, stderr_on_a_terminal

FAST = ("--model", "tiny.en", "--beam_size", "None")
FORMATS = ("json", "srt", "tsv", "txt", "vtt")
SOURCES = {"ls": "golden/audio/en_ls_1272-128104-0000.wav", "lj": "golden/audio/en_ljspeech_LJ001-0001.wav"}
SECONDS = 60.0  # the longest any wait for a job's progress may take


# ------------------------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def reference(repo, tmp_path_factory) -> dict:
    """{source key: {format: text}} of a clean single run (one process, one thread) over each source clip."""
    out = tmp_path_factory.mktemp("reference")
    done = numwhisper(repo, *FAST, "--threads", "1", "-f", "all", "--output_dir", out, *SOURCES.values())
    assert done.returncode == 0, done.stderr
    return {key: {fmt: (out / f"{Path(path).stem}.{fmt}").read_text(encoding="utf-8") for fmt in FORMATS}
            for key, path in SOURCES.items()}


def copies(repo, folder: Path, names: dict) -> dict:
    """Copy source clips under new names: {file name: source key} -> {file name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, key in names.items():
        shutil.copyfile(repo / SOURCES[key], folder / name)
    return {name: folder / name for name in names}


def assert_same_as_reference(out: Path, stem: str, key: str, input_path: str, reference: dict, formats=FORMATS):
    """The outputs of ``stem`` equal the clean run's of source ``key`` (its input_path aside)."""
    for fmt in formats:
        written = (out / f"{stem}.{fmt}").read_text(encoding="utf-8")
        if fmt == "json":
            assert json.loads(written) == dict(json.loads(reference[key]["json"]), input_path=input_path), stem
        else:
            assert written == reference[key][fmt], (stem, fmt)


def summary_rows(path: Path) -> list:
    """The --summary file's rows."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def hidden_files(folder: Path) -> list:
    """Temporary files (``.name.XXXX.partial``) and anything else hidden in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def worker_pids(parent: int) -> list:
    """The worker processes (multiprocessing's spawned interpreters) whose parent is ``parent``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def state_of(pid: int) -> str:
    """A process's scheduler state ("R" running, "S" sleeping, ...; "" once it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


def wait_for(condition, what: str, process: subprocess.Popen = None):
    """Poll ``condition()`` until it gives something true; fail after SECONDS (or if ``process`` ends first)."""
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the job ended before {what}: {process.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def complete_stems(out: Path, formats=("json",)) -> set:
    """The stems whose every output file in ``formats`` is in ``out``."""
    if not out.is_dir():
        return set()
    names = {p.name for p in out.iterdir()}
    stems = {Path(name).stem for name in names if not name.startswith(".")}
    return {stem for stem in stems if all(f"{stem}.{fmt}" in names for fmt in formats)}


def without_wall(row: dict) -> dict:
    """A summary row without its timing (which no two runs share)."""
    return {key: value for key, value in row.items() if key != "wall_seconds"}


def gone(pids) -> bool:
    """Whether every process of ``pids`` has ended."""
    return not any(state_of(pid) not in ("", "Z") for pid in pids)


# ----------------------------------------------------------------------------------------- list files

def test_list_files_of_every_kind_expand_relative_to_their_folder(repo, tmp_path, reference):
    lists = tmp_path / "lists"
    copies(repo, lists / "clips", {"one.wav": "ls", "two.wav": "lj", "three.wav": "ls"})
    (lists / "a.txt").write_text("# the first clip\n\nclips/one.wav\n   \n")
    (lists / "b.tsv").write_text("id\tpath\tnote\n7\tclips/two.wav\tsecond\n")
    (lists / "c.jsonl").write_text('{"input": "clips/three.wav", "status": "failed"}\n{not json\n')
    (lists / "d.tsv").write_text("id\tfile\n1\tclips/one.wav\n")
    out = tmp_path / "out"
    # run from another folder: entries are found beside their list, not in the working directory
    done = subprocess.run([sys.executable, "-m", "numwhisper", *FAST, "--threads", "1", "-f", "all",
                           "--output_dir", out, "lists/a.txt", "lists/b.tsv", "lists/c.jsonl", "lists/d.tsv"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: lists/c.jsonl, line 2: not valid JSON (Expecting property name enclosed in double quotes)",
        "error: lists/d.tsv, line 1: the header row has no 'path' or 'input' column",
    ]
    printed = [doc["res"]["input_path"] for doc in printed_results(done.stdout)]
    assert printed == ["lists/clips/one.wav", "lists/clips/two.wav", "lists/clips/three.wav"]
    for name, key in (("one", "ls"), ("two", "lj"), ("three", "ls")):
        assert_same_as_reference(out, name, key, f"lists/clips/{name}.wav", reference)


# ---------------------------------------------------------------------------------------- output stems

def test_stems_are_decided_from_the_input_list_alone(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.mp3").write_bytes(b"not read when planning")
    names = [str(tmp_path / "x" / "a.mp3"), str(tmp_path / "x" / "missing.txt"), "/no/such/a.ogg",
             str(tmp_path / "y" / "a.mp3"), str(tmp_path / "x"), "http://example.com/talks/a.ogg?x=1", "QUJD" * 20]
    items = expand_inputs(names)
    stems = [task.stem for task in plan_tasks(items)]
    # a file name's stem, else its whole name, else with _number; an input without a file name (a list
    # that cannot be read, inline audio) is input_number
    assert stems == ["a", "input_2", "a.ogg", "a.mp3", "a.mp3_5", "a.ogg_6", "input_7"]
    assert [task.stem for task in plan_tasks(expand_inputs(names))] == stems
    assert [task.number for task in plan_tasks(items)] == list(range(1, 8))


# ---------------------------------------------------------------------- an interrupted job, resumed

def test_a_killed_job_resumed_with_skip_existing_does_only_the_remaining_inputs(repo, tmp_path, reference):
    sources = {f"clip{number:02d}.wav": "ls" if number % 2 else "lj" for number in range(1, 21)}
    clips = copies(repo, tmp_path / "clips", sources)
    out, summary = tmp_path / "out", tmp_path / "summary.jsonl"
    job = (*FAST, "-f", "all", "--output_dir", out, "--workers", "2", tmp_path / "clips")

    first = start(repo, *job, stdout=subprocess.DEVNULL)
    wait_for(lambda: len(complete_stems(out, FORMATS)) >= 4, "four inputs done", first)
    workers = worker_pids(first.pid)
    assert len(workers) == 2
    first.kill()  # SIGKILL: nothing of the job's own runs after this
    first.communicate()
    wait_for(lambda: gone(workers), "the workers to end with the job")  # they are told by the kernel
    names = sorted(p.name for p in out.iterdir())
    assert hidden_files(out) == []  # no temporary file is left behind
    finished = complete_stems(out, FORMATS)
    assert len(names) == 5 * len(finished)  # each input has all of its outputs or none
    assert 4 <= len(finished) < 20

    resumed = numwhisper(repo, *job, "--skip_existing", "--summary", summary)
    assert resumed.returncode == 0, resumed.stderr
    rows = summary_rows(summary)
    assert sorted(row["input"] for row in rows) == sorted(str(path) for path in clips.values())
    status = {Path(row["input"]).stem: row["status"] for row in rows}
    assert {stem for stem, said in status.items() if said == "skipped"} == finished
    assert {stem for stem, said in status.items() if said == "done"} == set(status) - finished
    printed = {Path(doc["res"]["input_path"]).stem for doc in printed_results(resumed.stdout)}
    assert printed == set(status) - finished  # only the remaining inputs were transcribed
    assert resumed.stderr == f"skipped {len(finished)} of 20 inputs: their outputs exist (--skip_existing)\n"
    assert hidden_files(out) == [] and len(list(out.iterdir())) == 5 * 20
    for name, key in sources.items():
        assert_same_as_reference(out, Path(name).stem, key, str(clips[name]), reference)


# ---------------------------------------------------------------------------------- worker processes

def test_workers_match_one_process_and_a_killed_worker_fails_only_its_input(repo, tmp_path, reference):
    sources = {f"w{number}.wav": "ls" if number % 2 else "lj" for number in range(1, 6)}
    clips = copies(repo, tmp_path / "clips", sources)
    bad = tmp_path / "clips" / "broken.wav"
    bad.write_text("this is not audio\n" * 20)
    out, summary = tmp_path / "out", tmp_path / "summary.jsonl"

    # the bad input first: it fails at once, so the worker killed below holds a good one
    job = start(repo, *FAST, "--output_dir", out, "--workers", "2", "--summary", summary, bad, *clips.values())
    wait_for(lambda: complete_stems(out), "a first output", job)
    workers = wait_for(lambda: worker_pids(job.pid), "the workers", job)
    busy = wait_for(lambda: [pid for pid in worker_pids(job.pid) if state_of(pid) == "R"], "a busy worker", job)
    os.kill(busy[0], signal.SIGKILL)
    stdout, stderr = job.communicate(timeout=SECONDS * 3)

    assert job.returncode == 2
    rows = {Path(row["input"]).name: row for row in summary_rows(summary)}
    assert len(rows) == 6 and sorted(rows) == sorted([*sources, "broken.wav"])
    died = [name for name, row in rows.items() if row["error"] and "worker process died" in row["error"]]
    assert len(died) == 1
    killed = died[0]
    assert sorted(stderr.splitlines()) == sorted([
        f"error: {bad}: not a readable audio file (Format not recognised)",
        f"error: {clips[killed]}: worker process died (signal 9) while transcribing it",
    ])
    assert {name for name, row in rows.items() if row["status"] == "done"} == set(sources) - {killed}
    printed = [Path(doc["res"]["input_path"]).name for doc in printed_results(stdout)]
    assert sorted(printed) == sorted(set(sources) - {killed})  # each once
    assert hidden_files(out) == []
    for name in set(sources) - {killed}:
        assert_same_as_reference(out, Path(name).stem, sources[name], str(clips[name]), reference, ("json",))
    assert gone(workers)


def test_a_model_the_workers_cannot_load_is_one_error_line(repo, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\xff" * 1000)  # found, so the parent hands it on; unreadable, so each worker fails
    done = numwhisper(repo, "--model_dir", broken, "--workers", "2", SOURCES["ls"], SOURCES["lj"])
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {broken}: not a readable safetensors file")


@pytest.mark.parametrize("moment", [0.0, 0.4, 0.8, 1.2, "ready"])
def test_a_worker_stopped_while_it_starts_or_waits_ends_by_the_signal_and_prints_nothing(moment, model_files, capfd):
    # A job that fails stops the other workers wherever they are: importing, compiling Numba's first
    # kernel (where a Python exception raised by a handler is swallowed inside llvmlite's callback and
    # printed), loading the model, or waiting for a task. Each must end by SIGTERM itself, silently.
    pool = WorkerPool(str(model_files["tiny.en"]), None, Job(DecodingOptions()), workers=1, threads=1)
    pool.start_worker()
    [worker] = pool.workers
    try:
        if moment == "ready":
            assert worker.connection.poll(SECONDS) and worker.connection.recv() == ("ready", None)
        else:
            time.sleep(moment)
        worker.process.terminate()
        worker.process.join(SECONDS)
    finally:
        pool.stop_all()
    assert worker.process.exitcode == -signal.SIGTERM
    assert capfd.readouterr().err == ""


def test_ctrl_c_stops_the_workers_and_leaves_no_temporary_file(repo, tmp_path):
    clips = copies(repo, tmp_path / "clips", {f"c{number}.wav": "ls" for number in range(1, 4)})
    out = tmp_path / "out"
    job = start(repo, *FAST, "-f", "all", "--output_dir", out, "--workers", "2", *clips.values(),
                stdout=subprocess.DEVNULL)
    wait_for(lambda: complete_stems(out), "a first output", job)
    workers = worker_pids(job.pid)
    for pid in [job.pid, *workers]:  # as a terminal's Ctrl-C does: the whole process group
        os.kill(pid, signal.SIGINT)
    _, stderr = job.communicate(timeout=SECONDS)
    assert job.returncode == 130
    assert stderr == "error: interrupted (run again with --skip_existing to resume the job)\n", stderr
    assert gone(workers) and hidden_files(out) == []
    finished = complete_stems(out, FORMATS)
    assert 1 <= len(finished) < 3 and len(list(out.iterdir())) == 5 * len(finished)


# ------------------------------------------------------------------------------------------ the summary

def test_the_summary_records_every_input_and_its_failures_run_again_as_a_list(repo, tmp_path, reference):
    clips = copies(repo, tmp_path / "clips", {"good.wav": "lj", "have.wav": "ls"})
    late = tmp_path / "clips" / "late.wav"  # missing at first
    out, summary = tmp_path / "out", tmp_path / "summary.jsonl"
    out.mkdir()
    (out / "have.json").write_text(reference["ls"]["json"])  # an earlier run's output: skipped
    done = numwhisper(repo, *FAST, "--threads", "1", "--output_dir", out, "--skip_existing", "--summary", summary,
                      clips["good.wav"], late, clips["have.wav"])
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {late}: no such file or directory",
                                        "skipped 1 of 3 inputs: their outputs exist (--skip_existing)"]
    rows = {Path(row["input"]).name: row for row in summary_rows(summary)}
    good, failed, skipped = rows["good.wav"], rows["late.wav"], rows["have.wav"]
    for row in (good, failed, skipped):
        assert list(row) == ["input", "status", "error", "audio_seconds", "wall_seconds", "language"]
        assert isinstance(row["wall_seconds"], float) and row["wall_seconds"] >= 0
    assert good.pop("audio_seconds") == pytest.approx(9.7, abs=0.1)  # the clip is 9.73 s
    assert without_wall(good) == {"input": str(clips["good.wav"]), "status": "done", "error": None, "language": "en"}
    assert without_wall(failed) == {"input": str(late), "status": "failed", "audio_seconds": None,
                                    "error": f"{late}: no such file or directory", "language": None}
    assert without_wall(skipped) == {"input": str(clips["have.wav"]), "status": "skipped", "error": None,
                                     "audio_seconds": None, "language": None}

    # the README's re-run of the failures: the failed rows of the summary are a list file
    shutil.copyfile(repo / SOURCES["ls"], late)
    failures = tmp_path / "failed.jsonl"
    with open(failures, "w") as chosen:
        subprocess.run(["grep", '"status": "failed"', str(summary)], stdout=chosen, check=True)
    again = numwhisper(repo, *FAST, "--threads", "1", "--output_dir", out, "--summary", summary, failures)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    # appended: the skipped input first (decided before anything runs), the others as they finished
    assert [row["status"] for row in summary_rows(summary)] == ["skipped", "done", "failed", "done"]
    assert summary_rows(summary)[-1]["input"] == str(late)
    assert_same_as_reference(out, "late", "ls", str(late), reference, ("json",))


# ----------------------------------------------------------------------------------------------- progress

def test_a_job_on_a_terminal_shows_files_and_audio_done(repo, tmp_path, reference):
    clips = copies(repo, tmp_path / "clips", {"p1.wav": "ls", "p2.wav": "lj"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "p2.json").write_text(reference["lj"]["json"])  # skipped: its audio counts as done at once
    shown = stderr_on_a_terminal(repo, *FAST, "--threads", "1", "--output_dir", out, "--skip_existing",
                                 *clips.values())
    # 5.9 s + 9.7 s of audio, from the files' headers: the skipped input counts at once, then p1 window by
    # window; the line is cleared before anything else is printed (a terminal ends lines with \r\n)
    assert shown == ("\r[0/2 files] 0.0/0.3 min of audio\x1b[K\r\x1b[K"
                     "\r[1/2 files] 0.2/0.3 min of audio\x1b[K\r[1/2 files] 0.3/0.3 min of audio\x1b[K\r\x1b[K"
                     "\r[2/2 files] 0.3/0.3 min of audio\x1b[K\r\n"
                     "skipped 1 of 2 inputs: their outputs exist (--skip_existing)\r\n")


# --------------------------------------------------------------------------------------- option errors

@pytest.mark.parametrize("args, message", [
    (["--skip_existing"], "error: --skip_existing needs --output_dir"),
    (["--executor", "dask"], "error: --executor dask needs --address"),
    (["--executor", "dask", "--address", "tcp://127.0.0.1:1", "--workers", "2"],
     "error: --workers is for --executor local"),
    (["--address", "tcp://127.0.0.1:1"], "error: --address is the dask scheduler's; it needs --executor dask"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_batch_options_that_do_not_go_together_exit_2_with_one_line(repo, args, message, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main([*args, SOURCES["ls"]]) == 2  # the command line's own entry point, refusing before any model loads
    printed = capsys.readouterr()
    assert printed.out == ""
    [line] = printed.err.splitlines()
    assert line.startswith(message)
