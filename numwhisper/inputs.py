"""What users hand over (paths, directories, URLs, bytes, base64 text, arrays) -> samples and their rate.

Every input ends as a ``RawAudio``: a name (used in messages and, for paths and URLs, as the result's
``input_path``), its sample rate, and its float32 samples as blocks [n, channels] (or one block [N]
for a 1-D array), read lazily. Decoding is soundfile's (wav, flac, ogg/vorbis, opus, mp3, ...; no
ffmpeg); turning the blocks into Whisper's 16 kHz mono is the next stage's (``audio``), block by
block, so memory follows what the file holds, never what its header claims.

``AudioLimits`` are the admission rules every entry point (CLI, library, service) applies before
anything large is allocated: a plausible sample rate, and a maximum duration checked against the
header and again against the samples actually decoded. A file damaged part way (truncated, a
corrupted block) yields the samples before the damage, in every format. An unusable input raises
InputError: a ValueError whose message is one line, ``<input>: <cause>``.

For a batch, ``expand_inputs`` turns a list of inputs into work items (a directory becomes its audio
files, a list file ``.txt``/``.list``/``.lst``/``.tsv``/``.jsonl`` its entries); an input that cannot
be expanded becomes an item carrying its error instead of stopping the batch.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import errno
import http.client
import io
import json
import math
import os
import re
import socket
import stat
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import soundfile

from .errors import InputError, one_line, printable
from .mel import SAMPLE_RATE

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                  ".au", ".snd", ".caf", ".w64")
URL_SCHEMES = ("http", "https")
REDIRECT_CODES = (301, 302, 303, 307, 308)
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MIN_BASE64_CHARS = 64  # a bare string at least this long made only of base64 characters is read as base64
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
DEFAULT_MAX_AUDIO_SECONDS = 24 * 3600.0  # a day of audio; see AudioLimits
BLOCK_FRAMES = 4096          # frames decoded per read (4096 x channels x 4 bytes held at a time)
UNKNOWN_LENGTH = 2 ** 63 - 1  # libsndfile's frame count for a stream that does not declare its length

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FetchOptions:
    """Limits for reading audio from an http(s) URL."""

    timeout: float = 30.0                # seconds any connect or read may wait
    max_bytes: int = DEFAULT_MAX_BYTES   # larger bodies are refused
    max_redirects: int = 5


@dataclass(frozen=True)
class AudioLimits:
    """Admission rules for audio, applied before anything large is allocated.

    ``max_seconds`` bounds the work one input can ask for. On the NumPy backend memory does not grow
    with it (the log-mel is made window by window from the input read twice); backends that take a
    whole clip's log-mel (Paddle) peak at about 36 MB per minute of audio (frames, spectrum and power
    held together; 80 bins). Sample rates outside ``min_rate``..``max_rate`` are not
    recordings but damaged or hostile headers (a 1 Hz header turns 2000 samples into 33 minutes).
    """

    max_seconds: float = DEFAULT_MAX_AUDIO_SECONDS
    min_rate: int = MIN_SAMPLE_RATE
    max_rate: int = MAX_SAMPLE_RATE

    def __post_init__(self):
        if not (math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise ValueError(f"the maximum audio duration must be a positive number of seconds, got {self.max_seconds}")
        if not 0 < self.min_rate <= self.max_rate:
            raise ValueError(f"bad sample rate range {self.min_rate}..{self.max_rate} Hz")

    def check_rate(self, rate: int, name: str) -> int:
        """``rate`` if it lies in the plausible range, else InputError."""
        if not self.min_rate <= rate <= self.max_rate:
            raise fail(name, f"sample rate {rate} Hz is outside {self.min_rate}..{self.max_rate} Hz "
                             "(a damaged header, or not a recording)")
        return rate

    def max_frames(self, rate: int) -> int:
        """The most frames at ``rate`` that fit in ``max_seconds``."""
        return int(self.max_seconds * rate)

    def too_long(self, name: str, what: str) -> InputError:
        """The error for audio over ``max_seconds``; ``what`` says how its length is known."""
        return fail(name, f"audio too long ({what}; the limit is {self.max_seconds:g} s, --max-audio-seconds)")


class RawAudio(NamedTuple):
    """An input opened: its name, its rate in Hz, and its float32 samples as blocks [n] or [n, channels].

    ``blocks`` is read lazily (a file stays open until it is exhausted) and yields at most
    ``AudioLimits.max_frames(rate)`` frames in all.
    """

    name: str
    rate: int
    blocks: Iterator[np.ndarray]

    def all_samples(self) -> np.ndarray:
        """Every block joined: float32 [N] or [N, channels] (reads the input; once only)."""
        return np.concatenate(list(self.blocks))  # [N] or [N, C]


def fail(name: str, cause: str) -> InputError:
    """The InputError for input ``name``: ``<name>: <cause>`` in one line (control characters in the name escaped)."""
    return InputError(one_line(f"{printable(name)}: {cause}"))


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


def checked_rate(sample_rate, name: str, limits: AudioLimits) -> int:
    """A sample rate given as int or float -> a whole number of Hz within the limits' range."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise fail(name, f"sample rate must be a number, got {sample_rate!r}") from None
    if not math.isfinite(rate) or rate <= 0 or rate != int(rate):
        raise fail(name, f"sample rate must be a positive whole number of Hz, got {sample_rate!r}")
    return limits.check_rate(int(rate), name)


def from_array(array, sample_rate=SAMPLE_RATE, name: str = "array", limits: AudioLimits = AudioLimits()) -> RawAudio:
    """A NumPy array [N] or channels-last [N, C] of int or float PCM at ``sample_rate`` -> one float32 block."""
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
    rate = checked_rate(sample_rate, name, limits)
    if samples.shape[0] > limits.max_frames(rate):
        raise limits.too_long(name, f"{samples.shape[0] / rate:.1f} s")
    samples = pcm_to_float(samples, name)  # [N] or [N, C]
    return RawAudio(name, rate, iter([samples]))


# ------------------------------------------------------------------------------------ files and bytes

# libsndfile's public error codes (1..4) speak plainly; code 7 ("not a regular file (possibly a
# pipe?)") is what it also says of streams too short or damaged to parse, and higher codes name its
# internals, so both are said in plain words with libsndfile's own kept in brackets.
_PUBLIC_DECODER_CODES = (1, 2, 3, 4)
_DECODER_CAUSES = {7: "too short or damaged to be read as audio"}


def decoder_message(err: Exception) -> str:
    """libsndfile's failure in plain words (without soundfile's "Error opening <object>" prefix)."""
    words = str(getattr(err, "error_string", None) or err).strip().rstrip(".")
    code = getattr(err, "code", None)
    if code in _DECODER_CAUSES:
        return _DECODER_CAUSES[code]
    if isinstance(code, int) and code not in _PUBLIC_DECODER_CODES:
        return f"damaged or malformed [libsndfile: {words}]"
    return words


def open_sound(source, name: str, limits: AudioLimits) -> soundfile.SoundFile:
    """A path or binary file object -> an open SoundFile whose header passed the limits (InputError if not)."""
    try:
        sound = soundfile.SoundFile(source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise fail(name, f"not a readable audio file ({decoder_message(err)})") from None
    except OSError as err:
        raise fail(name, f"cannot open ({err.strerror or err})") from None
    try:
        rate = limits.check_rate(int(sound.samplerate), name)
        if sound.frames != UNKNOWN_LENGTH and sound.frames > limits.max_frames(rate):
            raise limits.too_long(name, f"its header declares {sound.frames / rate:.1f} s")
    except InputError:
        sound.close()
        raise
    return sound


def read_into(sound: soundfile.SoundFile, out: np.ndarray) -> Tuple[int, Optional[str]]:
    """Decode up to ``len(out)`` frames into ``out`` float32 [n, C] -> (frames decoded, libsndfile's error or None).

    soundfile's own ``read`` raises when anything fails after decoding, including the seek it makes
    to keep its position, which fails at the end of damaged or length-less FLAC streams; the frames
    that did decode are then lost. libsndfile's ``sf_readf_float``, called through soundfile's handle
    (its cffi module and the open file's pointer), returns them with their count.
    """
    pointer = soundfile._ffi.cast("float *", out.ctypes.data)
    count = soundfile._snd.sf_readf_float(sound._file, pointer, out.shape[0])
    code = soundfile._snd.sf_error(sound._file)
    if not code:
        return count, None
    return count, soundfile._ffi.string(soundfile._snd.sf_error_number(code)).decode("utf-8", "replace").rstrip(".")


def rewind(sound: soundfile.SoundFile) -> None:
    """Seek a just-opened file to its start, as soundfile.read does before it reads.

    libmpg123 decodes some mp3 samples 1 ulp apart after that seek, so seeking too keeps every
    sample equal to soundfile.read's. A damaged stream may refuse the seek; it is then read from
    where it was opened, which is its start as well.
    """
    if not sound.seekable():
        return
    try:
        sound.seek(0)
    except (soundfile.LibsndfileError, RuntimeError):
        pass


def read_blocks(sound: soundfile.SoundFile, name: str, limits: AudioLimits) -> Iterator[np.ndarray]:
    """An open file's float32 frames [n, C], ``BLOCK_FRAMES`` at a time, then the file is closed.

    Memory follows the samples that actually decode, whatever the header says. Damage (a truncated
    or corrupted stream) ends the audio with the last frames that decoded; damage before any frame,
    no frames at all, or audio over the limit raises InputError.
    """
    with sound:
        most = limits.max_frames(sound.samplerate)
        frames = 0
        rewind(sound)
        while True:
            block = np.empty((BLOCK_FRAMES, sound.channels), np.float32)  # [BLOCK_FRAMES, C]
            count, damage = read_into(sound, block)
            if count:
                frames += count
                if frames > most:
                    raise limits.too_long(name, f"more than {most / sound.samplerate:g} s decode")
                yield block[:count]  # [count, C]
            if count and not damage:
                continue
            if frames == 0 and damage:
                raise fail(name, f"damaged: no audio decodes [libsndfile: {damage}]")
            if frames == 0:
                raise fail(name, "no audio samples (zero length)")
            return


def from_sound(source, name: str, limits: AudioLimits) -> RawAudio:
    """A path or binary file object -> RawAudio whose blocks decode it lazily."""
    sound = open_sound(source, name, limits)
    return RawAudio(name, int(sound.samplerate), read_blocks(sound, name, limits))


def from_bytes(data: bytes, name: str = "bytes", limits: AudioLimits = AudioLimits()) -> RawAudio:
    """The bytes of an audio file (wav, flac, ogg, mp3, ...) -> RawAudio decoding them block by block."""
    data = bytes(data)
    if len(data) == 0:
        raise fail(name, "empty (0 bytes)")
    return from_sound(io.BytesIO(data), name, limits)


_FILE_KINDS = ((stat.S_ISDIR, "is a directory, not an audio file"),
               (stat.S_ISFIFO, "is a named pipe (FIFO), not an audio file"),
               (stat.S_ISCHR, "is a character device, not an audio file"),
               (stat.S_ISBLK, "is a block device, not an audio file"),
               (stat.S_ISSOCK, "is a socket, not an audio file"))


def regular_file_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a readable, non-empty regular file, in plain words; None when it is one."""
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a loop of symbolic links"
        if err.errno == errno.ENOENT and os.path.lexists(path):
            return "a symbolic link to a file that does not exist"
        if err.errno == errno.ENOENT:
            return "no such file or directory"
        return f"cannot open ({err.strerror or err})"
    except ValueError:  # a NUL character in the name
        return "not a valid file name"
    for is_kind, cause in _FILE_KINDS:
        if is_kind(info.st_mode):
            return cause
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    return None


def from_file(path: Union[str, Path], name: Optional[str] = None, limits: AudioLimits = AudioLimits()) -> RawAudio:
    """A local audio file -> RawAudio decoding it block by block; errors start with ``name`` (default: the path)."""
    name = name or str(path)
    problem = regular_file_problem(str(path))
    if problem:
        raise fail(name, problem)
    return from_sound(str(path), name, limits)


# ------------------------------------------------------------------------------ native decoder noise

_NATIVE_LINE = re.compile(r"^(\[[^\]]*\]|(Note|Warning|Error|warning|error|note):)")  # libmpg123's own lines
_STDERR_LOCK = threading.RLock()


class NativeStderr:
    """Holds what C decoders print to file descriptor 2 (libmpg123 reports damaged frames there).

    Inside the block, fd 2 goes to a temporary file. On exit it is restored; lines in a C decoder's
    format are kept in ``lines`` (for an error message, or to drop), and any other line is written
    on to stderr. One capture at a time in the process (other threads' stderr passes through it).
    """

    def __init__(self):
        self.lines: List[str] = []

    def __enter__(self) -> "NativeStderr":
        _STDERR_LOCK.acquire()
        self._saved = None
        try:
            sys.stderr.flush()
            self._file = tempfile.TemporaryFile()
        except (OSError, ValueError, AttributeError):  # no stderr or no temporary file: decoders speak freely
            return self
        try:
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except OSError:  # no fd 2 to redirect
            self._file.close()
            self._saved = None
        return self

    def __exit__(self, *exc) -> bool:
        try:
            if self._saved is None:
                return False
            sys.stderr.flush()  # Python's own writes meanwhile go through the capture like the rest
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._file.seek(0)
            text = self._file.read().decode("utf-8", "replace")
            self._file.close()
            others = []
            for line in text.splitlines():
                if line.strip():
                    (self.lines if _NATIVE_LINE.match(line) else others).append(line)
            if others:
                sys.stderr.write("\n".join(others) + "\n")
            return False
        finally:
            _STDERR_LOCK.release()

    def summary(self, most: int = 2) -> str:
        """The first ``most`` distinct decoder complaints, without their source locations."""
        return decoder_summary(self.lines, most)


def decoder_summary(lines: Iterable[str], most: int = 2) -> str:
    """The first ``most`` distinct lines of C decoders' complaints, without their source locations."""
    said = [re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in lines]
    said = list(dict.fromkeys(line for line in said if line))
    return "; ".join(said[:most]) + (f" (+{len(said) - most} more)" if len(said) > most else "")


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


def from_base64(text: str, name: Optional[str] = None, limits: AudioLimits = AudioLimits()) -> RawAudio:
    """Base64 text of an audio file (optionally a ``data:audio/...;base64,`` URI) -> RawAudio decoding it."""
    name = name or short_name(text.strip())
    return from_bytes(base64_payload(text, name), name, limits)


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


# ----------------------------------------------------------------------------------- telling kinds apart

def kind_of(source) -> str:
    """Which reader a source needs: "array", "bytes", "file-object", "url", "data-uri", "path" or "base64"
    ("empty" for a blank string, "unknown" for anything else)."""
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
    if not source.strip():
        return "empty"
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
               name: Optional[str] = None, limits: AudioLimits = AudioLimits()) -> RawAudio:
    """Any supported input -> RawAudio (name, rate, float32 blocks [n] or [n, channels], read lazily).

    ``source``: a path (str or Path), an http(s) URL, base64 text or a ``data:`` URI, bytes or a binary
    file object holding an audio file, or a NumPy array [N] / [N, channels] at ``sample_rate`` (default
    16 kHz). ``name`` replaces the default name (the path or URL; else "array", "bytes", ...). Raises
    InputError (a ValueError) whose message starts with the name, when opening or while the blocks
    are read.
    """
    kind = kind_of(source)
    if kind == "array":
        return from_array(source, SAMPLE_RATE if sample_rate is None else sample_rate, name or "array", limits)
    if kind == "bytes":
        return from_bytes(source, name or "bytes", limits)
    if kind == "file-object":
        return from_bytes(source.read(), name or str(getattr(source, "name", "file object")), limits)
    if kind == "url":
        name = name or source
        return from_bytes(fetch_url(source, fetch, name), name, limits)
    if kind in ("data-uri", "base64"):
        return from_base64(source, name or short_name(source.strip()), limits)
    if kind == "path":
        return from_file(source, name, limits)
    if kind == "empty":
        raise fail(name or "input", "an empty string names no audio; give a path, URL, base64 text, bytes or an array")
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


# A list file names a batch's inputs, one per line or row; its entries are read as paths or URLs.
LIST_SUFFIXES = (".txt", ".list", ".lst", ".tsv", ".jsonl")
LIST_COLUMNS = ("path", "input")  # the column (.tsv) or key (.jsonl) holding an entry, in order of preference
MAX_LIST_BYTES = 64 * 1024 * 1024


def is_list_file(source) -> bool:
    """Whether a path input names a list file (by its suffix) rather than audio."""
    return Path(str(source)).suffix.lower() in LIST_SUFFIXES


def list_items(path: Path) -> List[WorkItem]:
    """A list file's entries as work items, in order.

    ``.txt``, ``.list``, ``.lst``: one path or URL per line, blank lines and ``#`` comments skipped.
    ``.tsv``: a header row naming a ``path`` (or ``input``) column, then one row per input. ``.jsonl``:
    one JSON object per line with a ``path`` (or ``input``) key (so a ``--summary`` file is a list).
    Relative paths are taken relative to the list file's folder; a directory entry gives its audio
    files. A line that cannot be read becomes an item carrying an error naming the file and the line;
    the other lines still count. A list file inside a list is refused (no loops).
    """
    try:
        if os.path.getsize(path) > MAX_LIST_BYTES:
            return [list_error(path, None, f"list file larger than {MAX_LIST_BYTES // (1024 * 1024)} MB")]
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        return [list_error(path, None, f"not UTF-8 text ({err.reason} at byte {err.start})")]
    except OSError as err:
        return [list_error(path, None, f"cannot read the list ({err.strerror or err})")]
    reader = {".tsv": tsv_entries, ".jsonl": jsonl_entries}.get(path.suffix.lower(), text_entries)
    items: List[WorkItem] = []
    for line, entry, problem in reader(text):
        items.extend([list_error(path, line, problem)] if problem else entry_items(path, line, entry))
    return items


def list_error(path: Path, line: Optional[int], cause: str) -> WorkItem:
    """The work item standing for an unreadable list (``line`` None) or one unreadable line of it."""
    name = str(path) if line is None else f"{path}, line {line}"
    return WorkItem(name=name, error=fail(name, cause))


# (line number, the entry, what is wrong with the line or None) of each line that holds an entry
ListEntries = Iterator[Tuple[int, str, Optional[str]]]
COLUMN_NAMES = " or ".join(repr(name) for name in LIST_COLUMNS)


def text_entries(text: str) -> ListEntries:
    """The entries of a plain list: every line that is neither blank nor a ``#`` comment."""
    for line, raw in enumerate(text.splitlines(), start=1):
        entry = raw.strip()
        if entry and not entry.startswith("#"):
            yield line, entry, None


def tsv_entries(text: str) -> ListEntries:
    """The entries of a tab-separated list: its ``path`` (or ``input``) column under the header row."""
    rows = [(line, raw) for line, raw in enumerate(text.splitlines(), start=1)
            if raw.strip() and not raw.lstrip().startswith("#")]
    if not rows:
        return
    header_line, header = rows[0]
    names = [name.strip().lower() for name in header.split("\t")]
    column = next((names.index(name) for name in LIST_COLUMNS if name in names), None)
    if column is None:
        yield header_line, "", f"the header row has no {COLUMN_NAMES} column"
        return
    for line, raw in rows[1:]:
        cells = raw.split("\t")
        entry = cells[column].strip() if column < len(cells) else ""
        yield line, entry, None if entry else f"no {names[column]!r} value"


def jsonl_entries(text: str) -> ListEntries:
    """The entries of a JSON Lines list: each object's ``path`` (or ``input``) string."""
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as err:
            yield line, "", f"not valid JSON ({getattr(err, 'msg', err)})"
            continue
        key = next((key for key in LIST_COLUMNS if isinstance(row, dict) and key in row), None)
        if key is None:
            yield line, "", f"not a JSON object with a {COLUMN_NAMES} key"
        elif not isinstance(row[key], str) or not row[key].strip():
            yield line, "", f"{key!r} is not a non-empty string"
        else:
            yield line, row[key].strip(), None


def entry_items(path: Path, line: int, entry: str) -> List[WorkItem]:
    """The work items of one entry of list file ``path``: a URL, or a path taken relative to the list's folder."""
    if is_url(entry):
        return [WorkItem(name=entry, source=entry, input_path=entry)]
    target = path.parent / Path(entry).expanduser()
    if path_exists(str(target)) and target.is_dir():
        return directory_items(target)
    if is_list_file(target):
        return [list_error(path, line, f"{entry} is a list file; lists inside lists are not expanded")]
    return [WorkItem(name=str(target), source=str(target), input_path=str(target))]


def expand_one(source, index: int) -> List[WorkItem]:
    """One user input -> its work items (a directory gives one per audio file, a list file one per entry)."""
    kind = kind_of(source)
    if kind == "array":
        return [WorkItem(name=f"input {index} (array)", source=source)]
    if kind == "path":
        if path_exists(source) and Path(source).is_dir():
            return directory_items(Path(source))
        if is_list_file(source):
            return list_items(Path(source))
        return [WorkItem(name=str(source), source=str(source), input_path=str(source))]
    if kind == "url":
        return [WorkItem(name=source, source=source, input_path=source)]
    if kind in ("data-uri", "base64"):
        return [WorkItem(name=f"input {index} ({short_name(source.strip(), 24)})", source=source)]
    if kind in ("bytes", "file-object"):
        return [WorkItem(name=f"input {index} ({kind})", source=source)]
    if kind == "empty":
        error = fail(f"input {index}", "an empty string names no audio")
        return [WorkItem(name=f"input {index}", error=error)]
    error = fail(f"input {index}", f"unsupported input type {type(source).__name__}")
    return [WorkItem(name=f"input {index}", error=error)]


def expand_inputs(inputs: Iterable) -> List[WorkItem]:
    """Inputs (paths, directories, URLs, base64 text, bytes, arrays or (array, sample_rate) pairs) -> work items.

    Directories expand to their audio files, sorted; list files to their entries (``list_items``).
    Nothing is read yet; an input that cannot be
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

