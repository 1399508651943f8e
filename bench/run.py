"""numwhisper against its peers on the same clips, weights, decoding options and thread count.

    python bench/run.py [--reps 3] [--threads 2] [--cache ~/.cache/numwhisper-bench] \
        [--out bench/results/peers.md] [--paddlex-python /work/refenv/bin/python] [--quick]

Every run is a fresh process (``bench/worker.py``): its wall time covers import, model load and
transcription, and its peak RSS comes from ``wait4``. numwhisper runs three ways: its API in PaddleX's
mode (``numwhisper``, the column the ratios divide by), the same API with ``compat="openai"``
(``numwhisper-openai``), and its command line as users run it (``numwhisper-cli``: ``python -m
numwhisper CLIP ... -f json``, started directly instead of the worker, so the whole measured process is
the command's; its result is read from the JSON file it writes, and it has no import / load /
transcribe split). Runs are interleaved system by system (A B C A B C ...) within each (clip,
option) configuration, so a noisy machine slows all systems alike;
the table gives medians. Every process gets OMP/MKL/OpenBLAS_NUM_THREADS = --threads, and each
library its own thread setting (numwhisper ``set_num_threads``, torch ``set_num_threads``,
CTranslate2 ``cpu_threads``, paddle ``set_num_threads``).

Two systems are too slow for every configuration and are run as PaddleX's notes allow: PaddleX
(~1-3 s per token on this CPU) only greedy on the 30 s clip, once, under ``--paddlex-timeout``;
openai-whisper's beam 5 on the 5-minute clip (7x its greedy cost) only in the first round; the
5-minute clip gets ``--long-reps`` rounds (default 2). The table's "runs" column says how many runs
each median has. After the peers, ``bench/micro.py``
measures the encoder and decoder step against the matmul floor and the cold start. Before the
measured runs each system runs once uncounted (20 s clip, greedy): Numba's on-disk cache and the
page cache are warm for every system alike.
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

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prepare  # noqa: E402
from worker import BEAM, windows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "bench" / "worker.py"
CLIPS = ("en30", "zh20", "long300", "vox69", "one1")
OPTIONS = ("greedy", "beam5")
PEERS = ("faster-whisper-fp32", "faster-whisper-int8", "openai-whisper", "paddlex")
CLI_SYSTEM = "numwhisper-cli"


def worker_command(python: str, system: str, clip: Path, option: str, threads: int, model: str,
                   extra: tuple) -> list:
    """The argv of one ``bench/worker.py`` run."""
    return [python, str(WORKER), system, str(clip), option, "--threads", str(threads), "--model-dir", model, *extra]


def cli_command(python: str, clip: Path, option: str, threads: int, model: str, out_dir: Path,
                extra: tuple) -> list:
    """The argv of ``python -m numwhisper`` on one clip with the bench's decoding (temperature 0 without
    fallback, beam as asked; previous text as prompt and language detection are its defaults), writing
    only ``out_dir/CLIP.json``; the worker's ``--words`` becomes ``--word_timestamps True``."""
    words = ("--word_timestamps", "True") if "--words" in extra else ()
    return [python, "-m", "numwhisper", str(clip), "--model", model, "--beam_size", str(BEAM[option]),
            "--temperature", "0", "--temperature_increment_on_fallback", "None", "--threads", str(threads),
            "-f", "json", "--output_dir", str(out_dir), "--verbose", "False", *words]


def cli_json(out_dir: Path, clip: Path) -> Path:
    """The JSON file the command line writes for ``clip`` (named after the clip's stem)."""
    return out_dir / f"{clip.stem}.json"


def cli_result(out_dir: Path, clip: Path) -> dict:
    """What the worker reports, from the JSON file the command line wrote (PaddleX's {"input_path",
    "result"}, or openai-whisper's result dict itself with --compat openai); no timings."""
    data = json.loads(cli_json(out_dir, clip).read_text(encoding="utf-8"))
    result = data.get("result", data)
    segments = result["segments"]
    return dict(text=result["text"], language=result["language"], n_segments=len(segments),
                windows=windows([s["seek"] for s in segments]),
                n_words=sum(len(s.get("words", [])) for s in segments))


def run_once(python: str, system: str, clip: Path, option: str, threads: int, model: str, timeout: float,
             extra: tuple = ()) -> dict:
    """One measured process (``extra``: more worker arguments) -> the worker's JSON line (for
    ``numwhisper-cli``, ``cli_result``) plus wall_s (spawn to exit) and peak_rss_mib (or an error)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    with tempfile.TemporaryDirectory() as out_dir, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        out_dir = Path(out_dir)
        cli = system == CLI_SYSTEM
        cmd = (cli_command(python, Path(clip), option, threads, model, out_dir, extra) if cli
               else worker_command(python, system, Path(clip), option, threads, model, extra))
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(REPO))
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timeout after {timeout:.0f} s", "wall_s": time.perf_counter() - start}
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = out.read().decode("utf-8", "replace").strip().splitlines()
        produced = cli_json(out_dir, Path(clip)).is_file() if cli else bool(lines)
        if proc.returncode != 0 or not produced:
            return {"error": err.read().decode("utf-8", "replace").strip().splitlines()[-1:], "wall_s": wall}
        result = cli_result(out_dir, Path(clip)) if cli else json.loads(lines[-1])
    result.update(wall_s=wall, peak_rss_mib=usage.ru_maxrss / 1024)
    return result


def plan(args) -> list:
    """[(clip, option, [(system, python, model, rounds)])] in run order."""
    nw = [(s, args.python, str(args.numwhisper_model)) for s in ("numwhisper", "numwhisper-openai", CLI_SYSTEM)]
    peers = [("faster-whisper-fp32", args.python, str(args.ct2_dir)),
             ("faster-whisper-int8", args.python, str(args.ct2_dir)),
             ("openai-whisper", args.python, str(args.openai_checkpoint))]
    configs = []
    for clip in args.clips:
        for option in args.options:
            reps = min(args.reps, args.long_reps) if clip == "long300" else args.reps
            systems = [(s, py, m, reps) for s, py, m in nw + peers]
            if clip == "long300" and option == "beam5":
                systems = [(s, py, m, 1 if s == "openai-whisper" else r) for s, py, m, r in systems]
            if clip == "en30" and option == "greedy" and args.paddlex_python:
                systems.append(("paddlex", args.paddlex_python, args.paddle_dir, 1))
            if args.systems:
                systems = [x for x in systems if x[0] in args.systems]
            configs.append((clip, option, systems))
    return configs


def bench(args, clips: dict, store: dict, save, log) -> None:
    """Run every planned configuration missing from store["configs"], rounds interleaved; ``save``
    after every run, so an interrupted bench keeps what it measured."""
    for clip, option, systems in plan(args):
        key = f"{clip}/{option}"
        if key in store["configs"]:
            continue
        runs = store["partial"] = {s: [] for s, *_ in systems}
        for round_ in range(max(r for *_, r in systems)):
            for system, python, model, rounds in systems:
                if round_ >= rounds:
                    continue
                timeout = args.paddlex_timeout if system == "paddlex" else args.timeout
                r = run_once(python, system, clips[clip][0], option, args.threads, model, timeout)
                r["load_average"] = os.getloadavg()
                runs[system].append(r)
                log(f"{clip} {option} round {round_ + 1} {system}: wall {r['wall_s']:.2f} s "
                    + (f"rss {r['peak_rss_mib']:.0f} MiB transcribe {_seconds(r.get('transcribe_s'))} s"
                       if "error" not in r else f"ERROR {r['error']}"))
                save(f"{key} (incomplete)")
        store["configs"][key] = store.pop("partial")
        save(None)


def _median(runs: list, key: str):
    """The median of ``key`` over the runs that have it (None when none has: the command line has no
    transcription time)."""
    values = [r[key] for r in runs if "error" not in r and key in r]
    return statistics.median(values) if values else None


def _seconds(value) -> str:
    """A time for the table, or '-' when the system does not report it."""
    return "-" if value is None else f"{value:.2f}"


def table(configs: dict, clips: dict) -> str:
    """The markdown table: per configuration and system, medians and ratios to numwhisper."""
    lines = ["| clip | option | system | runs | windows | wall s (median) | RTF (audio s / wall s) | transcribe s | "
             "peak RSS MiB | wall / numwhisper | transcribe / numwhisper | min wall s | min wall / numwhisper's | "
             "language | text (start) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, runs in configs.items():
        clip, option = key.split("/")[0], key.split("/")[1].split(" ")[0]
        seconds = sf.info(str(clips[clip][0])).duration
        base = runs.get("numwhisper", [])
        base_wall, base_tr = _median(base, "wall_s"), _median(base, "transcribe_s")
        base_min = min((r["wall_s"] for r in base if "error" not in r), default=None)
        for system, rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            if not ok:
                lines.append(f"| {clip} | {option} | {system} | 0/{len(rs)} | - | - | - | - | - | - | - | - | - | - | "
                             f"{rs[0].get('error') if rs else 'not run'} |")
                continue
            wall, tr, rss = _median(rs, "wall_s"), _median(rs, "transcribe_s"), max(r["peak_rss_mib"] for r in ok)
            low = min(r["wall_s"] for r in ok)  # the run least slowed by other load
            ratio = f"{wall / base_wall:.2f}" if base_wall else "-"
            ratio_tr = f"{tr / base_tr:.2f}" if base_tr and tr is not None else "-"
            text = ok[0]["text"].strip().replace("|", "/")[:40]
            lines.append(f"| {clip} | {option} | {system} | {len(ok)}/{len(rs)} | {ok[0].get('windows', '-')} | "
                         f"{wall:.2f} | {seconds / wall:.2f} | "
                         f"{_seconds(tr)} | {rss:.0f} | {ratio} | {ratio_tr} | {low:.2f} | "
                         f"{(f'{low / base_min:.2f}' if base_min else '-')} | {ok[0]['language']} | {text} |")
    return "\n".join(lines)


def render(store: dict, clips: dict, args) -> str:
    """The markdown report of everything in the store."""
    sessions = "; ".join(f"{x['started']} to {x.get('ended', '(interrupted)')}, load averages (1, 5, 15 min) "
                         f"before {x['load_before']}, after {x.get('load_after', '-')}" for x in store["sessions"])
    configs = dict(store["configs"])
    if store.get("partial"):
        configs[f"{store['partial_key']}"] = store["partial"]
    return "\n".join([
        f"# numwhisper vs peers (whisper base, {args.threads} threads, fp32 unless marked)",
        "",
        f"`python bench/run.py --reps {args.reps} --long-reps {args.long_reps} --threads {args.threads}` on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs. Sessions: {sessions}.",
        "",
        "Wall = whole process (import + model load + transcription, spawn to exit); transcribe = the "
        "transcription call alone (audio reading included; '-' for numwhisper-cli, the command line "
        "`python -m numwhisper CLIP -f json`, timed only as a whole); numwhisper = its API in PaddleX's "
        "mode, numwhisper-openai = the same API with `compat=\"openai\"` (openai-whisper's long-form "
        "loop); peak RSS from wait4; medians over the runs "
        "(systems interleaved run by run within each configuration; each run's load average is in the "
        "JSON); min wall = the fastest run, the one least slowed by the other work on the machine; windows = "
        "30 s windows that produced segments (distinct segment seeks, first run): PaddleX's long-form rule, "
        "which numwhisper keeps, resumes at the last timestamp pair and so may decode a tail window that "
        "openai-whisper's newer rule (faster-whisper, numwhisper-openai) skips. Temperature 0 without "
        "fallback, language detected by each system on the first 30 s, previous text as prompt.",
        "",
        "Clips: " + "; ".join(f"`{k}` {sf.info(str(v[0])).duration:.1f} s: {v[1]}" for k, v in clips.items()) + ".",
        "",
        table(configs, clips),
        "",
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--long-reps", type=int, default=2, help="runs per system on the 5-minute clip")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "numwhisper-bench")
    parser.add_argument("--corpus", type=Path, default=prepare.DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "peers.md")
    parser.add_argument("--python", default=sys.executable, help="interpreter with numwhisper, faster-whisper, "
                        "openai-whisper and torch")
    parser.add_argument("--paddlex-python", default="/work/refenv/bin/python", help="'' to leave PaddleX out")
    parser.add_argument("--paddle-dir", default="/work/models/paddle/whisper_base")
    parser.add_argument("--paddlex-timeout", type=float, default=600)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS)
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    parser.add_argument("--no-micro", action="store_true", help="skip bench/micro.py")
    parser.add_argument("--systems", nargs="+", default=None, help="only these systems (default: all)")
    parser.add_argument("--merge", action="store_true", help="keep the configurations already in the JSON "
                        "beside --out and run only the missing ones")
    parser.add_argument("--render", action="store_true", help="only rewrite --out from its JSON")
    parser.add_argument("--no-warmup", action="store_true", help="skip the uncounted first run of each system "
                        "(it fills Numba's cache and the page cache)")
    args = parser.parse_args(argv)
    if args.paddlex_python and not Path(args.paddlex_python).exists():
        args.paddlex_python = ""
    args.cache.mkdir(parents=True, exist_ok=True)
    clips = prepare.make_clips(args.cache, args.corpus)
    args.ct2_dir = prepare.ct2_dir(args.cache)
    args.numwhisper_model = prepare.numwhisper_model(args.cache)
    args.openai_checkpoint = prepare.openai_checkpoint(args.cache, args.numwhisper_model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path = args.out.with_suffix(".json")
    store = {"configs": {}, "sessions": []}
    if (args.merge or args.render) and json_path.is_file():
        store = json.loads(json_path.read_text(encoding="utf-8"))
        store.pop("partial", None)

    def save(partial_key) -> None:
        store["partial_key"] = partial_key
        json_path.write_text(json.dumps(store, indent=1, ensure_ascii=False), encoding="utf-8")
        args.out.write_text(render(store, clips, args), encoding="utf-8")

    if args.render:
        save(None)
        print(args.out.read_text(encoding="utf-8"))
        return
    with open(args.out.with_suffix(".log"), "a", encoding="utf-8") as log_file:
        def log(msg: str) -> None:
            line = f"{time.strftime('%H:%M:%S')} {msg}"
            print(line, flush=True)
            log_file.write(line + "\n")
            log_file.flush()

        if not args.no_warmup:
            for system, python, model, _ in plan(args)[0][2]:
                if system != "paddlex":
                    r = run_once(python, system, clips["zh20"][0], "greedy", args.threads, model, args.timeout)
                    log(f"warm-up {system} (zh20 greedy, not counted): wall {r['wall_s']:.2f} s"
                        + (f" ERROR {r['error']}" if "error" in r else ""))
        session = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "load_before": [round(x, 2) for x in os.getloadavg()]}
        store["sessions"].append(session)
        log(f"start; load averages {session['load_before']}")
        bench(args, clips, store, save, log)
        session.update(ended=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       load_after=[round(x, 2) for x in os.getloadavg()])
        save(None)
        log(f"done; load averages {session['load_after']}")
    print(args.out.read_text(encoding="utf-8"))
    if not args.no_micro:
        subprocess.run([args.python, str(REPO / "bench" / "micro.py"), "--threads", str(args.threads),
                        "--out", str(args.out.with_name("micro.md"))], check=False, cwd=str(REPO))

if __name__ == "__main__":
    main()
