"""The HTTP service's request and response bodies, and how a transcription result becomes one.

Two dialects:

- PaddleX serving (``POST /multilingual-speech-recognition``): request ``{"audio": str}``; success
  ``{"logId", "result": {"text", "segments", "language"}, "errorCode": 0, "errorMsg": "Success"}``,
  segment keys in camelCase (``avg_logprob`` -> ``avgLogProb``, ``compression_ratio`` ->
  ``compressionRatio``, ``no_speech_prob`` -> ``noSpeechProb``) and values cast as PaddleX's schema
  declares them (so ``temperature`` 0 is sent as 0.0); with word timestamps each segment also
  has ``words`` [{"word", "start", "end", "probability"}]; failure ``{"logId", "errorCode": <HTTP
  status>, "errorMsg": <cause>}``.
- OpenAI's audio API (``POST /v1/audio/transcriptions``): ``json`` -> ``{"text"}``; ``verbose_json`` ->
  ``{"task", "language" (English name), "duration", "text", "segments"}`` with the result's snake_case
  segments; with ``timestamp_granularities[]=word`` a top-level ``words`` [{"word", "start", "end"}]
  (the word without its leading space, as OpenAI answers), and ``segments`` only when ``segment`` is
  asked for too; ``text``, ``srt`` and ``vtt`` as plain text; failure ``{"error": {"message", "type",
  "param", "code"}}``.
"""

from __future__ import annotations

import uuid
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from pydantic import BaseModel

from ..languages import LANGUAGES, language_code
from ..result import plain, transcript_of
from ..writers import to_srt, to_vtt

SUCCESS_MESSAGE = "Success"
HEALTHY_MESSAGE = "Healthy"
# result segment key -> PaddleX serving key (the other keys keep their names)
CAMEL_CASE_KEYS = {"avg_logprob": "avgLogProb", "compression_ratio": "compressionRatio",
                   "no_speech_prob": "noSpeechProb"}
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")  # OpenAI's timestamp_granularities[]
TEXT_MEDIA = "text/plain; charset=utf-8"


def new_log_id() -> str:
    """A fresh request id (a random UUID, as PaddleX's serving uses)."""
    return str(uuid.uuid4())


# ------------------------------------------------------------------------------- PaddleX serving

class InferRequest(BaseModel):
    """The request body: ``audio`` is an http(s) URL, base64 audio, or an allowed server-side path."""

    audio: str


class SegmentBase(BaseModel):
    """The fields a segment has under the same name in both dialects (PaddleX's serving types)."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: List[int]
    temperature: float


class Segment(SegmentBase):
    """One segment, as PaddleX's serving schema types it."""

    avgLogProb: float
    compressionRatio: float
    noSpeechProb: float


class Word(BaseModel):
    """One word of a segment, with its times (seconds) and probability."""

    word: str
    start: float
    end: float
    probability: float


class SegmentWithWords(Segment):
    """A segment of a transcription made with word timestamps."""

    words: List[Word]


class InferResult(BaseModel):
    """The transcript: whole text, segments and language code."""

    text: str
    segments: List[Union[SegmentWithWords, Segment]]
    language: str


class InferResponse(BaseModel):
    """A successful answer (field order as PaddleX's serving sends it)."""

    logId: str
    result: InferResult
    errorCode: int = 0
    errorMsg: str = SUCCESS_MESSAGE


class ErrorResponse(BaseModel):
    """A failed request (``errorCode`` is the HTTP status) or the health answer (``errorCode`` 0)."""

    logId: str
    errorCode: int
    errorMsg: str


def camel_segment(segment: Mapping) -> dict:
    """A result segment with PaddleX serving's camelCase keys."""
    return {CAMEL_CASE_KEYS.get(key, key): value for key, value in plain(segment).items()}


def infer_result(result: Mapping) -> InferResult:
    """PaddleX's result dict ({"input_path", "result": {...}} or the inner dict) -> the serving result."""
    transcript = transcript_of(result)
    segments = [(SegmentWithWords if "words" in segment else Segment)(**camel_segment(segment))
                for segment in transcript["segments"]]
    return InferResult(text=transcript["text"], language=transcript["language"], segments=segments)


def error_response(status: int, message: str, log_id: Optional[str] = None) -> dict:
    """The PaddleX-shaped failure body."""
    return ErrorResponse(logId=log_id or new_log_id(), errorCode=status, errorMsg=message).model_dump()


# ------------------------------------------------------------------------------------ OpenAI API

class Transcription(BaseModel):
    """OpenAI's ``json`` response."""

    text: str


class VerboseSegment(SegmentBase):
    """A segment of OpenAI's ``verbose_json`` response (the result's own keys)."""

    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TimedWord(BaseModel):
    """A word of OpenAI's ``verbose_json`` response."""

    word: str
    start: float
    end: float


class VerboseTranscription(BaseModel):
    """OpenAI's ``verbose_json`` response; ``segments`` and ``words`` as the granularities ask."""

    task: str
    language: str
    duration: float
    text: str
    segments: Optional[List[VerboseSegment]] = None
    words: Optional[List[TimedWord]] = None


def language_name(code: str) -> str:
    """A result's language code (PaddleX's "iw" included) -> OpenAI's lower-case English name."""
    try:
        return LANGUAGES[language_code(code)]
    except ValueError:
        return code


def timed_words(segments: Sequence[Mapping]) -> List[TimedWord]:
    """Every word of the segments, in order, as OpenAI lists them (no leading space, no probability)."""
    return [TimedWord(word=w["word"].strip(), start=w["start"], end=w["end"])
            for segment in segments for w in segment.get("words", [])]


def openai_body(result: Mapping, response_format: str, task: str, duration: float,
                granularities: Sequence[str] = ("segment",)) -> Tuple[str, str]:
    """A result rendered as OpenAI's ``response_format`` -> (body text, media type); ``granularities``
    (verbose_json only) picks segments and/or words."""
    transcript = transcript_of(result)
    text = transcript["text"].strip()
    if response_format == "json":
        return Transcription(text=text).model_dump_json(), "application/json"
    if response_format == "verbose_json":
        segments = transcript["segments"]
        verbose = VerboseTranscription(
            task=task, language=language_name(transcript["language"]), duration=duration, text=text,
            segments=[VerboseSegment(**plain(s)) for s in segments] if "segment" in granularities else None,
            words=timed_words(segments) if "word" in granularities else None)
        return verbose.model_dump_json(exclude_none=True), "application/json"
    if response_format == "text":
        return text + "\n", TEXT_MEDIA
    if response_format == "srt":
        return to_srt(transcript), TEXT_MEDIA
    if response_format == "vtt":
        return to_vtt(transcript), "text/vtt; charset=utf-8"
    raise ValueError(f"unknown response_format {response_format!r}; choose from {', '.join(RESPONSE_FORMATS)}")


def openai_error(status: int, message: str, param: Optional[str] = None) -> dict:
    """OpenAI's failure body."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}
