"""What users hand over (paths, directories, URLs, bytes, base64 text, arrays) -> samples and their rate.

Every input ends as a ``RawAudio``: a name (used in messages and, for paths and URLs, as the result's
``input_path``), float32 samples [N, channels] (or [N] for a 1-D array) as the source holds them, and
their sample rate. Decoding is soundfile's (wav, flac, ogg/vorbis, opus, mp3, ...; no ffmpeg);
turning the samples into Whisper's 16 kHz mono is the next stage's (``audio``). An unusable input
raises InputError: a ValueError whose message is one line, ``<input>: <cause>``.

For a batch, ``expand_inputs`` turns a list of inputs into work items (a directory becomes its audio
files); an input that cannot be expanded becomes an item carrying its error instead of stopping the
batch.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import http.client
import io
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import soundfile

from .errors import InputError, one_line
from .mel import SAMPLE_RATE

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                  ".au", ".snd", ".caf", ".w64")
URL_SCHEMES = ("http", "https")
REDIRECT_CODES = (301, 302, 303, 307, 308)
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MIN_BASE64_CHARS = 64  # a bare string at least this long made only of base64 characters is read as base64

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FetchOptions:
    """Limits for reading audio from an http(s) URL."""

    timeout: float = 30.0                # seconds any connect or read may wait
    max_bytes: int = DEFAULT_MAX_BYTES   # larger bodies are refused
    max_redirects: int = 5


class RawAudio(NamedTuple):
    """An input read: its name, its float32 samples [N] or [N, channels], and their rate in Hz."""

    name: str
    samples: np.ndarray
    rate: int


def fail(name: str, cause: str) -> InputError:
    """The InputError for input ``name``: ``<name>: <cause>`` folded into one line."""
    return InputError(one_line(f"{name}: {cause}"))


def short_name(text: str, limit: int = 48) -> str:
    """A long inline input (base64 text, data: URI) shortened for messages."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 3]}... ({len(text)} chars)"


# ----------------------------------------------------------------------------------------------- arrays

def pcm_to_float(samples: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM (full scale = the type's range) or float samples -> float32 in [-1, 1] for integers."""
    kind = samples.dtype.kind
    if kind == "f":
        return samples.astype(np.float32, copy=False)
    if kind == "i":
        scale = float(2 ** (samples.dtype.itemsize * 8 - 1))
        return (samples / scale).astype(np.float32)  # [N, C]
    if kind == "u":
        half = float(2 ** (samples.dtype.itemsize * 8 - 1))
        return ((samples - half) / half).astype(np.float32)  # [N, C]
    raise fail(name, f"expected integer or float PCM samples, got dtype {samples.dtype}")


def checked_rate(sample_rate, name: str) -> int:
    """A sample rate given as int or float -> a positive whole number of Hz."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise fail(name, f"sample rate must be a number, got {sample_rate!r}") from None
    if not np.isfinite(rate) or rate <= 0 or rate != int(rate):
        raise fail(name, f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(rate)


def not_empty(samples: np.ndarray, name: str) -> np.ndarray:
    """The samples [N] or [N, C], refusing a source that holds none."""
    if samples.shape[0] == 0 or samples.size == 0:
        raise fail(name, "no audio samples (zero length)")
    return samples


def from_array(array, sample_rate=SAMPLE_RATE, name: str = "array") -> RawAudio:
    """A NumPy array [N] or channels-last [N, C] of int or float PCM at ``sample_rate`` -> float32 samples."""
    try:
        samples = np.asarray(array)
    except ValueError as err:  # ragged nested lists
        raise fail(name, f"not an array of samples ({err})") from None
    if samples.ndim not in (1, 2):
        raise fail(name, f"expected samples shaped [N] or [N, channels], got shape {list(samples.shape)}")
    if samples.size == 0:
        raise fail(name, "no audio samples (zero length)")
    if samples.ndim == 2 and samples.shape[1] > samples.shape[0]:
        raise fail(name, f"shape {list(samples.shape)} has more channels than samples; "
                         "pass channels last, [N, channels]")
    samples = pcm_to_float(samples, name)  # [N] or [N, C]
    return RawAudio(name, samples, checked_rate(sample_rate, name))


# ------------------------------------------------------------------------------------ files and bytes

def decoder_message(err: Exception) -> str:
    """libsndfile's own words for a decoding failure (without soundfile's "Error opening <object>" prefix)."""
    return str(getattr(err, "error_string", None) or err).strip().rstrip(".")


def decode(source, name: str) -> Tuple[np.ndarray, int]:
    """A file path or binary file object (any format soundfile reads) -> (float32 frames [N, C], sample rate)."""
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)  # [N, C]
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise fail(name, f"not a readable audio file ({decoder_message(err)})") from None
    except OSError as err:
        raise fail(name, f"cannot open ({err.strerror or err})") from None
    return samples, int(rate)


def from_bytes(data: bytes, name: str = "bytes") -> RawAudio:
    """The bytes of an audio file (wav, flac, ogg, mp3, ...) -> its float32 samples [N, C]."""
    data = bytes(data)
    if len(data) == 0:
        raise fail(name, "empty (0 bytes)")
    samples, rate = decode(io.BytesIO(data), name)  # [N, C]
    return RawAudio(name, not_empty(samples, name), rate)


def from_file(path: Union[str, Path], name: Optional[str] = None) -> RawAudio:
    """A local audio file -> its float32 samples [N, C]; errors start with ``name`` (default: the path)."""
    name = name or str(path)
    if not path_exists(str(path)):
        raise fail(name, "no such file or directory")
    path = Path(path)
    if path.is_dir():
        raise fail(name, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise fail(name, "empty file (0 bytes)")
    samples, rate = decode(str(path), name)  # [N, C]
    return RawAudio(name, not_empty(samples, name), rate)


# --------------------------------------------------------------------------------------------- base64

def base64_payload(text: str, name: str) -> bytes:
    """Base64 text, bare or as a ``data:`` URI (standard or URL-safe alphabet, padding optional) -> bytes."""
    text = text.strip()
    if text[:5].lower() == "data:":
        header, comma, body = text.partition(",")
        if not comma:
            raise fail(name, "data: URI without a comma before its data")
        if not header.lower().endswith(";base64"):
            return urllib.parse.unquote_to_bytes(body)
        text = body
    text = _WHITESPACE.sub("", text)
    if not text or not _BASE64_CHARS.match(text):
        raise fail(name, "not valid base64 text")
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as err:
        raise fail(name, f"not valid base64 text ({err})") from None


def from_base64(text: str, name: Optional[str] = None) -> RawAudio:
    """Base64 text of an audio file (optionally a ``data:audio/...;base64,`` URI) -> its float32 samples."""
    name = name or short_name(text.strip())
    return from_bytes(base64_payload(text, name), name=name)


# ------------------------------------------------------------------------------------------------ URLs

class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows at most ``max_redirects`` redirects, and only to http(s) URLs (``name``: the URL asked for)."""

    def __init__(self, max_redirects: int, name: str):
        super().__init__()
        self.max_redirections = max_redirects
        self.name = name

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() not in URL_SCHEMES:
            raise fail(self.name, f"redirected to {newurl}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, fetch: FetchOptions = FetchOptions(), name: Optional[str] = None) -> bytes:
    """The body of an http(s) URL, refusing other schemes, HTTP errors, timeouts and bodies over the limit.

    Error messages start with ``name`` (default: the URL).
    """
    name = name or url
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in URL_SCHEMES:
        raise fail(name, f"unsupported URL scheme {scheme!r} (only http and https)")
    opener = urllib.request.build_opener(_LimitedRedirects(fetch.max_redirects, name))
    request = urllib.request.Request(url, headers={"User-Agent": "numwhisper"})
    try:
        with opener.open(request, timeout=fetch.timeout) as response:
            return read_limited(response, name, fetch.max_bytes)
    except InputError:
        raise
    except urllib.error.HTTPError as err:
        if err.code in REDIRECT_CODES:
            raise fail(name, f"too many redirects or a redirect loop (HTTP {err.code}; "
                            f"at most {fetch.max_redirects} followed)") from None
        raise fail(name, f"HTTP {err.code} {err.reason}") from None
    except (socket.timeout, TimeoutError):
        raise fail(name, f"timed out after {fetch.timeout:g} s") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, (socket.timeout, TimeoutError)):
            raise fail(name, f"timed out after {fetch.timeout:g} s") from None
        raise fail(name, f"cannot fetch ({err.reason})") from None
    except (OSError, ValueError, http.client.HTTPException) as err:  # reset, truncated or malformed
        raise fail(name, f"cannot fetch ({err})") from None


def read_limited(response, name: str, max_bytes: int, chunk: int = 1 << 20) -> bytes:
    """Read a response body, stopping as soon as it is known to exceed ``max_bytes``."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise fail(name, f"too large ({int(declared)} bytes; the limit is {max_bytes})")
    parts = []
    size = 0
    while True:
        part = response.read(min(chunk, max_bytes + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > max_bytes:
            raise fail(name, f"too large (more than {max_bytes} bytes, the limit)")


def from_url(url: str, fetch: FetchOptions = FetchOptions()) -> RawAudio:
    """An audio file at an http(s) URL -> its float32 samples."""
    return from_bytes(fetch_url(url, fetch), name=url)


# ----------------------------------------------------------------------------------- telling kinds apart

def kind_of(source) -> str:
    """Which reader a source needs: "array", "bytes", "file-object", "url", "data-uri", "path" or "base64"."""
    if isinstance(source, np.ndarray):
        return "array"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "bytes"
    if hasattr(source, "read"):
        return "file-object"
    if isinstance(source, Path):
        return "path"
    if not isinstance(source, str):
        return "unknown"
    if is_url(source):
        return "url"
    if source[:5].lower() == "data:":
        return "data-uri"
    if looks_like_base64(source) and not path_exists(source):
        return "base64"
    return "path"


def path_exists(text: str) -> bool:
    """Whether a string names an existing file or directory (False for names the OS refuses, e.g. too long)."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


def is_url(text: str) -> bool:
    """Whether text starts with a URL scheme ("scheme://"), any scheme (only http and https are fetched)."""
    return _SCHEME.match(text) is not None


def looks_like_base64(text: str) -> bool:
    """A long string made only of base64 characters (no dots, so no file name) is taken as base64 audio."""
    compact = _WHITESPACE.sub("", text)
    return len(compact) >= MIN_BASE64_CHARS and bool(_BASE64_CHARS.match(compact))


def load_input(source, sample_rate=None, fetch: FetchOptions = FetchOptions(),
               name: Optional[str] = None) -> RawAudio:
    """Any supported input -> RawAudio (name, float32 samples [N] or [N, channels], rate).

    ``source``: a path (str or Path), an http(s) URL, base64 text or a ``data:`` URI, bytes or a binary
    file object holding an audio file, or a NumPy array [N] / [N, channels] at ``sample_rate`` (default
    16 kHz). ``name`` replaces the default name (the path or URL; else "array", "bytes", ...). Raises
    InputError (a ValueError) whose message starts with the name.
    """
    kind = kind_of(source)
    if kind == "array":
        return from_array(source, SAMPLE_RATE if sample_rate is None else sample_rate, name or "array")
    if kind == "bytes":
        return from_bytes(source, name or "bytes")
    if kind == "file-object":
        return from_bytes(source.read(), name or str(getattr(source, "name", "file object")))
    if kind == "url":
        name = name or source
        return from_bytes(fetch_url(source, fetch, name), name)
    if kind in ("data-uri", "base64"):
        return from_base64(source, name or short_name(source.strip()))
    if kind == "path":
        return from_file(source, name)
    raise fail(name or type(source).__name__, "unsupported input; give a path, URL, base64 text, bytes or an array")


# ------------------------------------------------------------------------------------------- batches

@dataclass(frozen=True, eq=False)
class WorkItem:
    """One input of a batch: its name, what to read, and the error when it cannot even be expanded."""

    name: str                          # shown in messages; the path or URL when there is one
    source: Any = None                 # what ``load_input`` reads
    input_path: Optional[str] = None   # the result's input_path: the path or URL, else None
    sample_rate: Optional[float] = None
    error: Optional[InputError] = None


def directory_items(directory: Path) -> List[WorkItem]:
    """The audio files directly inside ``directory`` (by suffix, hidden files skipped), sorted by name."""
    try:
        files = sorted(p for p in directory.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_SUFFIXES)
    except OSError as err:
        return [WorkItem(name=str(directory), error=fail(str(directory), f"cannot list ({err.strerror or err})"))]
    if not files:
        error = fail(str(directory), f"directory holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return [WorkItem(name=str(directory), error=error)]
    return [WorkItem(name=str(p), source=str(p), input_path=str(p)) for p in files]


def expand_one(source, index: int) -> List[WorkItem]:
    """One user input -> its work items (a directory gives one per audio file)."""
    kind = kind_of(source)
    if kind == "array":
        return [WorkItem(name=f"input {index} (array)", source=source)]
    if kind == "path":
        if path_exists(source) and Path(source).is_dir():
            return directory_items(Path(source))
        return [WorkItem(name=str(source), source=str(source), input_path=str(source))]
    if kind == "url":
        return [WorkItem(name=source, source=source, input_path=source)]
    if kind in ("data-uri", "base64"):
        return [WorkItem(name=f"input {index} ({short_name(source.strip(), 24)})", source=source)]
    if kind in ("bytes", "file-object"):
        return [WorkItem(name=f"input {index} ({kind})", source=source)]
    error = fail(f"input {index}", f"unsupported input type {type(source).__name__}")
    return [WorkItem(name=f"input {index}", error=error)]


def expand_inputs(inputs: Iterable) -> List[WorkItem]:
    """Inputs (paths, directories, URLs, base64 text, bytes, arrays or (array, sample_rate) pairs) -> work items.

    Directories expand to their audio files, sorted. Nothing is read yet; an input that cannot be
    expanded (an empty directory, an unsupported type) becomes an item carrying its InputError.
    """
    items = []
    for index, source in enumerate(inputs, start=1):
        rate = None
        if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], np.ndarray):
            source, rate = source
        for item in expand_one(source, index):
            items.append(dataclasses.replace(item, sample_rate=rate) if rate is not None else item)
    return items

