"""What long-form decoding settings do to a 60-minute recording: collapse, a recurring phrase, word errors.

    .venv/bin/python bench/archive_quality.py [--models tiny.en base] [--settings a b c d e] [--no-beam5]
        [--work /tmp/numwhisper-archive] [--rerun]

The issue "Archives": on a 60-minute file of corpus speech, tiny.en greedy with PaddleX's defaults
collapsed from 833 s to the end into one word per window, and found the JFK clip 2 times of 15.

Input: a deterministic 60-minute 16 kHz mono FLAC (PCM_16) of the shared corpus' English clips
(``en_*.wav``), each followed by 0.5 s of silence. ``en_jfk.wav`` starts exactly at 120 s + k * 240 s
(k = 0..14: every 4 minutes, 15 times); the time between is filled with the other clips in file-name
order, cycling; when the next clip would run past the next JFK start (or the end), the first later
clip in the cycle that fits is taken instead and moved to the back of the cycle, and when none fits
the rest is silence (a few seconds at most, reported). The layout (clip, start second) is written
beside the file, and the reference transcript is the clips' texts from ``manifest.tsv`` in that order.

Each run is ``python -m numwhisper FILE --model M --beam_size None --language en --verbose False
--output_dir D --output_format json`` plus one setting:

  a. nothing else (PaddleX's defaults: one temperature, conditioned on the previous text);
  b. ``--condition_on_previous_text False``;
  c. ``--temperature_increment_on_fallback 0.2`` (temperatures 0, 0.2 .. 1.0 tried in turn while a
     window's result is too repetitive or too unlikely, as openai-whisper's defaults do);
  d. b and c together;
  e. ``--compat openai``: openai-whisper's pipeline, with its defaults for every option not on the
     command (temperature fallback with 5 samples per temperature above 0, its seek and silence rules).

for tiny.en and base greedy, then base with ``--beam_size 5`` for a, d and e (``--no-beam5`` skips them;
base beam 5 with e is openai-whisper's command-line defaults as a whole).
One run per configuration (each takes minutes); the runs go one after another, never two at once.

Measured per run, from the JSON file it writes:

- segments: how many;
- JFK found: of the 15 JFK placements, those where the segments overlapping the placement's time
  span, their texts joined, contain "ask not what your country" (lower-cased, punctuation dropped,
  spaces collapsed: so a case, comma or line-break difference still matches, a wrong word does not);
- collapse from: the output is cut into 30 s bins by segment start; a bin is degenerate when its
  segments hold <= 2 words or one word repeated; "collapse from" is the start of the first bin from
  which every bin to the end of the file is degenerate ("none" when the last bin is not). The count
  of degenerate bins (of 120) is given as well, since a collapse can also end;
- WER: word-level edit distance (written here) between the reference concatenation and the
  transcript's text, both lower-cased with punctuation removed, over the reference's word count (the
  reference spells numbers and titles as the datasets do, "1455", "Mr.", so a perfect transcript
  still scores a little above 0);
- fallbacks: segments decoded at a temperature above 0;
- wall: seconds of the whole process (import, model load, transcription, exit).

The code run is this working tree as it is when the script starts (uncommitted changes included): its
``numwhisper`` package is copied into the work folder and run from there (``PYTHONPATH``), so edits
made meanwhile reach no run. Each run's record (with the HEAD and sources digest it ran) is kept in
the work folder (``runs/*.json``) and reused unless ``--rerun``; the page
``bench/results/archive_quality.md`` is written after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_audio import describe_new_tree, snapshot_tree, source_digest  # noqa: E402  (bench/ is not a package)

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_WORK = Path("/tmp/numwhisper-archive")
DEFAULT_OUT = REPO / "bench" / "results" / "archive_quality.md"
SAMPLE_RATE = 16000
GAP_SAMPLES = SAMPLE_RATE // 2  # 0.5 s of silence after each clip
JFK = "en_jfk.wav"
JFK_FIRST_S = 120
JFK_EVERY_S = 240
JFK_PHRASE = "ask not what your country"
BIN_S = 30
SETTINGS = {
    "a": ("PaddleX defaults", []),
    "b": ("--condition_on_previous_text False", ["--condition_on_previous_text", "False"]),
    "c": ("--temperature_increment_on_fallback 0.2", ["--temperature_increment_on_fallback", "0.2"]),
    "d": ("b + c", ["--condition_on_previous_text", "False", "--temperature_increment_on_fallback", "0.2"]),
    "e": ("--compat openai", ["--compat", "openai"]),
}
BEAM5_SETTINGS = ("a", "d", "e")
PLAIN = {  # each setting in plain words, for the recommendation
    "a": "keep PaddleX's defaults",
    "b": "stop giving each window the previous windows' text as its prompt",
    "c": "keep giving each window the previous text, but let a window whose text repeats itself or is unlikely "
         "be decoded again at rising temperatures",
    "d": "stop giving each window the previous text, and let a window whose text repeats itself or is unlikely "
         "be decoded again at rising temperatures",
    "e": "run openai-whisper's pipeline with its defaults (`--compat openai`)",
}


def say(message: str) -> None:
    """A progress line, flushed at once."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------- input

def read_manifest(corpus: Path) -> dict:
    """{file name: reference text} of the corpus' English clips."""
    rows = (line.split("\t") for line in (corpus / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:])
    return {r[0]: r[3] for r in rows if len(r) > 3 and r[1] == "en" and (corpus / "audio" / r[0]).is_file()}


def read_int16(path: Path) -> np.ndarray:
    """A 16 kHz mono PCM clip as int16 [N]."""
    audio, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE or audio.shape[1] != 1:
        raise ValueError(f"{path}: {rate} Hz, {audio.shape[1]} channels; expected 16 kHz mono")
    return audio[:, 0]  # [N]


def jfk_starts(total_s: int) -> list:
    """JFK's start seconds: JFK_FIRST_S, then every JFK_EVERY_S while it still starts before the end."""
    return list(range(JFK_FIRST_S, total_s, JFK_EVERY_S))


def plan_layout(lengths: dict, total_s: int) -> tuple:
    """([(clip, start sample)], silence samples added) for ``total_s`` seconds: JFK at its fixed starts, the
    other clips (``lengths``: {name: samples incl. the gap}) filling the time between, as the docstring says."""
    cycle = [name for name in sorted(lengths) if name != JFK]
    layout, t, padded = [], 0, 0
    stops = [s * SAMPLE_RATE for s in jfk_starts(total_s)] + [total_s * SAMPLE_RATE]
    for n, stop in enumerate(stops):
        while True:
            fits = next((i for i, name in enumerate(cycle) if t + lengths[name] <= stop), None)
            if fits is None:
                break
            name = cycle.pop(fits)
            cycle.append(name)
            layout.append((name, t))
            t += lengths[name]
        padded += stop - t
        t = stop
        if n < len(stops) - 1:
            layout.append((JFK, t))
            t += lengths[JFK]
    return layout, padded


def write_layout(path: Path, layout: list, clips: dict, total_s: int) -> None:
    """Write the layout's clips (each with its gap) at their start samples, silence elsewhere, as FLAC."""
    audio = np.zeros(total_s * SAMPLE_RATE, np.int16)  # [N] (115 MB for an hour)
    for name, start in layout:
        audio[start:start + clips[name].shape[0]] = clips[name]
    partial = path.with_name(path.name + ".partial")
    sf.write(str(partial), audio, SAMPLE_RATE, "PCM_16", format="FLAC")
    partial.rename(path)


def archive_file(work: Path, corpus: Path, total_s: int) -> tuple:
    """(FLAC path, layout [{clip, start_s, end_s}], reference text, silence seconds added), built once."""
    texts = read_manifest(corpus)
    clips = {name: read_int16(corpus / "audio" / name) for name in texts}
    lengths = {name: audio.shape[0] + GAP_SAMPLES for name, audio in clips.items()}
    layout, padded = plan_layout(lengths, total_s)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"archive_{total_s}s.flac"
    if not (path.is_file() and sf.info(str(path)).frames == total_s * SAMPLE_RATE):
        say(f"writing {path.name} ({len(layout)} clips)")
        write_layout(path, layout, clips, total_s)
    placed = [{"clip": name, "start_s": start / SAMPLE_RATE, "end_s": (start + clips[name].shape[0]) / SAMPLE_RATE}
              for name, start in layout]
    (work / f"archive_{total_s}s.layout.json").write_text(json.dumps(placed, indent=1))
    reference = " ".join(texts[p["clip"]] for p in placed)
    return path, placed, reference, padded / SAMPLE_RATE


# ------------------------------------------------------------------------------------------- runs

def run_key(model: str, beam, setting: str, total_s: int) -> str:
    return f"{total_s}s_{model}_{'greedy' if beam is None else f'beam{beam}'}_{setting}"


def transcribe(audio: Path, tree: Path, model: str, beam, setting: str, out_dir: Path, timeout: float) -> dict:
    """One whole ``python -m numwhisper`` process of ``tree``'s code -> {"wall_s", "result", ...}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(PYTHON), "-m", "numwhisper", str(audio), "--model", model, "--beam_size", str(beam),
           "--language", "en", "--verbose", "False", "--output_dir", str(out_dir), "--output_format", "json",
           *SETTINGS[setting][1]]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=out_dir,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    written = json.loads((out_dir / f"{audio.stem}.json").read_text())
    result = written.get("result", written)  # PaddleX's {"result": ...}; with --compat openai, openai-whisper's dict
    return {"wall_s": wall, "load": load, "command": " ".join(cmd[1:]), "result": result}


def warm_up(tree: Path, clip: Path) -> None:
    """One uncounted run on a short clip: Numba compiles the copied package's kernels into its cache."""
    subprocess.run([str(PYTHON), "-m", "numwhisper", str(clip), "--model", "tiny.en", "--language", "en",
                    "--verbose", "False"], env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree,
                   stdout=subprocess.DEVNULL, check=True)


def code_label(tree: Path) -> str:
    """Which code a run used: HEAD, uncommitted files and the copied sources' digest."""
    return f"{describe_new_tree()}, sources digest {source_digest(tree)}"


# ------------------------------------------------------------------------------------------- measures

def words(text: str) -> list:
    """Lower-case words, apostrophes dropped, other punctuation a space."""
    return re.sub(r"[^a-z0-9 ]", " ", text.lower().replace("'", "").replace("\u2019", "")).split()


def edit_distance(ref: list, hyp: list) -> int:
    """Word-level Levenshtein distance, one reference word per row, each row in NumPy.

    A row's insertions (``new[j] = min(new[j], new[j - 1] + 1)``) are a running minimum of
    ``new[j] - j``, plus j."""
    vocab: dict = {}
    r = np.array([vocab.setdefault(w, len(vocab)) for w in ref], np.int64)  # [R]
    h = np.array([vocab.setdefault(w, len(vocab)) for w in hyp], np.int64)  # [H]
    col = np.arange(len(h) + 1, dtype=np.int64)  # [H + 1]
    row = col.copy()  # distances from the empty reference prefix
    for i, word in enumerate(r, 1):
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[:-1] + (h != word), row[1:] + 1)  # substitution / match, deletion
        row = np.minimum.accumulate(new - col) + col  # insertions
    return int(row[-1])


def jfk_found(segments: list, layout: list) -> int:
    """How many JFK placements have overlapping segments whose joined text contains JFK_PHRASE."""
    phrase = " ".join(words(JFK_PHRASE))
    found = 0
    for place in (p for p in layout if p["clip"] == JFK):
        over = [s["text"] for s in segments if s["start"] < place["end_s"] and s["end"] > place["start_s"]]
        found += phrase in " ".join(words(" ".join(over)))
    return found


def degenerate_bins(segments: list, total_s: int) -> list:
    """For each 30 s bin (by segment start): True when its words are <= 2 or one word repeated."""
    bins = [[] for _ in range(-(-total_s // BIN_S))]
    for s in segments:
        bins[min(int(s["start"] // BIN_S), len(bins) - 1)] += words(s["text"])
    return [len(b) <= 2 or len(set(b)) == 1 for b in bins]


def collapse_from(degenerate: list):
    """Start second of the first bin from which every bin is degenerate; None when the last one is not."""
    first = None
    for i in range(len(degenerate) - 1, -1, -1):
        if not degenerate[i]:
            break
        first = i
    return None if first is None else first * BIN_S


def collapse_words(segments: list, since_s) -> str:
    """The three commonest words of the segments from ``since_s`` on ("" without a collapse)."""
    if since_s is None:
        return ""
    counts: dict = {}
    for s in segments:
        if s["start"] >= since_s:
            for w in words(s["text"]):
                counts[w] = counts.get(w, 0) + 1
    return ", ".join(f'"{w}"' for w in sorted(counts, key=lambda w: -counts[w])[:3])


def measure(record: dict, layout: list, reference: str, total_s: int) -> dict:
    """The table's numbers of one run."""
    segments = record["result"]["segments"]
    ref, hyp = words(reference), words(record["result"]["text"])
    degenerate = degenerate_bins(segments, total_s)
    collapse_s = collapse_from(degenerate)
    return {"segments": len(segments), "jfk": jfk_found(segments, layout), "collapse_s": collapse_s,
            "collapse_words": collapse_words(segments, collapse_s), "degenerate": sum(degenerate),
            "bins": len(degenerate), "errors": edit_distance(ref, hyp),
            "ref_words": len(ref), "hyp_words": len(hyp),
            "fallbacks": sum(1 for s in segments if s.get("temperature", 0) > 0),
            "wall_s": record["wall_s"], "load": record["load"], "code": record.get("code", "?")}


# ------------------------------------------------------------------------------------------- report

def planned_runs(models: list, settings: list, beam5: bool) -> list:
    """[(model, beam, setting)] in the order they run: each model greedy, then base beam 5."""
    runs = [(m, None, s) for m in models for s in settings]
    if beam5 and "base" in models:
        runs += [("base", 5, s) for s in BEAM5_SETTINGS if s in settings]
    return runs


def row(model: str, beam, setting: str, m: dict, n_jfk: int) -> str:
    collapse = "none" if m["collapse_s"] is None else f"{m['collapse_s']} s"
    return (f"| {model} | {'greedy' if beam is None else f'beam {beam}'} | {setting}. {SETTINGS[setting][0]} | "
            f"{m['segments']} | {m['jfk']}/{n_jfk} | {collapse} | {m['degenerate']}/{m['bins']} | "
            f"{wer(m):.1f}% | {m['hyp_words']} | {m['fallbacks']} | {m['wall_s']:.0f} s | {m['load']:.1f} |")


def report(measured: list, missing: list, layout: list, padded_s: float, total_s: int, audio: Path) -> str:
    """The markdown page: input, table, definitions, recommendation."""
    n_jfk = sum(p["clip"] == JFK for p in layout)
    ref_words = measured[0][3]["ref_words"] if measured else 0
    lines = [
        f"# Long-form settings on a {total_s // 60}-minute recording (issue \"Archives\")",
        "",
        f"Written by `bench/archive_quality.py` on {time.strftime('%Y-%m-%d %H:%M')}; 2 cores shared with "
        "other work (the load column is the 1-minute load average as the run started), numwhisper's default "
        "threads, 1 run per configuration (after one uncounted warm-up run that fills Numba's cache).",
        "",
        f"Input: `{audio.name}`, {total_s} s of 16 kHz mono FLAC: {len(layout)} placements of "
        f"{len({p['clip'] for p in layout})} English corpus clips, en_jfk.wav at {JFK_FIRST_S} s + k x "
        f"{JFK_EVERY_S} s ({n_jfk} times), 0.5 s of silence after each clip, {padded_s:.1f} s of extra silence "
        f"in all before the JFK starts and the end. Reference: {ref_words} words.",
        "",
        "Code (the working tree's numwhisper package, copied when the script started): " + code_lines(measured),
        "",
        "The issue's own file (not available here) collapsed with tiny.en's defaults from 833 s (171 segments, "
        "JFK found twice; 11 times with `--condition_on_previous_text False`). This file is built differently, "
        "so the collapse starts elsewhere, but it is the same failure.",
        "",
        "Command: `python -m numwhisper FILE --model M --beam_size None|5 --language en --verbose False "
        "--output_dir D --output_format json` + the setting.",
        "",
        "| model | decoding | setting | segments | JFK found | collapse from | degenerate bins | WER | words | "
        "fallbacks | wall | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[row(model, beam, setting, m, n_jfk) for model, beam, setting, m in measured],
        "",
    ]
    if missing:
        lines += ["Not run: " + ", ".join(f"{m} {'greedy' if b is None else f'beam {b}'} {s}" for m, b, s in missing)
                  + ".", ""]
    lines += [
        "Columns: JFK found = placements whose overlapping segments, texts joined, contain "
        f"\"{JFK_PHRASE}\" (lower-cased, punctuation dropped); collapse from = start of the first 30 s bin "
        "(segments binned by start) from which every bin to the end holds <= 2 words or one word repeated "
        "(\"none\": the last bin is not degenerate); degenerate bins = such bins anywhere; WER = word-level "
        "edit distance to the reference concatenation over its word count (lower-cased, punctuation removed; "
        "the datasets' spellings such as \"1455\" or \"Mr.\" keep it above 0 even for a perfect transcript); "
        "words = the transcript's words (the reference has " + str(ref_words) + "; most of the WER is whole clips "
        "left out, which every setting does); fallbacks = segments decoded at a temperature above 0; wall = the "
        "whole process.",
        "",
        "Setting c is temperature fallback as openai-whisper does it (0, 0.2 .. 1.0 while a window's result "
        "is too repetitive or too unlikely; from 0.5 up the next window is not conditioned on it) inside "
        "PaddleX's pipeline. Setting e is openai-whisper's pipeline as a whole (`--compat openai`): the same "
        "temperatures, best of 5 samples at each temperature above 0, no fallback for a window that looks "
        "silent, and its seek rules.",
        "",
        "## Recommendation",
        "",
        "Rule: of the settings with no collapse in any model, the one changing the fewest options among "
        "those within 1 point of the lowest mean greedy WER (one file cannot tell closer settings apart).",
        "",
        *recommendation(measured, n_jfk),
    ]
    return "\n".join(lines) + "\n"


def code_lines(measured: list) -> str:
    """Each distinct code label with the runs that used it."""
    by_code: dict = {}
    for model, beam, setting, m in measured:
        by_code.setdefault(m["code"], []).append(f"{model} {'greedy' if beam is None else f'beam {beam}'} {setting}")
    return "; ".join(f"{code} ({', '.join(runs)})" for code, runs in by_code.items()) + "."


def wer(m: dict) -> float:
    """Word error rate in percent."""
    return 100 * m["errors"] / m["ref_words"]


def changed_options(setting: str) -> int:
    """How many options a setting changes from PaddleX's defaults."""
    return len(SETTINGS[setting][1]) // 2


def recommended_setting(greedy: dict, models: list) -> tuple:
    """(setting, safe settings, mean WER per setting) among the settings every model ran greedily: of those
    with no collapse in any model, the fewest changed options among those within 1 WER point of the lowest
    mean WER (a single file cannot tell closer settings apart)."""
    common = [s for s in SETTINGS if all((mo, s) in greedy for mo in models)]
    mean = {s: sum(wer(greedy[(mo, s)]) for mo in models) / len(models) for s in common}
    safe = [s for s in common if all(greedy[(mo, s)]["collapse_s"] is None for mo in models)]
    if not safe:
        return None, safe, mean
    lowest = min(mean[s] for s in safe)
    close = [s for s in safe if mean[s] - lowest <= 1.0]
    return min(close, key=lambda s: (changed_options(s), mean[s])), safe, mean


def recommendation(measured: list, n_jfk: int) -> list:
    """Plain-words advice from the numbers (the rule is ``recommended_setting``'s)."""
    greedy = {(mo, s): m for mo, b, s, m in measured if b is None}
    models = list(dict.fromkeys(mo for mo, *_ in measured))
    best, safe, mean = recommended_setting(greedy, models)
    if best is None:
        return ["No setting avoided a collapse with every model; no recommendation."]
    text = []
    for mo in models:
        a = greedy.get((mo, "a"))
        if a and a["collapse_s"] is not None:
            text.append(f"With PaddleX's defaults {mo} collapsed from {a['collapse_s']} s to the end (one or two words "
                        f"per 30 s: {a['collapse_words']}): WER {wer(a):.1f}%, JFK {a['jfk']}/{n_jfk}.")
        elif a:
            text.append(f"With PaddleX's defaults {mo} did not collapse on this file (WER {wer(a):.1f}%, "
                        f"JFK {a['jfk']}/{n_jfk}).")
    effects = "; ".join(f"{mo} {wer(m):.1f}%, JFK {m['jfk']}/{n_jfk}, {m['wall_s']:.0f} s against the defaults' "
                        f"{greedy[(mo, 'a')]['wall_s']:.0f} s"
                        for mo, m in ((mo, greedy[(mo, best)]) for mo in models) if (mo, "a") in greedy)
    text.append(f"For long recordings use setting {best}, `{SETTINGS[best][0]}`: it avoided the collapse with every "
                f"model, and its mean word error rate is within a point of the lowest ({effects}).")
    others = [s for s in safe if s != best]
    for s in others:
        text.append(f"Setting {s} ({SETTINGS[s][0]}) avoided the collapse too, with a mean WER "
                    f"{distance_words(mean[s] - mean[best])} {best}'s ({mean[s]:.1f}% against {mean[best]:.1f}%; wall "
                    + ", ".join(f"{mo} {greedy[(mo, s)]['wall_s']:.0f} s" for mo in models)
                    + f"), changing {changed_options(s)} option{'s' if changed_options(s) != 1 else ''}.")
    unsafe = [s for s in mean if s not in safe]
    if unsafe:
        text.append(f"Setting{'s' if len(unsafe) > 1 else ''} {', '.join(unsafe)} collapsed with at least one model.")
    beam = beam_advice(measured, greedy)
    text += beam
    helped = bool(beam) and "did not help" not in beam[0]
    return [" ".join(text), "", f"In short: {PLAIN[best]}; "
            f"{'beam 5 is worth its cost' if helped else 'greedy decoding is enough'}."]


def distance_words(points: float) -> str:
    """A WER difference in words: "within a point of", "2.3 points above" ..."""
    if abs(points) <= 1:
        return "within a point of"
    return f"{abs(points):.1f} points {'above' if points > 0 else 'below'}"


def beam_advice(measured: list, greedy: dict) -> list:
    """One sentence on beam 5 against greedy, from the runs that have both."""
    pairs = [(mo, s, m, greedy[(mo, s)]) for mo, b, s, m in measured if b is not None and (mo, s) in greedy]
    if not pairs:
        return []
    detail = "; ".join(f"{mo} {s}: {wer(m):.1f}% against {wer(g):.1f}%, {m['wall_s'] / g['wall_s']:.1f}x the wall"
                       for mo, s, m, g in pairs)
    better = all(wer(m) < wer(g) - 0.5 for *_, m, g in pairs)
    return [f"Beam 5 {'helped' if better else 'did not help'} on this file ({detail})."]


# ------------------------------------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder for the audio, outputs and run records")
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--no-beam5", dest="beam5", action="store_false", help="skip base with beam 5 (a, d and e)")
    p.add_argument("--minutes", type=int, default=60, help="length of the recording (a smoke test: fewer)")
    p.add_argument("--rerun", action="store_true", help="run again even when a run's record exists")
    p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds one run may take")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    total_s = args.minutes * 60
    (args.work / "runs").mkdir(parents=True, exist_ok=True)
    audio, layout, reference, padded_s = archive_file(args.work, args.corpus, total_s)
    say(f"{audio}: {len(layout)} clips, {padded_s:.1f} s of extra silence, {len(words(reference))} reference words")
    tree = snapshot_tree(args.work)
    code = code_label(tree)
    say(f"code: {code}")
    warmed = False
    runs = planned_runs(args.models, args.settings, args.beam5)
    measured = []
    for n, (model, beam, setting) in enumerate(runs, 1):
        key = run_key(model, beam, setting, total_s)
        record_path = args.work / "runs" / f"{key}.json"
        if args.rerun or not record_path.is_file():
            if not warmed:
                say("warm-up run")
                warm_up(tree, args.corpus / "audio" / JFK)
                warmed = True
            say(f"run {n}/{len(runs)}: {key} ...")
            record = {**transcribe(audio, tree, model, beam, setting, args.work / "out" / key, args.timeout),
                      "code": code}
            record_path.write_text(json.dumps(record))
        else:
            say(f"run {n}/{len(runs)}: {key} (kept record)")
            record = json.loads(record_path.read_text())
        m = measure(record, layout, reference, total_s)
        measured.append((model, beam, setting, m))
        say(f"{key}: {m['segments']} segments, JFK {m['jfk']}, collapse {m['collapse_s']}, "
            f"WER {wer(m):.1f}%, {m['wall_s']:.0f} s")
        missing = runs[n:]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(measured, missing, layout, padded_s, total_s, audio))
    print(args.out.read_text(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
