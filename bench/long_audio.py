"""Peak memory and wall time of ``python -m numwhisper`` on long recordings, this tree against the last
commit that held the whole file's log-mel at once.

    .venv/bin/python bench/long_audio.py [--work /tmp/numwhisper-long] [--old-at-3h] [--runs 1]

Inputs: 16 kHz mono FLAC (PCM_16) files of 5 minutes, 1 hour and 3 hours of real English speech,
the shared corpus' ``en_*.wav`` clips in file-name order with 0.5 s of silence after each, repeated
until the length is reached and cut there (deterministic, written once into the work folder).

Each run is one whole process, ``python -m numwhisper FILE --model tiny.en --beam_size None
--language en --verbose False`` (import, model load, transcription, exit), timed by this script and
measured by ``/usr/bin/time -v`` (its "Maximum resident set size"; without it, ``ru_maxrss`` of
``RUSAGE_CHILDREN`` of a fresh child process per run). "new" is this working tree as it is when the
script starts, uncommitted changes included: its ``numwhisper`` package is copied into the work folder
and run from there (``PYTHONPATH``), so edits made meanwhile reach no run; "old" is ``OLD_COMMIT`` checked out
with ``git worktree add`` into the work folder and run with ``PYTHONPATH`` pointing there, in the same
virtual environment. For each duration the two alternate (new, old, new, old ...). Before the measured
runs each tree transcribes en_jfk once uncounted, so both have Numba's on-disk cache warm. The old
commit refused inputs over 2 hours by default, so runs over 2 hours get ``--max-audio-seconds 86400``
(both trees; the new default is already 24 hours). The old commit at 3 hours needs ~7.4 GB and a long
time, so it runs only with ``--old-at-3h``. Both trees' printed results are kept, and their segment
counts and text compared (the log-mel is the same, so the transcripts should be too).

Then the streamed log-mel is checked bit for bit on a 2-hour file made the same way: every window
(seeks 0, 2999, 3000 and every 1237 frames, in order, then seek 0 again, which restarts the second
pass) of ``mel.StreamedLogMel(open_samples(path).pieces)`` against ``mel.pad_or_trim(whole[:, seek:])``
with ``whole = mel.log_mel_spectrogram(load_audio(path))`` (about 5 GB for the whole one).

Writes ``bench/results/long_audio.md``; progress goes to stdout as it runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_WORK = Path("/tmp/numwhisper-long")
DEFAULT_OUT = REPO / "bench" / "results" / "long_audio.md"
OLD_COMMIT = "bb635b8"
SAMPLE_RATE = 16000
GAP_SAMPLES = SAMPLE_RATE // 2  # 0.5 s of silence after each clip
DURATIONS = {"5 min": 300, "1 h": 3600, "3 h": 10800}
IDENTITY_SECONDS = 7200
IDENTITY_STEP = 1237  # frames between compared windows
OLD_MAX_SECONDS = 7200  # the old commit's default --max-audio-seconds
RSS_TARGET_MIB = 100
COMMAND = ["-m", "numwhisper", "--model", "tiny.en", "--beam_size", "None", "--language", "en", "--verbose", "False"]
TIME = Path("/usr/bin/time")


def say(message: str) -> None:
    """A progress line, flushed at once (the script runs for a long time under nohup)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------- inputs

def english_clips(corpus: Path) -> list:
    """The corpus' English clips, in file-name order."""
    clips = sorted((corpus / "audio").glob("en_*.wav"))
    if not clips:
        raise SystemExit(f"no en_*.wav clips in {corpus / 'audio'}")
    return clips


def read_int16(path: Path) -> np.ndarray:
    """A 16 kHz mono PCM clip as int16 [N] (its samples exactly)."""
    audio, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE or audio.shape[1] != 1:
        raise ValueError(f"{path}: {rate} Hz, {audio.shape[1]} channels; expected 16 kHz mono")
    return audio[:, 0]  # [N]


def write_speech(path: Path, clips: list, seconds: int) -> None:
    """Write ``seconds`` of the clips (each followed by GAP_SAMPLES of silence), repeated in order and cut,
    as 16 kHz mono FLAC PCM_16, block by block (the 3-hour file is never held whole)."""
    parts = [np.concatenate([read_int16(c), np.zeros(GAP_SAMPLES, np.int16)]) for c in clips]  # [n_i]
    remaining = seconds * SAMPLE_RATE
    partial = path.with_name(path.name + ".partial")
    with sf.SoundFile(str(partial), "w", SAMPLE_RATE, 1, "PCM_16", format="FLAC") as out:
        while remaining > 0:
            for part in parts:
                take = part[:remaining]
                out.write(take)
                remaining -= take.shape[0]
                if remaining == 0:
                    break
    partial.rename(path)


def speech_file(work: Path, clips: list, seconds: int) -> Path:
    """The ``seconds``-long speech file in ``work``, written once (rewritten when its length is wrong)."""
    path = work / f"speech_{seconds}s.flac"
    if path.is_file() and sf.info(str(path)).frames == seconds * SAMPLE_RATE:
        return path
    say(f"writing {path.name} ({seconds} s)")
    write_speech(path, clips, seconds)
    return path


# ------------------------------------------------------------------------------------------- trees

def old_worktree(work: Path, commit: str) -> Path:
    """``commit`` checked out (detached) in ``work``, added once."""
    tree = work / f"old-{commit}"
    if not (tree / "numwhisper" / "__init__.py").is_file():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True)
    return tree


def remove_worktree(tree: Path) -> None:
    """Remove the worktree this script added."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


def tree_env(tree: Path) -> dict:
    """The environment of a run of ``tree``: its directory first on the import path."""
    return {**os.environ, "PYTHONPATH": str(tree)}


def imported_from(tree: Path) -> str:
    """Where ``import numwhisper`` resolves with ``tree``'s environment (to show each run uses its tree)."""
    done = subprocess.run([str(PYTHON), "-c", "import numwhisper; print(numwhisper.__file__)"], env=tree_env(tree),
                          cwd="/", capture_output=True, text=True, check=True)
    return done.stdout.strip()


def source_digest(tree: Path) -> str:
    """A short digest of the tree's numwhisper/*.py (names the code that ran)."""
    digest = hashlib.sha256()
    for path in sorted((tree / "numwhisper").rglob("*.py")):
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def snapshot_tree(work: Path) -> Path:
    """A copy of this working tree's ``numwhisper`` package (uncommitted changes included, no caches) in
    ``work``, to run from while the repository may be edited."""
    tree = work / "new-snapshot"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(REPO / "numwhisper", tree / "numwhisper", ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def describe_new_tree() -> str:
    """HEAD's short hash and how many files under numwhisper/ differ from it or are new."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "numwhisper"],
                             capture_output=True, text=True)
    n = len([line for line in changed.stdout.splitlines() if line.strip()])
    return f"HEAD {head.stdout.strip()} + {n} uncommitted changed/new files under numwhisper/"


# ------------------------------------------------------------------------------------------- runs

def peak_rss_from_time(report: str) -> float:
    """MiB from ``/usr/bin/time -v``'s "Maximum resident set size (kbytes)" line."""
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    if not match:
        raise RuntimeError(f"no peak RSS in /usr/bin/time's report:\n{report[-2000:]}")
    return int(match.group(1)) / 1024


def child_peak_rss() -> float:
    """MiB: the largest peak RSS among this process' waited-for children (one fresh child per call)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_measured(tree: Path, audio: Path, seconds: int, stdout_path: Path) -> dict:
    """One whole ``python -m numwhisper`` process on ``audio`` from ``tree``: wall s, peak RSS MiB, result."""
    cmd = [str(PYTHON), *COMMAND, str(audio)]
    if seconds > OLD_MAX_SECONDS:
        cmd += ["--max-audio-seconds", "86400"]
    report_path = stdout_path.with_suffix(".time")
    if TIME.exists():
        cmd = [str(TIME), "-v", "-o", str(report_path), *cmd]
        return _timed(cmd, tree, stdout_path, lambda: peak_rss_from_time(report_path.read_text()))
    # Without /usr/bin/time: a fresh helper process runs the command, so its RUSAGE_CHILDREN is that run's.
    helper = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=open(%r, 'w')); sys.exit(rc)"
              % str(report_path))
    return _timed([sys.executable, "-c", helper, *cmd], tree, stdout_path,
                  lambda: int(report_path.read_text()) / 1024)


def _timed(cmd: list, tree: Path, stdout_path: Path, peak: callable) -> dict:
    """Run ``cmd`` with ``tree``'s environment, stdout into ``stdout_path``; wall, peak RSS and the result."""
    load = os.getloadavg()[0]  # the machine is shared: the 1-minute load average as the run starts
    with open(stdout_path, "w") as out:
        start = time.perf_counter()
        done = subprocess.run(cmd, env=tree_env(tree), cwd=stdout_path.parent, stdout=out, stderr=subprocess.PIPE,
                              text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return {"wall_s": wall, "peak_rss_mib": peak(), "load": load, **printed_result(stdout_path)}


def printed_result(stdout_path: Path) -> dict:
    """Segment count and a digest of the text of the result the CLI printed (None when unreadable)."""
    try:
        result = json.loads(stdout_path.read_text())["res"]["result"]
    except (ValueError, KeyError, TypeError):
        return {"segments": None, "text_sha": None}
    return {"segments": len(result["segments"]),
            "text_sha": hashlib.sha256(result["text"].encode()).hexdigest()[:12]}


def warm_up(trees: dict, clip: Path, work: Path) -> None:
    """Each tree transcribes ``clip`` once, uncounted (Numba's cache and the page cache get warm)."""
    for label, tree in trees.items():
        say(f"warm-up: {label} on {clip.name}")
        run_measured(tree, clip, 11, work / f"warmup_{label}.json")


def measure(trees: dict, files: dict, runs: int, old_at_3h: bool, work: Path) -> dict:
    """{duration label: {tree label: [run dicts]}}, the trees alternating run by run within each duration."""
    results = {}
    for label, path in files.items():
        seconds = DURATIONS[label]
        labels = [t for t in trees if t == "new" or seconds <= 3600 or old_at_3h]
        results[label] = {t: [] for t in trees}
        for run in range(runs):
            for tree_label in labels:
                say(f"{label}: {tree_label} run {run + 1}/{runs} ...")
                out = work / f"out_{seconds}s_{tree_label}_{run}.json"
                record = run_measured(trees[tree_label], path, seconds, out)
                results[label][tree_label].append(record)
                say(f"{label}: {tree_label} run {run + 1}: {record['wall_s']:.1f} s, "
                    f"{record['peak_rss_mib']:.0f} MiB, {record['segments']} segments, load {record['load']:.1f}")
    return results


# ------------------------------------------------------------------------------------------- identity

def window_seeks(n_frames: int) -> list:
    """Seeks 0, 2999, 3000 and every IDENTITY_STEP frames below n_frames, in increasing order."""
    return sorted({0, 2999, 3000, *range(0, n_frames, IDENTITY_STEP)})


def identity_check(path: Path, tree: Path) -> dict:
    """Every window of the streamed log-mel against the whole-file log-mel (bit for bit), ``tree``'s code."""
    sys.path.insert(0, str(tree))
    from numwhisper import mel
    from numwhisper.audio import load_audio, open_samples

    start = time.perf_counter()
    whole = mel.log_mel_spectrogram(load_audio(str(path)))  # [80, T]
    whole_s = time.perf_counter() - start
    start = time.perf_counter()
    streamed = mel.StreamedLogMel(open_samples(str(path)).pieces)
    seeks = window_seeks(whole.shape[1]) + [0]  # the last one goes back: the second pass restarts
    differing, worst = [], 0.0
    for seek in seeks:
        ours, theirs = streamed.window(seek), mel.pad_or_trim(whole[:, seek:])  # [80, 3000] each
        if not np.array_equal(ours, theirs):
            differing.append(seek)
            worst = max(worst, float(np.max(np.abs(ours.astype(np.float64) - theirs))))
    streamed_s = time.perf_counter() - start
    return {"frames_whole": whole.shape[1], "frames_streamed": streamed.n_frames, "windows": len(seeks),
            "differing": differing, "worst": worst, "whole_s": whole_s, "streamed_s": streamed_s}


# ------------------------------------------------------------------------------------------- report

def mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def cell(records: list, key: str, fmt) -> str:
    """The runs' values of ``key`` joined by " / " ("-" when not run)."""
    return " / ".join(fmt(r[key]) for r in records) if records else "not run"


def table(results: dict) -> list:
    """The markdown table rows: duration | new wall | new peak RSS | old wall | old peak RSS | new/old."""
    rows = ["| duration | new wall | new peak RSS | old wall | old peak RSS | new/old wall, peak RSS |",
            "|---|---|---|---|---|---|"]
    for label, by_tree in results.items():
        new, old = by_tree["new"], by_tree.get("old", [])
        if new and old:
            ratio = (f"{min(r['wall_s'] for r in new) / min(r['wall_s'] for r in old):.2f}, "
                     f"{max(r['peak_rss_mib'] for r in new) / max(r['peak_rss_mib'] for r in old):.2f}")
        else:
            ratio = "-"
        rows.append(f"| {label} | {cell(new, 'wall_s', lambda v: f'{v:.1f} s')} | "
                    f"{cell(new, 'peak_rss_mib', mib)} | {cell(old, 'wall_s', lambda v: f'{v:.1f} s')} | "
                    f"{cell(old, 'peak_rss_mib', mib)} | {ratio} |")
    return rows


def same_transcripts(results: dict) -> list:
    """One line per duration where both trees ran: segment counts and whether the texts are equal."""
    lines = []
    for label, by_tree in results.items():
        new, old = by_tree["new"], by_tree.get("old", [])
        if new and old:
            equal = {r["text_sha"] for r in new} == {r["text_sha"] for r in old} and new[0]["text_sha"] is not None
            lines.append(f"- {label}: new {new[0]['segments']} segments, old {old[0]['segments']}; "
                         f"text {'identical' if equal else 'DIFFERENT'}")
        elif new:
            lines.append(f"- {label}: new {new[0]['segments']} segments (old not run)")
    return lines


def report(results: dict, identity: dict, context: dict) -> str:
    """The whole markdown page."""
    peaks = [max(r["peak_rss_mib"] for r in by_tree["new"]) for by_tree in results.values()]
    spread = max(peaks) - min(peaks)
    speeds = [f"{label}: {DURATIONS[label] / min(r['wall_s'] for r in by_tree['new']):.0f}"
              for label, by_tree in results.items()]
    lines = [
        "# Long recordings: peak RSS and wall time, streamed log-mel (new) against whole-file log-mel (old)",
        "",
        f"Written by `bench/long_audio.py` on {time.strftime('%Y-%m-%d %H:%M')} ({platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work, {context['threads']}).",
        "",
        f"- new: this working tree ({context['new_tree']}), its numwhisper package copied at the start "
        f"(sources digest {context['digest']}) and run from `{context['new_import']}`",
        f"- old: {OLD_COMMIT} (`git worktree add`, PYTHONPATH to it, same venv), imported from "
        f"`{context['old_import']}`",
        f"- command: `python {' '.join(COMMAND)} FILE` as a whole process (import, model load, transcription, "
        f"exit); runs over 2 h add `--max-audio-seconds 86400` (the old default refuses them)",
        f"- inputs: 16 kHz mono FLAC PCM_16, {context['n_clips']} English corpus clips (`en_*.wav`, file-name "
        "order, 0.5 s of silence after each) repeated and cut to length",
        f"- {context['runs']} run per configuration (the long ones take minutes), new and old alternating per "
        "duration; each tree transcribed en_jfk once uncounted first (Numba cache warm)",
        f"- peak RSS: {context['rss_source']}; wall: this script's clock around the process",
        "",
        *table(results),
        "",
        f"Spread of the new peaks over the durations (max - min): {spread:.0f} MiB "
        f"({'within' if spread <= RSS_TARGET_MIB else 'OVER'} the {RSS_TARGET_MIB} MiB target); "
        f"peaks {', '.join(f'{p:.0f}' for p in peaks)} MiB.",
        "",
        f"Audio hours per wall hour (new): {', '.join(speeds)}.",
        "",
    ]
    if not context["old_at_3h"]:
        lines += ["The old commit is not run at 3 h (by default: it needs ~7.4 GB and a long time; "
                  "`--old-at-3h` runs it).", ""]
    lines += ["Load average (1 minute) as each run started, new / old: "
              + "; ".join(f"{label} {cell(t['new'], 'load', lambda v: f'{v:.1f}')} / "
                          f"{cell(t.get('old', []), 'load', lambda v: f'{v:.1f}')}" for label, t in results.items())
              + ". Other jobs shared the two cores, so the walls are those of a busy machine; the peak RSS "
              "does not depend on it.", ""]
    lines += ["Transcripts (the printed result of each run):", "", *same_transcripts(results), ""]
    lines += identity_lines(identity)
    lines += ["", "Before the change (the issue's figures, commit bb635b8): peak RSS grew ~40 MB per minute of "
              "audio, 641 MB for 10 min and 2.68 GB for 60 min."]
    return "\n".join(lines) + "\n"


def identity_lines(identity: dict) -> list:
    """The bit-identity paragraph."""
    if identity is None:
        return ["Bit-identity check: not run (`--skip-identity`)."]
    verdict = ("all bit-identical" if not identity["differing"] else
               f"{len(identity['differing'])} DIFFER (first seeks {identity['differing'][:5]}, "
               f"worst |diff| {identity['worst']:.3g})")
    return [f"Bit-identity on a {IDENTITY_SECONDS // 3600}-hour file made the same way: "
            f"{identity['windows']} windows of `mel.StreamedLogMel(open_samples(path).pieces)` (seeks 0, 2999, "
            f"3000 and every {IDENTITY_STEP} frames below frame {identity['frames_whole']}, in order, then "
            f"0 again, which restarts the second pass) against `mel.pad_or_trim(whole[:, seek:])` with "
            f"`whole = mel.log_mel_spectrogram(load_audio(path))`: {verdict}. Frames: streamed "
            f"{identity['frames_streamed']}, whole {identity['frames_whole']}. Whole log-mel "
            f"{identity['whole_s']:.0f} s; streamed (both passes and every window) {identity['streamed_s']:.0f} s."]


# ------------------------------------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder for the audio, outputs and worktree")
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--runs", type=int, default=1, help="runs per configuration (default 1)")
    p.add_argument("--durations", nargs="+", default=list(DURATIONS), choices=list(DURATIONS))
    p.add_argument("--old-at-3h", action="store_true", help="also run the old commit on the 3-hour file")
    p.add_argument("--skip-identity", action="store_true", help="skip the 2-hour bit-identity check")
    p.add_argument("--keep-worktree", action="store_true", help="leave the old commit's worktree in place")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    clips = english_clips(args.corpus)
    files = {label: speech_file(args.work, clips, DURATIONS[label]) for label in args.durations}
    new, old = snapshot_tree(args.work), old_worktree(args.work, OLD_COMMIT)
    trees = {"new": new, "old": old}
    try:
        context = {"new_tree": describe_new_tree(), "digest": source_digest(new),
                   "new_import": imported_from(new), "old_import": imported_from(old), "runs": args.runs,
                   "old_at_3h": args.old_at_3h, "n_clips": len(clips),
                   "threads": "numwhisper's default threads (all cores)",
                   "rss_source": "`/usr/bin/time -v` (Maximum resident set size)" if TIME.exists()
                   else "ru_maxrss of RUSAGE_CHILDREN in a fresh helper process per run"}
        say(f"new imports {context['new_import']}; old imports {context['old_import']}")
        warm_up(trees, clips[[c.name for c in clips].index("en_jfk.wav")], args.work)
        results = measure(trees, files, args.runs, args.old_at_3h, args.work)
    finally:
        if not args.keep_worktree:
            remove_worktree(old)
    identity = None
    if not args.skip_identity:
        say(f"bit-identity check on {IDENTITY_SECONDS} s ...")
        identity = identity_check(speech_file(args.work, clips, IDENTITY_SECONDS), new)
        say(f"bit-identity: {identity['windows']} windows, {len(identity['differing'])} differ")
    (args.work / "long_audio.json").write_text(json.dumps({"results": results, "identity": identity,
                                                           "context": context}, indent=1))
    page = report(results, identity, context)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    print(page, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
