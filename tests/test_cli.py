"""The command line, driven as a user would: a subprocess of ``python -m numwhisper``."""

import json
import subprocess
import sys

from numwhisper.pipeline import create_pipeline, load_config, transcribe_item

CLIP = "golden/audio/en_ls_1272-128104-0000.wav"


def numwhisper(repo, *args):
    """Run ``python -m numwhisper`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "numwhisper", *map(str, args)],
                          capture_output=True, text=True, cwd=repo)


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


def test_bad_option_and_unknown_model_fail_cleanly(repo):
    done = numwhisper(repo, "--model", "huge", CLIP)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown model 'huge'")
    done = numwhisper(repo, "--task", "summarize", CLIP)
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = numwhisper(repo, "--device", "gpu:0", CLIP)
    assert done.returncode == 2 and "Paddle backend" in done.stderr


def test_create_pipeline_gives_the_golden_zh_result(repo):
    """The facade with PaddleX's defaults reproduces PaddleX's golden result for the Mandarin clip."""
    import numwhisper
    from numwhisper import golden

    [result] = list(numwhisper.create_pipeline().predict(input=str(repo / "golden/audio/zh_paddlespeech_zh.wav")))
    expected = golden.load_result("base", "zh_paddlespeech_zh", "beam5")["result"]
    assert not golden.result_differences(result["result"], expected), golden.result_differences(result["result"], expected)
    assert result.json == {"res": dict(result)}


def test_model_object_api(repo):
    import numwhisper

    model = numwhisper.load_model("base")
    language, probs = model.detect_language(str(repo / "golden/audio/de_picovoice_test_de.wav"))
    assert language == "de" and abs(sum(probs.values()) - 1) < 1e-3 and max(probs, key=probs.get) == "de"
    out = model.transcribe(str(repo / CLIP), beam_size=None, language="en")
    assert "apostle" in out["result"]["text"] and out["input_path"] == str(repo / CLIP)


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


def test_progress_reports_each_window_of_a_long_clip():
    import io

    import numwhisper
    from numwhisper.decoding import DecodingOptions
    from numwhisper.inputs import expand_inputs
    from numwhisper.progress import ProgressBar

    calls, stream = [], io.StringIO()
    bar = ProgressBar("long", stream=stream)

    def record(done, total):
        calls.append((done, total))
        bar(done, total)

    model = numwhisper.load_model("tiny.en")
    [item] = expand_inputs(["golden/audio/en_voxpopuli_long_000.wav"])
    transcribe_item(model, item, DecodingOptions(beam_size=None), progress=record)
    totals = {total for _, total in calls}
    assert totals == {6924} and len(calls) >= 3
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == 6924
    assert stream.getvalue().endswith("[" + "#" * 30 + "]   69.2/69.2 s")


def test_library_transcribe_scales_integer_pcm(repo):
    """An int16 array reaches the model as the same float signal its wav file gives."""
    import numpy as np
    import soundfile

    import numwhisper

    model = numwhisper.load_model("tiny.en")
    pcm, rate = soundfile.read(str(repo / CLIP), dtype="int16")
    from_pcm = model.transcribe(pcm, sample_rate=rate, beam_size=None)
    from_file = model.transcribe(str(repo / CLIP), beam_size=None)
    assert from_pcm["result"] == from_file["result"] and from_pcm["input_path"] is None
    assert np.issubdtype(pcm.dtype, np.integer)
