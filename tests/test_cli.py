"""The command line, driven as a user would: a subprocess of ``python -m numwhisper`` (every input
kind, bad inputs and options, progress, devices, the pipeline config), and the progress reports the CLI
draws. Each flag's parsing is in test_cli_options.py; the Python API, in test_api.py."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile

from numwhisper.golden import files as golden
from numwhisper.golden import openai_files as openai_golden
from numwhisper.pipeline import create_pipeline, load_config, transcribe_item
from samples import JFK, JFK_WORDS, words
from server_support import serving

CLIP = "golden/audio/en_ls_1272-128104-0000.wav"


def with_default_sigint():
    """preexec_fn: the child starts with SIGINT's default action (Python's KeyboardInterrupt), also when
    the tests run where SIGINT is ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def numwhisper(repo, *args):
    """Run ``python -m numwhisper`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "numwhisper", *map(str, args)],
                          capture_output=True, text=True, cwd=repo)


def start(repo, *args, stdout=subprocess.PIPE, env=None) -> subprocess.Popen:
    """Start ``python -m numwhisper`` from the repository root without waiting for it (its results go to
    ``stdout``, its errors to a pipe), with Ctrl-C's default action (``with_default_sigint``) and the
    variables in ``env`` added to this process's environment."""
    return subprocess.Popen([sys.executable, "-m", "numwhisper", *map(str, args)], cwd=repo,
                            env=dict(os.environ, **(env or {})), stdout=stdout, stderr=subprocess.PIPE, text=True,
                            preexec_fn=with_default_sigint)


def printed_results(stdout: str) -> list:
    """The JSON documents printed one after another on stdout."""
    decoder, results, pos = json.JSONDecoder(), [], 0
    while pos < len(stdout.rstrip()):
        doc, pos = decoder.raw_decode(stdout, pos)
        results.append(doc)
        while pos < len(stdout) and stdout[pos].isspace():
            pos += 1
    return results


def test_batch_with_a_bad_file_still_writes_the_good_one(repo, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF but not really a wav file")
    done = numwhisper(repo, "--model", "tiny.en", "--beam_size", "None", "--output_dir", tmp_path / "out",
                      "--output_format", "all", bad, CLIP)
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad}")
    [printed] = printed_results(done.stdout)
    text = printed["res"]["result"]["text"]
    assert "apostle of the middle classes" in text
    stem = "en_ls_1272-128104-0000"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{stem}.{ext}" for ext in ("json", "srt", "tsv", "txt", "vtt"))
    assert json.loads((tmp_path / "out" / f"{stem}.json").read_text())["result"]["text"] == text


def test_pipeline_config_round_trip(repo, tmp_path):
    done = numwhisper(repo, "--get_pipeline_config", "multilingual_speech_recognition", "--save_path", tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "multilingual_speech_recognition.yaml"
    config = load_config(path)
    module = config["SubModules"]["MultilingualSpeechRecognition"]
    assert module["model_name"] == "whisper_base" and module["model_dir"] is None
    path.write_text(path.read_text().replace("model_name: whisper_base", "model_name: whisper_tiny.en"))
    pipeline = create_pipeline(str(path), beam_size=None)
    [result] = list(pipeline.predict(input=str(repo / CLIP)))
    assert "apostle" in result["result"]["text"] and result["result"]["language"] == "en"


def test_the_installed_script_runs_the_cli_and_returns_its_status(repo):
    script = Path(sys.executable).parent / "numwhisper"  # pyproject's [project.scripts] entry
    assert script.is_file(), f"{script}: the install did not write the numwhisper script"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0 and "usage" in done.stdout
    done = subprocess.run([str(script), "--model", "huge", CLIP], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown model 'huge'")


def test_the_command_ends_without_teardown_but_a_profiler_still_writes_its_report(repo, tmp_path):
    """Without a tracer the command leaves by os._exit once its outputs are closed: the status, the
    printed result (a pipe, flushed first) and the files are all there. Under ``python -m cProfile``
    it exits normally, so the profiler's report is written."""
    missing = tmp_path / "missing.wav"
    args = ["--model", "tiny.en", "--beam_size", "None", "--output_dir", tmp_path / "out", "-f", "json", CLIP, missing]
    done = numwhisper(repo, *args)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {missing}"), done.stderr
    [printed] = printed_results(done.stdout)
    assert "apostle" in printed["res"]["result"]["text"]
    assert json.loads((tmp_path / "out" / "en_ls_1272-128104-0000.json").read_text()) == printed["res"]
    report = tmp_path / "profile.out"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(report), "-m", "numwhisper", *map(str, args)],
                          capture_output=True, text=True, cwd=repo)
    assert done.stderr.startswith(f"error: {missing}"), done.stderr  # (cProfile reports exit status 0)
    assert report.is_file() and report.stat().st_size > 0


def test_bad_option_and_unknown_model_fail_cleanly(repo):
    done = numwhisper(repo, "--model", "huge", CLIP)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown model 'huge'")
    done = numwhisper(repo, "--task", "summarize", CLIP)
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = numwhisper(repo, "--device", "gpu:0", CLIP)
    assert done.returncode == 2 and "Paddle backend" in done.stderr


def stderr_on_a_terminal(repo, *args) -> str:
    """Run the CLI with stderr attached to a pseudo-terminal; return what it wrote there."""
    import os
    import pty

    leader, follower = pty.openpty()
    done = subprocess.run([sys.executable, "-m", "numwhisper", *map(str, args)], cwd=repo,
                          stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the terminal is closed once everything has been read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert done.returncode == 0
    return b"".join(chunks).decode()


def test_progress_bar_on_a_terminal_only_when_verbose(repo):
    shown = stderr_on_a_terminal(repo, "--model", "tiny.en", "--beam_size", "None", CLIP)
    assert f"[1/1] {CLIP} [" + "#" * 30 + "]    5.8/5.8 s" in shown  # 585 frames
    assert stderr_on_a_terminal(repo, "--model", "tiny.en", "--beam_size", "None", "--verbose", "False", CLIP) == ""
    piped = numwhisper(repo, "--model", "tiny.en", "--beam_size", "None", CLIP)
    assert piped.returncode == 0 and piped.stderr == ""


def test_progress_reports_each_window_of_a_long_clip(tiny_en):
    import io

    from numwhisper.decoding import DecodingOptions
    from numwhisper.inputs import expand_inputs
    from numwhisper.progress import ProgressBar

    calls, stream = [], io.StringIO()
    bar = ProgressBar("long", stream=stream)

    def record(done, total):
        calls.append((done, total))
        bar(done, total)

    [item] = expand_inputs(["golden/audio/en_voxpopuli_long_000.wav"])
    transcribe_item(tiny_en, item, DecodingOptions(beam_size=None), progress=record)
    totals = {total for _, total in calls}
    assert totals == {6924} and len(calls) >= 3
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == 6924
    assert stream.getvalue().endswith("[" + "#" * 30 + "]   69.2/69.2 s")


# ------------------------------------------------------------------ every input kind, through the CLI



def audio_variants(repo, directory):
    """The JFK clip as mp3, ogg/vorbis, opus, flac, 48 kHz stereo float wav and 8 kHz int16 wav."""
    samples, rate = soundfile.read(repo / JFK, dtype="float32")  # [N], 16 kHz
    x48 = scipy.signal.resample_poly(samples, 3, 1).astype(np.float32)  # [3N]
    x8 = scipy.signal.resample_poly(samples, 1, 2).astype(np.float32)  # [N/2]
    specs = {"v.mp3": (samples, rate, "MP3", "MPEG_LAYER_III"), "v.ogg": (samples, rate, "OGG", "VORBIS"),
             "v.opus": (samples, rate, "OGG", "OPUS"), "v.flac": (samples, rate, "FLAC", "PCM_16"),
             "v48k_stereo.wav": (np.stack([x48, 0.5 * x48], axis=1), 48000, "WAV", "FLOAT"),
             "v8k.wav": (x8, 8000, "WAV", "PCM_16")}
    directory.mkdir()
    for name, (data, sample_rate, fmt, subtype) in specs.items():
        soundfile.write(directory / name, data, sample_rate, format=fmt, subtype=subtype)
    return sorted(specs)


def test_every_format_rate_and_a_url_through_the_cli(repo, tmp_path, model_files, tiny_en):
    names = audio_variants(repo, tmp_path / "variants")
    with serving(repo / "golden/audio") as url:
        done = numwhisper(repo, "--model_dir", model_files["tiny.en"], "--beam_size", "None", "--device", "cpu",
                          "--threads", "1", "--input", tmp_path / "variants", "--input", f"{url}/en_jfk.wav",
                          "--save_path", tmp_path / "out", "-f", "txt")
    assert done.returncode == 0, done.stderr
    printed = [doc["res"] for doc in printed_results(done.stdout)]
    assert [Path(r["input_path"]).name for r in printed] == [*names, "en_jfk.wav"]
    for result in printed:
        assert words(result["result"]["text"]).startswith(JFK_WORDS), result
    written = {p.name: p.read_text() for p in (tmp_path / "out").iterdir()}
    # the first "v.*" keeps the stem, later ones keep their whole name so nothing is overwritten
    assert sorted(written) == sorted(["v.txt", *(n + ".txt" for n in names[1:4]), "v48k_stereo.txt", "v8k.txt",
                                      "en_jfk.txt"])
    reference = api_result(tiny_en, repo / JFK)
    by_name = {Path(r["input_path"]).name: r["result"] for r in printed}
    # the URL gives the file's bytes: the same result (scores to the result tolerance: --threads 1 here
    # and all cores in-process sum in another order)
    assert not golden.result_differences(by_name["en_jfk.wav"], reference)
    assert by_name["v.flac"]["text"] == reference["text"]  # lossless 16-bit: the same words
    assert written["en_jfk.txt"] == "\n".join(s["text"].strip() for s in reference["segments"]) + "\n"


def api_result(model, path) -> dict:
    """Greedy through the Python API, the reference for the CLI runs."""
    return model.transcribe(str(path), beam_size=None)["result"]


# ------------------------------------------------------------------ bad inputs, through the CLI

def test_each_bad_input_gets_its_line_and_the_batch_goes_on(repo, tmp_path, tiny_en):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "notes.wav").write_text("this is not audio\n" * 20)
    soundfile.write(bad / "silence0.wav", np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(bad / "nan.wav", np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    config = tmp_path / "pipeline.yaml"
    assert numwhisper(repo, "--get_pipeline_config", "multilingual_speech_recognition",
                      "--save_path", tmp_path).returncode == 0
    (tmp_path / "multilingual_speech_recognition.yaml").rename(config)
    config.write_text(config.read_text().replace("whisper_base", "whisper_tiny.en"))
    with serving(repo / "golden/audio") as url:
        expected = {
            str(tmp_path / "missing.wav"): "no such file or directory",
            str(bad / "empty.wav"): "empty file (0 bytes)",
            str(bad / "notes.wav"): "not a readable audio file",
            str(bad / "silence0.wav"): "no audio samples",
            str(bad / "nan.wav"): "1600 of 1600 samples are NaN or infinite",
            f"{url}/missing.wav": "HTTP 404",
            "http://127.0.0.1:9/x.wav": "cannot fetch",
            "ftp://example.com/x.wav": "unsupported URL scheme 'ftp'",
        }
        done = numwhisper(repo, "--pipeline", config, "--beam_size", "None", "--output_dir", tmp_path / "out",
                          *list(expected)[:3], JFK, *list(expected)[3:])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(expected), done.stderr
    for line, (name, cause) in zip(lines, expected.items()):
        assert line.startswith(f"error: {name}: ") and cause in line, line
    [printed] = printed_results(done.stdout)
    # the pipeline file chose tiny.en
    assert not golden.result_differences(printed["res"]["result"], api_result(tiny_en, repo / JFK))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["en_jfk.json"]


@pytest.mark.parametrize("args, message", [
    (["--language", "xx"], "error: unsupported language: 'xx'"),
    (["--temperature", "-1"], "error: temperature must be >= 0, got -1.0"),
    (["--best_of", "0"], "error: best_of must be >= 1 (or None), got 0"),
    (["--threads", "0"], "argument --threads: expected a whole number >= 1, got '0'"),
    (["--beam_size", "abc"], "argument --beam_size: invalid optional_int value: 'abc'"),
    (["--output_format", "doc"], "argument --output_format/-f: invalid choice: 'doc'"),
    (["--get_pipeline_config", "ocr"], "error: unknown pipeline 'ocr'"),
    (["--model_dir", "/no/such/model.safetensors"], "/no/such/model.safetensors"),
    ([], "error: no input given"),
    (["--max-audio-seconds", "0"], "error: the maximum audio duration must be a positive number of seconds, got 0.0"),
    (["--max-audio-seconds", "5"], f"error: {JFK}: audio too long (its header declares 11.0 s; the limit is 5 s"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_option_values_exit_2_with_one_clear_line(repo, args, message):
    inputs = [] if not args or args[0] == "--get_pipeline_config" else [JFK]
    done = numwhisper(repo, *args, *inputs)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""


def test_device_paddle_cpu_runs_the_paddle_backend_with_the_same_transcript(repo):
    def run(device):  # -X importtime lists every module imported, on stderr
        return subprocess.run([sys.executable, "-X", "importtime", "-m", "numwhisper", "--model", "tiny.en",
                               "--beam_size", "None", "--device", device, CLIP], capture_output=True, text=True, cwd=repo)

    def imports_paddle(done) -> bool:
        return any(line.rstrip().endswith("| paddle") for line in done.stderr.splitlines())

    numpy_run, paddle_run = run("cpu"), run("paddle:cpu")
    assert numpy_run.returncode == paddle_run.returncode == 0, paddle_run.stderr[-2000:]
    assert imports_paddle(paddle_run) and not imports_paddle(numpy_run)
    [ours], [theirs] = printed_results(numpy_run.stdout), printed_results(paddle_run.stdout)
    assert not golden.result_differences(theirs["res"]["result"], ours["res"]["result"])


def test_compat_openai_with_words_writes_openai_whispers_files(repo, tmp_path):
    """--compat openai --word_timestamps True: the json file is openai-whisper's result (scores within
    tolerance) and the other formats equal what openai-whisper's own writers made of its golden result."""
    done = numwhisper(repo, "golden/audio/en_jfk.wav", "--model", "tiny.en", "--compat", "openai",
                      "--word_timestamps", "True", "--output_dir", tmp_path, "-f", "all", "--verbose", "False")
    assert done.returncode == 0, done.stderr
    case = openai_golden.OpenAICase("tiny.en", "cli", "en_jfk")
    written = json.loads((tmp_path / "en_jfk.json").read_text())
    problems, compared_words = openai_golden.result_differences(written, openai_golden.load_result(case))
    assert not problems and compared_words.words == 22, problems
    writers = openai_golden.openai_root() / "writers" / "tiny.en" / "none"
    for fmt in ("srt", "vtt", "txt", "tsv"):
        assert (tmp_path / f"en_jfk.{fmt}").read_bytes() == (writers / f"en_jfk.{fmt}").read_bytes(), fmt


def test_word_layout_options_need_word_timestamps(repo, tmp_path):
    done = numwhisper(repo, "golden/audio/en_jfk.wav", "--model", "tiny.en", "--highlight_words", "True")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: --highlight_words needs --word_timestamps True: it lays out "
                                                "the words of srt and vtt files"]
