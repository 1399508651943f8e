"""Reading inputs -> RawAudio (name, samples as the source holds them, rate): files in several formats
and rates, arrays, bytes, base64, URLs, error messages, directories and batches."""

import base64
import http.server
import io
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile

from numwhisper import audio, inputs
from numwhisper.errors import InputError
from numwhisper.inputs import FetchOptions, RawAudio
from server_support import QuietHandler

LENGTH_SLACK = 2              # samples a decoded or resampled length may differ from the expected one
SLOW_RESPONSE_S = 1.0         # the test server's slow endpoint waits this long; the client gives up sooner
SHORT_TIMEOUT_S = 0.2

# The conftest fixtures ``jfk``, ``variants`` and ``bad_files`` are shared with test_audio.py.
HELD = {  # variant -> (channels, sample rate) as the file holds them
    "int16.wav": (1, 16000), "float.wav": (1, 16000), "flac.flac": (1, 16000), "vorbis.ogg": (1, 16000),
    "opus.opus": (1, 16000), "mp3.mp3": (1, 16000), "stereo48k.wav": (2, 48000), "pcm8k.wav": (1, 8000),
    "rate22050.flac": (1, 22050),
}


def same_audio(a: RawAudio, path) -> bool:
    """Whether a read holds the same samples at the same rate as the file at ``path`` (names may differ)."""
    b = inputs.from_file(path)
    return a.rate == b.rate and np.array_equal(a.all_samples(), b.all_samples())


# --------------------------------------------------------------------------------------------- files

@pytest.mark.parametrize("name", sorted(HELD))
def test_every_variant_is_read_with_its_name_channels_and_rate(name, variants, jfk):
    raw = inputs.load_input(str(variants[name]))
    channels, rate = HELD[name]
    assert isinstance(raw, RawAudio)
    assert raw.name == str(variants[name])
    assert raw.rate == rate and isinstance(raw.rate, int)
    samples = raw.all_samples()  # [N, C]
    assert samples.dtype == np.float32 and samples.ndim == 2 and samples.shape[1] == channels
    assert abs(len(samples) - len(jfk) * rate // 16000) <= LENGTH_SLACK


def test_files_are_read_as_they_are_without_conversion(variants, jfk):
    raw = inputs.from_file(variants["float.wav"])
    assert raw.name == str(variants["float.wav"]) and raw.rate == 16000
    assert np.array_equal(raw.all_samples(), jfk[:, None])  # [N, 1]
    stereo = inputs.from_file(variants["stereo48k.wav"])
    held = soundfile.read(variants["stereo48k.wav"], dtype="float32", always_2d=True)[0]  # [3N, 2]
    samples = stereo.all_samples()  # [3N, 2]
    assert stereo.rate == 48000 and np.array_equal(samples, held)
    assert np.array_equal(samples[:, 1], 0.5 * samples[:, 0])  # channels x and x/2, not mixed


@pytest.mark.parametrize("name", sorted(HELD))
def test_block_by_block_reading_gives_soundfiles_samples_exactly(name, variants):
    expected, rate = soundfile.read(variants[name], dtype="float32", always_2d=True)  # [N, C]
    raw = inputs.load_input(str(variants[name]))
    assert raw.rate == rate and np.array_equal(raw.all_samples(), expected)


def test_mp3_is_written_and_read_by_the_bundled_libsndfile(variants):
    assert "MP3" in soundfile.available_formats()
    assert soundfile.info(variants["mp3.mp3"]).format == "MP3"


# -------------------------------------------------------------------------------------------- arrays

def test_integer_pcm_is_scaled_to_full_scale(jfk):
    pcm16 = np.round(jfk * 32767).astype(np.int16)  # [N]
    raw = inputs.from_array(pcm16)
    samples = raw.all_samples()  # [N]
    assert raw.rate == 16000 and samples.dtype == np.float32
    assert np.array_equal(samples, (pcm16 / 32768).astype(np.float32))
    pcm32 = pcm16.astype(np.int32) << 16  # [N]
    assert np.allclose(inputs.from_array(pcm32).all_samples(), pcm16 / 32768, atol=1e-7)
    pcm_u8 = np.array([0, 128, 255], dtype=np.uint8)  # [3]
    assert np.allclose(inputs.from_array(pcm_u8).all_samples(), [-1.0, 0.0, 127 / 128])
    assert np.array_equal(inputs.from_array(jfk.astype(np.float64)).all_samples(), jfk)


def test_arrays_keep_their_channels_and_rate_and_float_rates_are_accepted(jfk):
    stereo = np.stack([jfk, np.zeros_like(jfk)], axis=1)  # [N, 2]
    raw = inputs.from_array(stereo, sample_rate=16000.0)
    assert raw.rate == 16000 and isinstance(raw.rate, int)
    assert np.array_equal(raw.all_samples(), stereo)  # [N, 2], channels not mixed
    name, rate, blocks = inputs.load_input(stereo, sample_rate=16000)
    assert name == "array" and rate == 16000 and np.array_equal(np.concatenate(list(blocks)), stereo)
    tone = np.sin(np.arange(44100) / 10).astype(np.float32)  # [44100]
    raw = inputs.load_input(tone, sample_rate=44100, name="tone")
    assert raw.name == "tone" and raw.rate == 44100 and np.array_equal(raw.all_samples(), tone)  # not resampled


# ----------------------------------------------------------------------------------- bytes and base64

@pytest.mark.parametrize("name", ["int16.wav", "flac.flac", "vorbis.ogg", "mp3.mp3", "stereo48k.wav"])
def test_bytes_decode_like_the_file(name, variants):
    data = variants[name].read_bytes()
    reads = [inputs.from_bytes(data), inputs.load_input(bytearray(data)), inputs.load_input(memoryview(data)),
             inputs.load_input(io.BytesIO(data))]
    for read in reads:
        assert same_audio(read, variants[name]), read.name
    assert [read.name for read in reads] == ["bytes", "bytes", "bytes", "file object"]


def test_base64_forms_all_decode(variants):
    data = variants["flac.flac"].read_bytes()
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
        raw = inputs.load_input(text)
        assert same_audio(raw, variants["flac.flac"]), form
        assert len(raw.name) < 80 and "\n" not in raw.name, form


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
    raw = inputs.load_input(f"{server}/jfk.wav")
    assert raw.name == f"{server}/jfk.wav"
    assert same_audio(raw, variants["int16.wav"])


def test_redirects_are_followed_up_to_the_limit(server):
    assert inputs.load_input(f"{server}/hop/3", fetch=FetchOptions(max_redirects=5)).all_samples().size > 0
    with pytest.raises(InputError, match="too many redirects"):
        inputs.load_input(f"{server}/hop/3", fetch=FetchOptions(max_redirects=2))


def test_size_limit_allows_a_body_exactly_at_the_limit(server, variants):
    size = len(variants["int16.wav"].read_bytes())
    assert inputs.load_input(f"{server}/streamed.wav", fetch=FetchOptions(max_bytes=size)).all_samples().size > 0
    with pytest.raises(InputError, match="too large"):
        inputs.load_input(f"{server}/streamed.wav", fetch=FetchOptions(max_bytes=size - 1))


def test_slow_server_times_out_quickly(server):
    started = time.monotonic()
    with pytest.raises(InputError, match=r"timed out after 0\.2 s"):
        inputs.load_input(f"{server}/slow.wav", fetch=FetchOptions(timeout=SHORT_TIMEOUT_S))
    assert time.monotonic() - started < SLOW_RESPONSE_S


# ------------------------------------------------------------------------------------- bad inputs

def bad_cases(server, bad_files):
    """(input, keyword arguments for load_input, the name the message starts with, its cause).

    The NaN cases, whose message comes from the conversion to 16 kHz mono, are test_audio.py's.
    """
    garbage_b64 = base64.b64encode(b"not audio at all " * 8).decode()
    return [
        ("/no/such/file.wav", {}, "/no/such/file.wav", "no such file or directory"),
        (str(bad_files["empty"]), {}, str(bad_files["empty"]), "empty file (0 bytes)"),
        (str(bad_files["text"]), {}, str(bad_files["text"]), "not a readable audio file (Format not recognised)"),
        (str(bad_files["no frames"]), {}, str(bad_files["no frames"]), "no audio samples"),
        (str(bad_files["directory"]), {}, str(bad_files["directory"]), "is a directory"),
        (np.zeros(0, dtype=np.float32), {}, "array", "no audio samples (zero length)"),
        (np.zeros((0, 2), dtype=np.int16), {}, "array", "no audio samples (zero length)"),
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
        ("", {}, "input", "an empty string names no audio"),
        (" \t", {}, "input", "an empty string names no audio"),
        (np.ones(100), {"sample_rate": 10 ** 12}, "array", "sample rate 1000000000000 Hz is outside 1000..384000 Hz"),
        (np.ones(100), {"sample_rate": 999}, "array", "sample rate 999 Hz is outside 1000..384000 Hz"),
        (str(bad_files["loop"]), {}, str(bad_files["loop"]), "a loop of symbolic links"),
        (str(bad_files["dangling"]), {}, str(bad_files["dangling"]), "a symbolic link to a file that does not exist"),
        (str(bad_files["fifo"]), {}, str(bad_files["fifo"]), "is a named pipe (FIFO), not an audio file"),
        ("/dev/zero", {}, "/dev/zero", "is a character device, not an audio file"),
        (str(bad_files["newline"]), {}, str(bad_files["newline"]).replace("\n", "\\n"), "no such file or directory"),
    ]


def test_every_bad_input_gives_one_line_naming_it_and_the_cause(server, bad_files):
    for source, kwargs, name, cause in bad_cases(server, bad_files):
        with pytest.raises(InputError) as caught:
            inputs.load_input(source, **kwargs).all_samples()
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
    assert all(item.error is None and item.source == item.input_path == item.name for item in items)


def test_an_empty_directory_is_an_item_with_its_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    [item] = inputs.expand_inputs([tmp_path])
    assert isinstance(item.error, InputError) and item.source is None
    assert str(item.error).startswith(f"{tmp_path}: directory holds no audio files")


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
    items = inputs.expand_inputs(batch)
    assert len(items) == 10
    clips, errors = [], []
    for item in items:  # what pipeline.transcribe_item does before transcribing
        clip, error = None, item.error
        if error is None:
            try:
                clip = audio.load_audio(item.source, item.sample_rate, name=item.name)  # [N]
            except InputError as err:
                error = err
        clips.append(clip)
        errors.append(error)
    ok = [error is None for error in errors]
    assert ok == [True, False, True, True, True, False, True, True, False, False]
    for item, clip, error in zip(items, clips, errors):
        if error is None:
            assert clip.dtype == np.float32 and clip.ndim == 1
            assert abs(len(clip) - len(jfk)) <= LENGTH_SLACK
        else:
            assert clip is None and "\n" not in str(error) and isinstance(error, InputError)
            assert str(error).startswith(item.name + ": ")
    assert [item.input_path for item in items] == [
        str(variants["mp3.mp3"]), "/no/such/clip.wav", str(folder / "one.flac"), str(folder / "two.wav"),
        f"{server}/jfk.wav", f"{server}/missing.wav", None, None, None, None]
    assert "HTTP 404" in str(errors[5])
    assert items[8].name == "input 8 (bytes)" and "not a readable audio file" in str(errors[8])
    assert items[9].name == "input 9" and "unsupported input type object" in str(errors[9])
    assert [item.error is not None for item in items] == [False] * 9 + [True]  # only the object fails expanding
