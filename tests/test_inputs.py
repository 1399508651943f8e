"""Inputs -> 16 kHz mono float32: files in several formats and rates, arrays, bytes, base64, URLs, batches."""

import base64
import http.server
import io
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile

from numwhisper import inputs
from server_support import QuietHandler
from numwhisper.inputs import FetchOptions, InputError

JFK = Path(__file__).resolve().parent.parent / "golden" / "audio" / "en_jfk.wav"
MIN_CORRELATION = 0.99        # a resampled / re-encoded variant against the original 16 kHz clip
TONE_ATOL = 1e-3              # resampled pure tones against the same tones computed at 16 kHz
LENGTH_SLACK = 2              # samples a resampled length may differ from N * 16000 / rate
SLOW_RESPONSE_S = 1.0         # the test server's slow endpoint waits this long; the client gives up sooner
SHORT_TIMEOUT_S = 0.2


@pytest.fixture(scope="module")
def jfk():
    """The 16 kHz mono golden clip as float32 [N]."""
    samples, rate = soundfile.read(JFK, dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    return samples


@pytest.fixture(scope="module")
def variants(jfk, tmp_path_factory):
    """The clip written in other containers, codecs, rates and channel counts: {name: path}."""
    root = tmp_path_factory.mktemp("variants")
    x48 = scipy.signal.resample(jfk, len(jfk) * 3).astype(np.float32)  # [3N] (FFT method, not polyphase)
    x8 = scipy.signal.resample(jfk, len(jfk) // 2).astype(np.float32)  # [N/2]
    x22 = scipy.signal.resample(jfk, len(jfk) * 441 // 320).astype(np.float32)  # [N * 22050/16000]
    specs = {
        "int16.wav": (jfk, 16000, "WAV", "PCM_16"),
        "float.wav": (jfk, 16000, "WAV", "FLOAT"),
        "flac.flac": (jfk, 16000, "FLAC", "PCM_16"),
        "vorbis.ogg": (jfk, 16000, "OGG", "VORBIS"),
        "opus.opus": (jfk, 16000, "OGG", "OPUS"),
        "mp3.mp3": (jfk, 16000, "MP3", "MPEG_LAYER_III"),
        "stereo48k.wav": (np.stack([x48, 0.5 * x48], axis=1), 48000, "WAV", "FLOAT"),
        "pcm8k.wav": (x8, 8000, "WAV", "PCM_16"),
        "rate22050.flac": (x22, 22050, "FLAC", "PCM_24"),
    }
    paths = {}
    for name, (data, rate, fmt, subtype) in specs.items():
        paths[name] = root / name
        soundfile.write(paths[name], data, rate, format=fmt, subtype=subtype)
    return paths


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


# --------------------------------------------------------------------------------------------- files

@pytest.mark.parametrize("name", ["int16.wav", "float.wav", "flac.flac", "vorbis.ogg", "opus.opus", "mp3.mp3",
                                  "stereo48k.wav", "pcm8k.wav", "rate22050.flac"])
def test_every_variant_comes_back_as_the_16k_clip(name, variants, jfk):
    got_name, audio = inputs.load_input(str(variants[name]))
    assert got_name == str(variants[name])
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(jfk)) <= LENGTH_SLACK
    assert correlation(audio, jfk) > MIN_CORRELATION


def test_stereo_48k_is_downmixed_and_resampled(variants, jfk):
    audio = inputs.from_file(variants["stereo48k.wav"])  # channels x and x/2 -> mean 0.75 x
    assert len(audio) == len(jfk)
    assert correlation(audio, jfk) > MIN_CORRELATION
    scale = float(audio @ jfk / (jfk @ jfk))
    assert scale == pytest.approx(0.75, abs=0.01)


def test_lossless_16k_files_are_exact(variants, jfk):
    assert np.array_equal(inputs.from_file(variants["float.wav"]), jfk)
    assert np.abs(inputs.from_file(variants["int16.wav"]) - jfk).max() <= 1 / 32768


def test_paddlex_compat_takes_channel_0_and_ignores_the_rate(variants):
    audio = inputs.from_file(variants["stereo48k.wav"], compat="paddlex")
    channel0 = soundfile.read(variants["stereo48k.wav"], dtype="float32")[0][:, 0]
    assert np.array_equal(audio, channel0)


def test_mp3_is_written_and_read_by_the_bundled_libsndfile(variants):
    assert "MP3" in soundfile.available_formats()
    assert soundfile.info(variants["mp3.mp3"]).format == "MP3"


# -------------------------------------------------------------------------------------------- arrays

@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_array_tones_resample_to_the_same_tones_at_16k(rate):
    def tones(sr, seconds=1.0):
        t = np.arange(int(seconds * sr)) / sr
        return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 1000 * t + 1.0)).astype(np.float32)

    audio = inputs.from_array(tones(rate), sample_rate=rate)
    expected = tones(16000)
    assert abs(len(audio) - len(expected)) <= LENGTH_SLACK
    edge = 200  # filter start-up at both ends
    n = min(len(audio), len(expected))
    assert np.abs(audio[edge:n - edge] - expected[edge:n - edge]).max() < TONE_ATOL


def test_integer_pcm_is_scaled_to_full_scale(jfk):
    pcm16 = np.round(jfk * 32767).astype(np.int16)
    assert np.array_equal(inputs.from_array(pcm16), (pcm16 / 32768).astype(np.float32))
    pcm32 = pcm16.astype(np.int32) << 16
    assert np.allclose(inputs.from_array(pcm32), pcm16 / 32768, atol=1e-7)
    pcm_u8 = np.array([0, 128, 255], dtype=np.uint8)
    assert np.allclose(inputs.from_array(pcm_u8), [-1.0, 0.0, 127 / 128])
    assert np.array_equal(inputs.from_array(jfk.astype(np.float64)), jfk)


def test_channels_last_arrays_are_averaged_and_float_rates_accepted(jfk):
    stereo = np.stack([jfk, np.zeros_like(jfk)], axis=1)  # [N, 2]
    assert np.allclose(inputs.from_array(stereo, sample_rate=16000.0), jfk / 2)
    name, audio = inputs.load_input(stereo, sample_rate=16000)
    assert name == "array" and np.allclose(audio, jfk / 2)


# ----------------------------------------------------------------------------------- bytes and base64

@pytest.mark.parametrize("name", ["int16.wav", "flac.flac", "vorbis.ogg", "mp3.mp3", "stereo48k.wav"])
def test_bytes_decode_like_the_file(name, variants):
    data = variants[name].read_bytes()
    from_file = inputs.from_file(variants[name])
    assert np.array_equal(inputs.from_bytes(data), from_file)
    assert np.array_equal(inputs.load_input(bytearray(data))[1], from_file)
    assert np.array_equal(inputs.load_input(memoryview(data))[1], from_file)
    assert np.array_equal(inputs.load_input(io.BytesIO(data))[1], from_file)


def test_base64_forms_all_decode(variants):
    data = variants["flac.flac"].read_bytes()
    expected = inputs.from_file(variants["flac.flac"])
    plain = base64.b64encode(data).decode()
    forms = {
        "plain": plain,
        "data uri": "data:audio/flac;base64," + plain,
        "upper-case data uri": "DATA:audio/flac;BASE64," + plain,
        "wrapped lines": base64.encodebytes(data).decode(),
        "url-safe, unpadded": base64.urlsafe_b64encode(data).decode().rstrip("="),
        "percent-encoded data uri": "data:audio/flac," + urllib.parse.quote_from_bytes(data),
    }
    for form, text in forms.items():
        name, audio = inputs.load_input(text)
        assert np.array_equal(audio, expected), form
        assert len(name) < 80 and "\n" not in name, form


# ---------------------------------------------------------------------------------------------- URLs

class AudioServer(QuietHandler):
    """Test routes: a good file, a 404, a 500, a slow reply, redirects, oversize bodies, HTML."""

    wav = b""

    def reply(self, status, body=b"", content_type="audio/wav", length=True):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        try:
            if path == "/jfk.wav":
                self.reply(200, self.wav)
            elif path == "/slow.wav":
                time.sleep(SLOW_RESPONSE_S)
                self.reply(200, self.wav)
            elif path == "/loop":
                self.redirect("/loop")
            elif path.startswith("/hop/"):
                hops = int(path.rsplit("/", 1)[1])
                self.redirect(f"/hop/{hops - 1}" if hops > 0 else "/jfk.wav")
            elif path == "/to-ftp":
                self.redirect("ftp://127.0.0.1/jfk.wav")
            elif path == "/declared-big.wav":
                self.send_response(200)
                self.send_header("Content-Length", str(10 ** 9))
                self.end_headers()
            elif path == "/streamed.wav":  # no Content-Length: the body's end is the connection's end
                self.close_connection = True
                self.reply(200, self.wav, length=False)
            elif path == "/page.html":
                self.reply(200, b"<html><body>not audio</body></html>", content_type="text/html")
            elif path == "/broken":
                self.reply(500, b"oops", content_type="text/plain")
            else:
                self.reply(404, b"not found", content_type="text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server(variants):
    """Base URL of a local HTTP server on 127.0.0.1 running in a thread."""
    handler = type("Handler", (AudioServer,), {"wav": variants["int16.wav"].read_bytes()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_downloads_and_decodes(server, variants):
    name, audio = inputs.load_input(f"{server}/jfk.wav")
    assert name == f"{server}/jfk.wav"
    assert np.array_equal(audio, inputs.from_file(variants["int16.wav"]))


def test_redirects_are_followed_up_to_the_limit(server):
    assert inputs.from_url(f"{server}/hop/3", fetch=FetchOptions(max_redirects=5)).size > 0
    with pytest.raises(InputError, match="too many redirects"):
        inputs.from_url(f"{server}/hop/3", fetch=FetchOptions(max_redirects=2))


def test_size_limit_allows_a_body_exactly_at_the_limit(server, variants):
    size = len(variants["int16.wav"].read_bytes())
    assert inputs.from_url(f"{server}/streamed.wav", fetch=FetchOptions(max_bytes=size)).size > 0
    with pytest.raises(InputError, match="too large"):
        inputs.from_url(f"{server}/streamed.wav", fetch=FetchOptions(max_bytes=size - 1))


def test_slow_server_times_out_quickly(server):
    started = time.monotonic()
    with pytest.raises(InputError, match=r"timed out after 0\.2 s"):
        inputs.from_url(f"{server}/slow.wav", fetch=FetchOptions(timeout=SHORT_TIMEOUT_S))
    assert time.monotonic() - started < SLOW_RESPONSE_S


# ------------------------------------------------------------------------------------- bad inputs

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """Files that are not usable audio: {kind: path}."""
    root = tmp_path_factory.mktemp("bad")
    files = {"empty": root / "empty.wav", "text": root / "notes.wav", "no frames": root / "silence0.wav",
             "nan": root / "nan.wav", "directory": root / "folder"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not audio\n" * 20)
    soundfile.write(files["no frames"], np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(files["nan"], np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    files["directory"].mkdir()
    return files


def bad_cases(server, bad_files):
    """(input, keyword arguments for load_input, fetch options, the name the message starts with, its cause)."""
    garbage_b64 = base64.b64encode(b"not audio at all " * 8).decode()
    return [
        ("/no/such/file.wav", {}, "/no/such/file.wav", "no such file or directory"),
        (str(bad_files["empty"]), {}, str(bad_files["empty"]), "empty file (0 bytes)"),
        (str(bad_files["text"]), {}, str(bad_files["text"]), "not a readable audio file (Format not recognised)"),
        (str(bad_files["no frames"]), {}, str(bad_files["no frames"]), "no audio samples"),
        (str(bad_files["nan"]), {}, str(bad_files["nan"]), "1600 of 1600 samples are NaN or infinite"),
        (str(bad_files["directory"]), {}, str(bad_files["directory"]), "is a directory"),
        (np.zeros(0, dtype=np.float32), {}, "array", "no audio samples (zero length)"),
        (np.zeros((0, 2), dtype=np.int16), {}, "array", "no audio samples (zero length)"),
        (np.full(16000, np.nan, dtype=np.float32), {}, "array", "16000 of 16000 samples are NaN or infinite"),
        (np.zeros((2, 16000), dtype=np.float32), {}, "array", "more channels than samples; pass channels last"),
        (np.zeros((4, 4, 4)), {}, "array", "expected samples shaped [N] or [N, channels], got shape [4, 4, 4]"),
        (np.array(["a", "b"]), {}, "array", "expected integer or float PCM samples, got dtype <U1"),
        (np.ones(100), {"sample_rate": 0}, "array", "sample rate must be a positive whole number of Hz, got 0"),
        (np.ones(100), {"sample_rate": 22050.5}, "array", "sample rate must be a positive whole number of Hz"),
        (b"", {}, "bytes", "empty (0 bytes)"),
        (b"RIFF but not really audio" * 4, {}, "bytes", "not a readable audio file"),
        (garbage_b64, {}, f"{garbage_b64[:45]}... ({len(garbage_b64)} chars)", "not a readable audio file"),
        ("data:audio/wav;base64,@@@", {}, "data:audio/wav;base64,@@@", "not valid base64 text"),
        ("data:audio/wav;base64", {}, "data:audio/wav;base64", "data: URI without a comma"),
        (f"{server}/missing.wav", {}, f"{server}/missing.wav", "HTTP 404 Not Found"),
        (f"{server}/broken", {}, f"{server}/broken", "HTTP 500 Internal Server Error"),
        (f"{server}/loop", {}, f"{server}/loop", "too many redirects or a redirect loop"),
        (f"{server}/to-ftp", {}, f"{server}/to-ftp",
         "redirected to ftp://127.0.0.1/jfk.wav, which is not an http(s) URL"),
        (f"{server}/declared-big.wav", {}, f"{server}/declared-big.wav",
         f"too large (1000000000 bytes; the limit is {inputs.DEFAULT_MAX_BYTES})"),
        (f"{server}/page.html", {}, f"{server}/page.html", "not a readable audio file"),
        ("http://127.0.0.1:9/x.wav", {}, "http://127.0.0.1:9/x.wav", "cannot fetch (["),
        ("ftp://example.com/x.wav", {}, "ftp://example.com/x.wav", "unsupported URL scheme 'ftp'"),
        ("file:///etc/passwd", {}, "file:///etc/passwd", "unsupported URL scheme 'file'"),
        (12345, {}, "int", "unsupported input"),
    ]


def test_every_bad_input_gives_one_line_naming_it_and_the_cause(server, bad_files):
    for source, kwargs, name, cause in bad_cases(server, bad_files):
        with pytest.raises(InputError) as caught:
            inputs.load_input(source, **kwargs)
        message = str(caught.value)
        assert "\n" not in message, message
        assert message.startswith(name + ": "), message
        assert cause in message, message
        assert isinstance(caught.value, ValueError)


# ------------------------------------------------------------------------------------------- batches

def test_a_directory_expands_to_its_audio_files_sorted(tmp_path, variants):
    for name in ["b.wav", "a.flac", "C.MP3", ".hidden.wav"]:
        (tmp_path / name).write_bytes(variants["int16.wav"].read_bytes())
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.wav").write_bytes(variants["int16.wav"].read_bytes())
    items = inputs.expand_inputs([str(tmp_path)])
    assert [Path(item.name).name for item in items] == ["C.MP3", "a.flac", "b.wav"]
    assert all(item.ok and item.input_path == item.name for item in items)


def test_an_empty_directory_is_an_item_with_its_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    [item] = inputs.expand_inputs([tmp_path])
    assert not item.ok and str(item.error).startswith(f"{tmp_path}: directory holds no audio files")


def test_a_batch_keeps_its_good_items_when_some_are_bad(server, variants, jfk, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "one.flac").write_bytes(variants["flac.flac"].read_bytes())
    (folder / "two.wav").write_bytes(variants["stereo48k.wav"].read_bytes())
    batch = [
        str(variants["mp3.mp3"]),
        "/no/such/clip.wav",
        str(folder),
        f"{server}/jfk.wav",
        f"{server}/missing.wav",
        base64.b64encode(variants["vorbis.ogg"].read_bytes()).decode(),
        (jfk[::2].copy(), 8000),
        b"garbage bytes " * 10,
        object(),
    ]
    items = list(inputs.load_items(inputs.expand_inputs(batch)))
    assert len(items) == 10
    ok = [item.ok for item in items]
    assert ok == [True, False, True, True, True, False, True, True, False, False]
    for item in items:
        if item.ok:
            assert item.audio.dtype == np.float32 and item.error is None
            assert abs(len(item.audio) - len(jfk)) <= LENGTH_SLACK
        else:
            assert item.audio is None and "\n" not in str(item.error)
            assert str(item.error).startswith(item.name + ": ")
    assert [item.input_path for item in items] == [
        str(variants["mp3.mp3"]), "/no/such/clip.wav", str(folder / "one.flac"), str(folder / "two.wav"),
        f"{server}/jfk.wav", f"{server}/missing.wav", None, None, None, None]
    assert "HTTP 404" in str(items[5].error)
    assert items[8].name == "input 8 (bytes)" and "not a readable audio file" in str(items[8].error)
    assert items[9].name == "input 9" and "unsupported input type object" in str(items[9].error)
