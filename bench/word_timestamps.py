"""What word timestamps cost: each system with and without them, side by side in one run.

    python bench/word_timestamps.py [--reps 3] [--long-reps 2] [--threads 2] [--out bench/results/word_timestamps.md]

numwhisper (base, NumPy backend), faster-whisper (CTranslate2 float32) and openai-whisper (PyTorch
float32) transcribe the 30 s English clip and the 5-minute mixed-language clip of ``prepare`` with
``word_timestamps`` off and on, every run a fresh process (``worker.py --words``). Within a round
the runs are interleaved, off and on of one system next to each other, so both see the same machine.
The table gives medians: whole-process wall, the transcription call alone, peak RSS, words returned,
and the ratio on/off of each. openai-whisper runs the 5-minute clip in the first round only (it takes
minutes there). Decoding is beam 5 at temperature 0 with no fallback, as in ``run.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prepare  # noqa: E402
from run import REPO, run_once  # noqa: E402

SYSTEMS = ("numwhisper", "faster-whisper-fp32", "openai-whisper")
CLIPS = ("en30", "long300")
OPTION = "beam5"


def median(runs: list, key: str):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def render(store: dict, clips: dict, args) -> str:
    lines = [f"# Word timestamps: what they add (beam 5, {args.threads} threads, base)", "",
             f"Python {platform.python_version()}, {platform.machine()}; medians of whole-process runs, "
             "interleaved off/on per system. `call` is the transcription call alone (model loaded).", "",
             "| clip | system | runs | wall off | wall on | wall on/off | call off | call on | call on/off | "
             "peak RSS off / on (MiB) | words |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for clip in CLIPS:
        for system in SYSTEMS:
            off, on = store.get(f"{clip}/{system}/off", []), store.get(f"{clip}/{system}/on", [])
            if not off or not on:
                continue
            wall = (median(off, "wall_s"), median(on, "wall_s"))
            call = (median(off, "transcribe_s"), median(on, "transcribe_s"))
            rss = (median(off, "peak_rss_mib"), median(on, "peak_rss_mib"))
            lines.append(f"| {clip} | {system} | {len(on)} | {wall[0]:.2f} s | {wall[1]:.2f} s | "
                         f"{wall[1] / wall[0]:.3f} | {call[0]:.2f} s | {call[1]:.2f} s | {call[1] / call[0]:.3f} | "
                         f"{rss[0]:.0f} / {rss[1]:.0f} | {median(on, 'n_words'):.0f} |")
    lines += ["", "Clips: " + "; ".join(f"`{name}` {desc}" for name, (_, desc) in clips.items() if name in CLIPS), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="rounds on the 30 s clip")
    parser.add_argument("--long-reps", type=int, default=2, help="rounds on the 5-minute clip")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter with numwhisper, faster-whisper and openai-whisper (bench/README.md)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "numwhisper-bench")
    parser.add_argument("--corpus", type=Path, default=prepare.DEFAULT_CORPUS)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "word_timestamps.md")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    clips = prepare.make_clips(args.cache, args.corpus)
    models = {"numwhisper": str(prepare.numwhisper_model(args.cache)),
              "faster-whisper-fp32": str(prepare.ct2_dir(args.cache)),
              "openai-whisper": str(prepare.openai_checkpoint(args.cache, prepare.numwhisper_model(args.cache)))}
    store: dict = {}
    for system in SYSTEMS:  # uncounted: Numba's cache and the page cache warm for every system alike
        run_once(args.python, system, clips["zh20"][0], "greedy", args.threads, models[system], args.timeout)
    for clip in CLIPS:
        rounds = args.long_reps if clip == "long300" else args.reps
        for round_index in range(rounds):
            for system in SYSTEMS:
                if clip == "long300" and system == "openai-whisper" and round_index > 0:
                    continue
                for words in (False, True):
                    extra = ("--words",) if words else ()
                    run = run_once(args.python, system, clips[clip][0], OPTION, args.threads, models[system],
                                   args.timeout, extra)
                    key = f"{clip}/{system}/{'on' if words else 'off'}"
                    print(key, json.dumps({k: run.get(k) for k in ("wall_s", "transcribe_s", "peak_rss_mib",
                                                                   "n_words", "error")}), flush=True)
                    if "error" not in run:
                        store.setdefault(key, []).append(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(store, indent=1, ensure_ascii=False) + "\n")
    args.out.write_text(render(store, clips, args))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
