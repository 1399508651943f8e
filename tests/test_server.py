"""The HTTP service, driven as its users drive it: real server processes on 127.0.0.1, a real HTTP client.

Two servers run for the module (tiny.en, so that a request costs about one encoder pass):
- ``open``: 2 workers, a queue of 40, an allowed directory, small bounds (2 MB bodies, 1 MB fetches,
  1 s fetch timeout, 3 redirects, 60 s of audio);
- ``closed``: 1 worker, a queue of 1, no allowed directory.
URL inputs come from a local http.server. Every good answer is compared with the library's result
for the same clip, mapped to PaddleX serving's camelCase by hand here. Both servers' workers run one
thread each (two workers share two cores; the closed server is told ``--threads 1``), and so does
the library here: BLAS sums in another order with another thread count, which moves the last bits
of avg_logprob and no_speech_prob.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import soundfile

import hostile
from numwhisper.decoding import DecodingOptions
from numwhisper.serve.schema import InferResponse, infer_result
from numwhisper.threads import set_num_threads
from numwhisper.transcription import transcribe
from numwhisper.writers import to_srt, to_vtt
from server_support import AudioSite, ServerProcess, post_json
from test_cli import start

MODEL = "tiny.en"
INFER = "/multilingual-speech-recognition"
OPENAI = "/v1/audio/transcriptions"
MAX_BODY = 2_000_000
MAX_FETCH = 1_000_000
QUICK_503_SECONDS = 2.0
# clip name -> (golden file, seconds kept from its start)
CLIPS = {"a": ("en_jfk.wav", 2.5), "b": ("en_ls_1272-128104-0000.wav", 3.0)}


# ------------------------------------------------------------------------------------------ fixtures

class Env:
    """Everything the tests share: servers, web site, allowed directory, clips and expected results."""

    repo: object
    open: ServerProcess
    closed: ServerProcess
    site: AudioSite
    allow_dir: object
    clips: dict       # name -> path of the clip inside allow_dir
    library: dict     # name -> the library's result dict for the clip


def write_clip(repo, name, target):
    golden, seconds = CLIPS[name]
    audio, rate = soundfile.read(repo / "golden" / "audio" / golden, dtype="int16")  # [N]
    soundfile.write(target, audio[:int(seconds * rate)], rate, subtype="PCM_16")


@pytest.fixture(scope="module")
def env(repo, model_files, loaded, tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    allow_dir = root / "allowed"
    allow_dir.mkdir()
    (allow_dir / "sub").mkdir()
    clips = {}
    for name in CLIPS:
        clips[name] = allow_dir / f"clip_{name}.wav"
        write_clip(repo, name, clips[name])
    (allow_dir / "escape.wav").symlink_to(repo / "golden" / "audio" / "en_jfk.wav")
    (allow_dir / "long.wav").symlink_to(allow_dir / "sub" / "long.wav")  # a link inside is fine
    (allow_dir / "sub" / "long.wav").write_bytes((repo / "golden/audio/en_voxpopuli_long_000.wav").read_bytes())

    e = Env()
    e.repo, e.allow_dir, e.clips = repo, allow_dir, clips
    e.site = AudioSite({"clip_a.wav": clips["a"].read_bytes(), "clip_b.wav": clips["b"].read_bytes(),
                        "big.wav": b"RIFF" + bytes(MAX_FETCH + 10)})
    e.open = ServerProcess(repo, root / "open.log", [
        "--model", MODEL, "--workers", 2, "--queue-size", 40, "--allow-dir", allow_dir,
        "--max-body-bytes", MAX_BODY, "--max-fetch-bytes", MAX_FETCH, "--fetch-timeout", 1,
        "--max-redirects", 3, "--max-audio-seconds", 60, "--log-level", "warning"])
    e.closed = ServerProcess(repo, root / "closed.log", [
        "--model", MODEL, "--workers", 1, "--queue-size", 1, "--threads", 1, "--log-level", "warning"])
    try:
        model = loaded(MODEL)
        set_num_threads(1)
        try:
            e.library = {name: transcribe(model, str(path)) for name, path in clips.items()}
        finally:
            set_num_threads()
        e.open.wait_ready()
        e.closed.wait_ready()
        yield e
    finally:
        e.open.stop()
        e.closed.stop()
        e.site.close()


def serving_result(library: dict) -> dict:
    """The library's result as PaddleX serving sends it (camelCase segment keys)."""
    inner = library["result"]
    segments = [{"id": s["id"], "seek": s["seek"], "start": s["start"], "end": s["end"], "text": s["text"],
                 "tokens": list(s["tokens"]), "temperature": s["temperature"], "avgLogProb": s["avg_logprob"],
                 "compressionRatio": s["compression_ratio"], "noSpeechProb": s["no_speech_prob"]}
                for s in inner["segments"]]
    return {"text": inner["text"], "segments": segments, "language": inner["language"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def assert_success(response, library):
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"logId", "result", "errorCode", "errorMsg"}
    uuid.UUID(body["logId"])
    assert (body["errorCode"], body["errorMsg"]) == (0, "Success")
    assert body["result"] == serving_result(library)


def assert_failure(response, status, fragment=""):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"logId", "errorCode", "errorMsg"}, body
    assert body["errorCode"] == status
    assert fragment in body["errorMsg"], body["errorMsg"]
    assert "Traceback" not in response.text


# ------------------------------------------------------------------------------------ refusal cases

def json_body(audio):
    return lambda env: {"json": {"audio": audio(env)}}


def raw_body(body: bytes, content_type="application/json"):
    return lambda env: {"data": body, "headers": {"Content-Type": content_type}}


# (case id, HTTP status, fragment of errorMsg, request maker); all against the open server
BAD_CASES = [
    ("missing path outside", 403, "outside", json_body(lambda e: str(e.allow_dir.parent / "outside.wav"))),
    ("existing file outside", 403, "outside", json_body(lambda e: str(e.repo / "golden/audio/en_jfk.wav"))),
    ("dot-dot", 403, "'..'", json_body(lambda e: f"{e.allow_dir}/../{e.allow_dir.name}/clip_a.wav")),
    ("symlink escape", 403, "outside", json_body(lambda e: str(e.allow_dir / "escape.wav"))),
    ("nul in path", 400, "NUL", json_body(lambda e: f"{e.allow_dir}/clip_a.wav\0.wav")),
    ("missing file", 400, "no such file", json_body(lambda e: str(e.allow_dir / "nothing.wav"))),
    ("directory", 400, "not a regular file", json_body(lambda e: str(e.allow_dir / "sub"))),
    ("audio too long", 400, "too long", json_body(lambda e: str(e.allow_dir / "long.wav"))),
    ("file scheme", 400, "scheme 'file'", json_body(lambda e: "file:///etc/passwd")),
    ("ftp scheme", 400, "scheme 'ftp'", json_body(lambda e: "ftp://127.0.0.1/clip_a.wav")),
    ("url 404", 400, "HTTP 404", json_body(lambda e: f"{e.site.url}/files/nothing.wav")),
    ("url timeout", 400, "timed out", json_body(lambda e: f"{e.site.url}/slow")),
    ("url too large", 400, "too large", json_body(lambda e: f"{e.site.url}/files/big.wav")),
    ("redirect loop", 400, "redirect", json_body(lambda e: f"{e.site.url}/loop")),
    ("redirect to ftp", 400, "not an http(s) URL", json_body(lambda e: f"{e.site.url}/to-ftp")),
    ("body too large", 413, "too large", json_body(lambda e: "A" * (MAX_BODY + 1))),
    ("malformed json", 422, "not valid JSON", raw_body(b'{"audio": ')),
    ("empty body", 422, "empty", raw_body(b"")),
    ("json without content type", 422, "not valid JSON", raw_body(b"audio=x", "text/plain")),
    ("missing field", 422, "audio: Field required", lambda e: {"json": {"file": "clip.wav"}}),
    ("audio not a string", 422, "audio", lambda e: {"json": {"audio": 5}}),
    ("body not an object", 422, "request body", lambda e: {"json": ["clip.wav"]}),
    ("bad base64", 400, "not valid base64", json_body(lambda e: "@@ not base64 @@")),
    ("non-audio bytes", 400, "not a readable audio file",
     json_body(lambda e: b64(b"this is plain text, not audio at all. " * 8))),
    ("wav header only", 400, "audio (base64)", json_body(lambda e: b64(e.clips["a"].read_bytes()[:44]))),
    ("empty audio", 400, "empty", json_body(lambda e: "")),
    *[(f"hostile {name}", 400, cause, json_body(lambda e, name=name: b64(hostile.named_cases(e.repo)[name])))
      for name, cause in hostile.REFUSED.items()],
]


def send(env, make, server=None):
    return requests.post(f"{(server or env.open).url}{INFER}", timeout=120, **make(env))


@pytest.mark.parametrize("case", BAD_CASES, ids=[case[0] for case in BAD_CASES])
def test_refusals(env, case):
    _, status, fragment, make = case
    assert_failure(send(env, make), status, fragment)


def test_client_log_id_is_echoed_on_failure(env):
    response = post_json(f"{env.open.url}{INFER}", {"logId": "client-7", "audio": "@@ not base64 @@"})
    assert_failure(response, 400, "base64")
    assert response.json()["logId"] == "client-7"


def test_paths_refused_without_allow_dir(env):
    assert_failure(post_json(f"{env.closed.url}{INFER}", {"audio": str(env.clips["a"])}), 403, "refused")


def test_unknown_route_and_method(env):
    assert_failure(requests.get(f"{env.open.url}/nothing", timeout=10), 404)
    assert_failure(requests.get(f"{env.open.url}{INFER}", timeout=10), 405)


# ------------------------------------------------------------------------------- good requests

def test_health(env):
    for server in (env.open, env.closed):
        body = requests.get(f"{server.url}/health", timeout=10).json()
        uuid.UUID(body.pop("logId"))
        assert body == {"errorCode": 0, "errorMsg": "Healthy"}


def test_paddlex_client_example_with_base64(env):
    # PaddleX's client example for this pipeline, word for word in substance
    API_URL = f"{env.open.url}/multilingual-speech-recognition"
    with open(env.clips["a"], "rb") as file:
        audio_data = base64.b64encode(file.read()).decode("ascii")
    response = requests.post(API_URL, json={"audio": audio_data})
    assert_success(response, env.library["a"])


def test_path_inside_allowed_dir(env):
    assert_success(post_json(f"{env.open.url}{INFER}", {"audio": str(env.clips["b"])}), env.library["b"])


def test_url_from_local_web_server(env):
    response = post_json(f"{env.open.url}{INFER}", {"audio": f"{env.site.url}/files/clip_a.wav"})
    assert_success(response, env.library["a"])


def test_openai_transcriptions_every_format(env):
    library = env.library["a"]
    inner = library["result"]
    audio = env.clips["a"].read_bytes()

    def ask(fields):
        return requests.post(f"{env.open.url}{OPENAI}", files={"file": ("clip_a.wav", audio, "audio/wav")},
                             data=fields, timeout=120)

    formats = {
        "json": {"model": "whisper-1"},
        "text": {"response_format": "text"},
        "srt": {"response_format": "srt"},
        "vtt": {"response_format": "vtt", "language": "en", "temperature": "0"},
        "verbose_json": {"response_format": "verbose_json"},
    }
    with ThreadPoolExecutor(len(formats)) as pool:
        answers = dict(zip(formats, pool.map(ask, formats.values())))
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
    assert answers["json"].json() == {"text": inner["text"].strip()}
    assert answers["text"].text == inner["text"].strip() + "\n"
    assert answers["srt"].text == to_srt(library)
    assert answers["vtt"].text == to_vtt(library)
    assert answers["vtt"].headers["content-type"].startswith("text/vtt")
    verbose = answers["verbose_json"].json()
    assert verbose["task"] == "transcribe" and verbose["language"] == "english"
    assert verbose["duration"] == pytest.approx(2.5)
    assert verbose["text"] == inner["text"].strip()
    assert verbose["segments"] == [{**s, "tokens": list(s["tokens"])} for s in inner["segments"]]


def test_openai_word_granularity_gives_the_librarys_words(env, loaded):
    audio = env.clips["a"].read_bytes()
    set_num_threads(1)
    try:
        library = transcribe(loaded(MODEL), str(env.clips["a"]), DecodingOptions(word_timestamps=True))["result"]
    finally:
        set_num_threads()
    expected = [{"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
                for s in library["segments"] for w in s["words"]]
    assert len(expected) >= 5

    def ask(granularities):
        fields = [("response_format", "verbose_json")] + [("timestamp_granularities[]", g) for g in granularities]
        return requests.post(f"{env.open.url}{OPENAI}", files={"file": ("clip_a.wav", audio, "audio/wav")},
                             data=fields, timeout=120)

    words_only, both = ask(["word"]), ask(["word", "segment"])
    assert words_only.status_code == 200 and both.status_code == 200, (words_only.text, both.text)
    assert words_only.json()["words"] == expected and "segments" not in words_only.json()
    assert both.json()["words"] == expected
    assert [s["text"] for s in both.json()["segments"]] == [s["text"] for s in library["segments"]]
    assert both.json()["segments"][0]["start"] == library["segments"][0]["start"]  # PaddleX's segments kept


@pytest.mark.parametrize("fields, upload, status, fragment", [
    ({}, None, 400, "file is required"),
    ({"response_format": "xml"}, b"x", 400, "response_format"),
    ({"temperature": "2"}, b"x", 400, "between 0 and 1"),
    ({"temperature": "warm"}, b"x", 400, "must be a number"),
    ({"language": "klingon"}, b"x", 400, "unsupported language"),
    ({"timestamp_granularities[]": "word"}, b"x", 400, "needs response_format verbose_json"),
    ({"response_format": "verbose_json", "timestamp_granularities[]": "syllable"}, b"x", 400, "not understood"),
    ({}, b"plain text, not audio " * 10, 400, "not a readable audio file"),
    ({}, b"A" * (MAX_BODY + 1), 413, "too large"),
], ids=["no file", "bad format", "hot", "not a number", "bad language", "words without verbose_json",
        "unknown granularity", "non-audio", "too large"])
def test_openai_refusals(env, fields, upload, status, fragment):
    files = {"file": ("upload.wav", upload)} if upload is not None else None
    response = requests.post(f"{env.open.url}{OPENAI}", data=fields, files=files, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"


# ----------------------------------------------------------------------------- load and overflow

GOOD_REQUESTS = [
    ("a", lambda e: b64(e.clips["a"].read_bytes())),
    ("a", lambda e: str(e.clips["a"])),
    ("a", lambda e: "data:audio/wav;base64," + b64(e.clips["a"].read_bytes())),
    ("b", lambda e: b64(e.clips["b"].read_bytes())),
    ("b", lambda e: f"{e.site.url}/files/clip_b.wav"),
    ("b", lambda e: f"{e.site.url}/redirect/clip_b.wav"),
]


def test_32_concurrent_mixed_requests(env):
    n_bad = 32 - len(GOOD_REQUESTS)
    bad = [BAD_CASES[i % len(BAD_CASES)] for i in range(n_bad)]
    jobs = [("good", clip, json_body(audio)) for clip, audio in GOOD_REQUESTS]
    jobs += [("bad", case, case[3]) for case in bad]
    jobs = [jobs[i] for i in np.random.default_rng(6).permutation(len(jobs))]
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait()
        return send(env, job[2])

    with ThreadPoolExecutor(len(jobs)) as pool:
        responses = list(pool.map(run, jobs))
    for (kind, what, _), response in zip(jobs, responses):
        if kind == "good":
            assert_success(response, env.library[what])
        else:
            assert_failure(response, what[1], what[2])
    assert requests.get(f"{env.open.url}/health", timeout=10).status_code == 200
    assert env.open.process.poll() is None


def test_queue_overflow_gets_503_quickly(env):
    url = f"{env.closed.url}{INFER}"
    audio = b64(env.clips["a"].read_bytes())

    def timed(payload):
        began = time.monotonic()
        response = post_json(url, payload, timeout=60)
        return response, time.monotonic() - began

    with ThreadPoolExecutor(6) as pool:
        # workers 1 + queue 1: two requests whose URL fetch hangs until released fill the server
        holders = [pool.submit(timed, {"audio": f"{env.site.url}/hold"}) for _ in range(2)]
        env.site.wait_held(2)
        overflow = list(pool.map(timed, [{"audio": audio}] * 4))
        env.site.release()
        for response, seconds in overflow:
            assert_failure(response, 503, "busy")
            assert response.headers["Retry-After"] == "1"
            assert seconds < QUICK_503_SECONDS
        for holder in holders:
            assert_failure(holder.result()[0], 400, "HTTP 404")
    assert_success(post_json(url, {"audio": audio}), env.library["a"])


def test_bad_serve_arguments_exit_2(repo, tmp_path):
    for args in (["--allow-dir", tmp_path / "missing"], ["--workers", "0"]):
        done = subprocess.run([sys.executable, "-m", "numwhisper", "serve", *map(str, args)],
                              capture_output=True, text=True, cwd=repo, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: "), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_ctrl_c_while_the_service_compiles_its_kernels_is_one_line(repo, tmp_path):
    """A first start (no compiled kernels on disk) compiles during the warm-up; Ctrl-C then ends it with
    one line and status 130, not a traceback (numwhisper.startup.deliver_interrupts)."""
    server = start(repo, "serve", "--model", MODEL, "--port", "0", env={"NUMBA_CACHE_DIR": str(tmp_path / "cache")})
    time.sleep(5.0)
    assert server.poll() is None, "the service started or ended before the Ctrl-C"
    server.send_signal(signal.SIGINT)
    stdout, stderr = server.communicate(timeout=60)
    assert (server.returncode, stdout, stderr) == (130, "", "error: interrupted before the service started\n")


def test_paddlex_serving_answers_carry_words_only_when_the_result_has_them(repo, loaded):
    model, clip = loaded(MODEL), str(repo / "golden" / "audio" / "en_jfk.wav")
    plain_result = transcribe(model, clip, DecodingOptions(beam_size=None))
    worded = transcribe(model, clip, DecodingOptions(beam_size=None, word_timestamps=True))
    plain_answer = InferResponse(logId="x", result=infer_result(plain_result)).model_dump(mode="json")
    worded_answer = InferResponse(logId="x", result=infer_result(worded)).model_dump(mode="json")
    assert all("words" not in s for s in plain_answer["result"]["segments"])
    for ours, result in zip(worded_answer["result"]["segments"], worded["result"]["segments"]):
        assert ours["words"] == result["words"]
        assert {k: v for k, v in ours.items() if k != "words"} == next(
            s for s in plain_answer["result"]["segments"] if s["id"] == ours["id"])
