"""Hostile inputs and failing outputs, as an adversarial user meets them: one ``error:`` line naming the
input, exit 2, the batch goes on, memory stays bounded, nothing half-written is left.

The files come from ``hostile`` (seeded, built from the JFK clip). The fuzz corpus runs in its own
process (``fuzz_inputs.py``) under an address-space limit, so an unbounded allocation fails that
process rather than the machine. The service's answers to the same files are in test_server.py.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import hostile
from numwhisper.audio import checked_samples, load_audio
from numwhisper.errors import InputError, printable
from numwhisper.mel import MAX_SAMPLE_MAGNITUDE, N_FFT, log_mel_spectrogram
from samples import JFK, words

MAX_BATCH_RSS = 2 << 30    # the CLI batch of hostile files with one good one
MAX_CASE_RSS = 1 << 30     # any one fuzz case, model loaded (the first encoder memo included)
FUZZ_TIMEOUT_S = 600
HERE = Path(__file__).resolve().parent

def run_measured(args, **kwargs) -> tuple:
    """Run a command in a child that reports its children's peak RSS -> (CompletedProcess, peak bytes)."""
    wrapper = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr); "
               "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], capture_output=True, text=True, **kwargs)
    *stderr, peak = done.stderr.rstrip("\n").split("\n")
    done.stderr = "\n".join(stderr) + ("\n" if stderr else "")
    return done, int(peak)


def numwhisper_command(model, *args):
    return [sys.executable, "-m", "numwhisper", "--model", model, "--beam_size", "None", "--language", "en", *args]


# ------------------------------------------------------------------------------------------ the CLI

def test_a_hostile_batch_gives_one_line_each_and_transcribes_the_good_files(repo, model_files, tmp_path):
    folder, odd = tmp_path / "in", tmp_path / "odd"  # files a directory expands to; inputs named one by one
    folder.mkdir()
    odd.mkdir()
    for name, data in hostile.named_cases(repo).items():
        (folder / name).write_bytes(data)
    x = hostile.clip(repo)
    (folder / "clean.mp3").write_bytes(hostile.encoded(x, "mp3"))  # libmpg123 complains even of this one
    flac = hostile.encoded(x, "flac")
    (folder / "truncated.flac").write_bytes(flac[:len(flac) * 3 // 4])
    (odd / "loop.wav").symlink_to(odd / "loop.wav")
    os.mkfifo(odd / "pipe.wav")
    (odd / "new\nline.wav").write_bytes(b"not audio")
    refused = {**{str(folder / name): cause for name, cause in hostile.REFUSED.items()},
               str(odd / "loop.wav"): "a loop of symbolic links",
               str(odd / "pipe.wav"): "is a named pipe (FIFO)",
               str(odd / "new\nline.wav"): "not a readable audio file",
               "/dev/zero": "is a character device"}
    good = ["clean.mp3", "truncated.flac", "wav-frames-max.wav", Path(JFK).name]

    done, peak = run_measured(numwhisper_command(model_files["tiny.en"], folder, repo / JFK, *sorted(odd.iterdir()),
                                                 "/dev/zero"), cwd=repo, timeout=600)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == len(refused), done.stderr  # nothing else: no decoder chatter, no warnings
    for path, cause in refused.items():
        [line] = [line for line in lines if line.startswith(f"error: {printable(path)}: ")]
        assert cause in line, line
    texts = {Path(r["res"]["input_path"]).name: r["res"]["result"]["text"] for r in printed(done.stdout)}
    assert sorted(texts) == sorted(good)
    for name in good:
        assert words(texts[name]).startswith("and so") and "fellow" in texts[name], (name, texts[name])  # 3 s clips
    assert peak < MAX_BATCH_RSS, f"peak RSS {peak / 2 ** 30:.2f} GiB"


def printed(stdout: str) -> list:
    """The JSON documents the CLI printed one after another."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = stdout.rstrip()
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def test_output_faults_give_one_line_and_leave_no_file(repo, model_files, tmp_path):
    model = model_files["tiny.en"]
    a_file = tmp_path / "taken"
    a_file.write_text("a file where the output directory should be")
    done = subprocess.run(numwhisper_command(model, "--output_dir", a_file, JFK), cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {JFK}: cannot write into {a_file}: it exists and is not a directory"]

    out = tmp_path / "out"
    (out / "en_jfk.srt").mkdir(parents=True)  # a directory where one output file goes
    done = subprocess.run(numwhisper_command(model, "--output_dir", out, "-f", "all", JFK, JFK), cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines == [f"error: {JFK}: cannot write {out}/en_jfk.srt: a directory of that name is in the way"], lines
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["en_jfk.srt", *(f"en_jfk.wav.{ext}" for ext in ("txt", "vtt", "srt", "tsv", "json"))])


def test_a_full_disk_leaves_no_partial_file(repo, model_files, tmp_path):
    out = tmp_path / "small"
    out.mkdir()
    # A private mount namespace with an 8 KiB tmpfs: two pages, so the third output file cannot be written.
    command = " ".join(f"'{part}'" for part in numwhisper_command(model_files["tiny.en"], "--output_dir", out,
                                                                   "-f", "all", JFK))
    script = f"mount -t tmpfs -o size=8k tmpfs '{out}' && {command}; echo \"exit=$?\"; ls -A '{out}'"
    done = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script], cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert re.fullmatch(f"error: {JFK}: cannot write {out}/en_jfk\\.(txt|vtt|srt|tsv|json): No space left on device",
                        line), line
    report = done.stdout[done.stdout.rindex("exit="):].split()
    assert report == ["exit=2"], report  # and ls listed nothing: no temporary or final file is left


# --------------------------------------------------------------------------------------- the library

def test_samples_beyond_the_mel_bound_are_refused_and_those_within_give_a_finite_mel(jfk):
    square = np.sign(np.sin(np.arange(16000) / 7)).astype(np.float32)  # [16000] full-scale square wave
    assert np.isfinite(log_mel_spectrogram(square * np.float32(MAX_SAMPLE_MAGNITUDE))).all()
    assert np.isfinite(log_mel_spectrogram(square * np.float32(MAX_SAMPLE_MAGNITUDE), n_mels=128)).all()
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(log_mel_spectrogram(square * np.float32(1e20))).all()  # the bound is needed
    checked_samples(square * np.float32(MAX_SAMPLE_MAGNITUDE), "ok")
    with pytest.raises(InputError, match=r"^loud: samples reach 1e\+20, too large for the log-mel"):
        load_audio(jfk / np.abs(jfk).max() * np.float32(1e20), name="loud")
    assert MAX_SAMPLE_MAGNITUDE == pytest.approx(np.sqrt(np.finfo(np.float32).max) / N_FFT, rel=1e-7)


def test_limits_apply_to_arrays_and_files_alike(tmp_path, jfk):
    from numwhisper.inputs import AudioLimits
    limits = AudioLimits(max_seconds=5)
    with pytest.raises(InputError, match=r"audio too long \(11\.0 s; the limit is 5 s"):
        load_audio(jfk, limits=limits)
    path = tmp_path / "unknown-length.flac"
    data = hostile.flac_total_samples(hostile.encoded(jfk, "flac"), 0)  # 0: the length is not declared
    path.write_bytes(data)
    assert soundfile.info(path).frames > 2 ** 62
    with pytest.raises(InputError, match=r"more than 5 s decode"):
        load_audio(path, limits=limits)
    assert np.array_equal(load_audio(path), load_audio(hostile.encoded(jfk, "flac")))


def test_a_damaged_flac_gives_the_part_before_the_damage(jfk):
    data = hostile.encoded(jfk, "flac")
    whole = load_audio(data)  # [N]
    for cut in (len(data) // 2, len(data) - 1):
        part = load_audio(data[:cut])  # [M <= N]
        assert 0.3 * len(whole) < len(part) < len(whole)
        assert np.array_equal(part, whole[:len(part)])


# ------------------------------------------------------------------------------------- the fuzz corpus

def test_the_fuzz_corpus_gives_a_result_or_one_input_error_in_bounded_memory(repo, model_files):
    done = subprocess.run([sys.executable, str(HERE / "fuzz_inputs.py"), str(model_files["tiny.en"])], cwd=repo,
                          capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", done.stderr[-3000:]  # decoder chatter is captured, never printed
    *cases, summary = [json.loads(line) for line in done.stdout.splitlines()]
    print(json.dumps(summary))
    assert len(cases) >= 200
    others = [case for case in cases if case["outcome"] == "other"]
    assert not others, others[:3]
    for case in cases:
        assert case["peak_rss"] < MAX_CASE_RSS, case
        if case["outcome"] == "InputError":
            assert case["message"].startswith(case["path"] + ": ") and "\n" not in case["message"], case
            assert "not enough memory" not in case["message"], case  # refused before allocating, not after
    sizes = {fmt: len(hostile.encoded(hostile.clip(repo), fmt)) for fmt in hostile.FORMATS}
    late_cuts = [case for case in cases if "-cut" in case["case"] and cut_fraction(case, sizes) >= 0.5]
    assert late_cuts and all(case["outcome"] == "result" for case in late_cuts), \
        [case for case in late_cuts if case["outcome"] != "result"]


def cut_fraction(case, sizes) -> float:
    """How much of its format's file a truncation case kept (from the case's name)."""
    fmt, kept = case["case"].split("-cut")
    return int(kept.split(".")[0]) / sizes[fmt]
