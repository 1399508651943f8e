"""What a request's ``audio`` names -> audio samples, under the operator's rules.

A request's ``audio`` string is read as:

- an http(s) URL (any other ``scheme://`` is refused), fetched with ``inputs.FetchOptions``'s bounds
  on size, time and redirects;
- base64 audio: a ``data:`` URI, or text made only of base64 characters (at least
  ``inputs.MIN_BASE64_CHARS`` of them, or anything else that does not look like a path);
- a server-side path: only when the operator allowed directories (``--allow-dir``), and then only a
  file whose real path (symlinks resolved) lies inside one of them; ``..`` is refused outright.
  Relative paths are taken from the server's working directory.

Work is split in two: ``resolve`` (network and text: fetch the URL, decode the base64, check the
path) runs while the request waits its turn, so it holds at most the bounded raw bytes;
``read_audio`` (decode, resample, the log-mel's first pass) runs in an inference worker, and the
audio is decoded again as the log-mel's windows are reached, so no request holds its decoded audio
whole. Every refusal is a ``Refused`` carrying the HTTP status to answer with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterable, Tuple, Union

from ..audio import Samples, open_samples
from ..decoding import DecodingOptions
from ..errors import InputError
from ..inputs import AUDIO_SUFFIXES, AudioLimits, FetchOptions, base64_payload, fetch_url, is_url, looks_like_base64
from ..mel import MelWindows
from ..transcription import WhisperModel, log_mel_windows

DEFAULT_MAX_AUDIO_SECONDS = 3 * 3600.0  # a bound on one request's work; its memory does not grow with it
BASE64_NAME = "audio (base64)"


class Refused(ValueError):
    """A request input that the service will not or cannot read; ``status`` is the HTTP status to send."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SourcePolicy:
    """The operator's rules for request inputs."""

    allow_dirs: Tuple[Path, ...] = ()        # real (symlink-free) absolute directories
    fetch: FetchOptions = FetchOptions()
    limits: AudioLimits = AudioLimits(max_seconds=DEFAULT_MAX_AUDIO_SECONDS)

    @classmethod
    def create(cls, allow_dirs: Iterable = (), fetch: FetchOptions = FetchOptions(),
               max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS) -> "SourcePolicy":
        """A policy whose allowed directories are checked to exist and stored as real paths (ValueError if not)."""
        real = []
        for directory in allow_dirs:
            path = Path(os.path.realpath(directory))
            if not path.is_dir():
                raise ValueError(f"--allow-dir {directory}: not an existing directory")
            real.append(path)
        if not max_audio_seconds > 0:
            raise ValueError(f"--max-audio-seconds must be > 0, got {max_audio_seconds}")
        return cls(tuple(real), fetch, AudioLimits(max_seconds=float(max_audio_seconds)))


@dataclass(frozen=True)
class Source:
    """A request input made readable: the bytes of an audio file, or an allowed file's real path."""

    name: str                    # how messages name it: the URL, the path as given, "audio (base64)", ...
    data: Union[bytes, Path]


def looks_like_path(text: str) -> bool:
    """A string with a path separator, a leading dot or an audio file suffix is meant as a path."""
    return ("/" in text or "\\" in text or text.startswith(".")
            or PurePath(text).suffix.lower() in AUDIO_SUFFIXES)


def classify(text: str) -> str:
    """Which reader an ``audio`` string needs: "url", "base64" or "path" (nothing is probed on disk)."""
    if is_url(text):
        return "url"
    if text[:5].lower() == "data:" or looks_like_base64(text) or not looks_like_path(text):
        return "base64"
    return "path"


def allowed_path(text: str, allow_dirs: Tuple[Path, ...]) -> Path:
    """The real path of ``text`` if it lies inside an allowed directory; else Refused (403)."""
    if not allow_dirs:
        raise Refused(403, f"{text}: server-side paths are refused (the server allows no directory; "
                           "send the audio as base64 or an http(s) URL)")
    if "\0" in text:
        raise Refused(400, "a path cannot contain a NUL character")
    if ".." in PurePath(text).parts:
        raise Refused(403, f"{text}: '..' is not allowed in server-side paths")
    real = Path(os.path.realpath(text))
    if not any(real.is_relative_to(directory) for directory in allow_dirs):
        raise Refused(403, f"{text}: outside the directories this server allows")
    if real.exists() and not real.is_file():
        raise Refused(400, f"{text}: not a regular file")
    return real


def resolve(text: str, policy: SourcePolicy) -> Source:
    """An ``audio`` string -> a Source (fetching URLs, decoding base64, checking paths); Refused on failure."""
    text = text.strip()
    if not text:
        raise Refused(400, "audio is empty: give an http(s) URL, base64 audio or an allowed path")
    kind = classify(text)
    try:
        if kind == "url":
            return Source(text, fetch_url(text, policy.fetch, text))
        if kind == "base64":
            return Source(BASE64_NAME, base64_payload(text, BASE64_NAME))
    except InputError as err:
        raise Refused(400, str(err)) from None
    return Source(text, allowed_path(text, policy.allow_dirs))


def read_audio(source: Source, policy: SourcePolicy, model: WhisperModel, options: DecodingOptions
               ) -> Tuple[Samples, MelWindows]:
    """A Source -> (its Samples, the log-mel windows ``options`` decode: PaddleX's, or openai-whisper's
    with compat="openai"); Refused (400) for audio that is unreadable or outside the limits.

    The limits are the library's admission rules (``inputs.AudioLimits``) with the operator's maximum
    duration, checked against the header before decoding and against the samples while decoding.
    """
    try:
        samples = open_samples(source.data, paddlex=options.paddlex, name=source.name, limits=policy.limits)
        return samples, log_mel_windows(model, samples, options.openai)
    except InputError as err:
        raise Refused(400, str(err)) from None
