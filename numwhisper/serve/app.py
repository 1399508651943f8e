"""The ASGI app of the HTTP service: routes, admission, body bounds and error bodies.

Routes:

- ``POST /multilingual-speech-recognition``: PaddleX serving's endpoint for this pipeline (JSON
  ``{"audio": ...}``; see ``schema``).
- ``POST /v1/audio/transcriptions``: OpenAI's transcription endpoint (multipart ``file``, ``model``,
  ``language``, ``prompt``, ``response_format``, ``temperature``, ``timestamp_granularities[]``).
- ``GET /health``: ``{"logId", "errorCode": 0, "errorMsg": "Healthy"}``.

A request to either POST route is first admitted by ``RequestGate``: one whose declared body is over
the limit gets 413, one beyond ``workers + queue_size`` admitted requests gets 503, both without the
body being kept. An admitted request's input is fetched or decoded from text in a helper thread
(``sources.resolve``), then waits for one of the ``workers`` inference threads, which decode
the audio and transcribe it with the shared, read-only model. Every failure answers with its HTTP
status and the route's error body, never a traceback; unexpected errors are logged and answered 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..errors import PaddleXFailure
from ..mel import SAMPLE_RATE
from ..threads import set_num_threads
from ..transcription import WhisperModel, transcribe_mel
from .config import ServeConfig
from .schema import (HEALTHY_MESSAGE, RESPONSE_FORMATS, ErrorResponse, InferRequest, InferResponse,
                            GRANULARITIES, error_response, infer_result, new_log_id, openai_body, openai_error)
from .sources import Refused, Source, SourcePolicy, read_audio, resolve

INFER_PATH = "/multilingual-speech-recognition"
OPENAI_PATH = "/v1/audio/transcriptions"
HEALTH_PATH = "/health"
GATED_PATHS = (INFER_PATH, OPENAI_PATH)
OPENAI_FIELDS = ("model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]")
MAX_FORM_FIELDS = 16
RETRY_AFTER_SECONDS = "1"

log = logging.getLogger("numwhisper.server")


# ------------------------------------------------------------------------------------ error bodies

def error_json(path: str, status: int, message: str, log_id: Optional[str] = None,
               headers: Optional[dict] = None) -> JSONResponse:
    """A failure answer in the error shape of the route at ``path`` (OpenAI's under /v1/, else PaddleX's)."""
    body = openai_error(status, message) if path.startswith("/v1/") else error_response(status, message, log_id)
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(err: ValidationError) -> str:
    """pydantic's errors as one line: ``audio: Field required; ...``."""
    parts = []
    for detail in err.errors():
        where = ".".join(str(part) for part in detail["loc"]) or "request body"
        parts.append(f"{where}: {detail['msg']}")
    return "; ".join(parts)


# ------------------------------------------------------------------------- admission and body bound

class BodyTooLarge(HTTPException):
    """A request body found to be over the limit while it was being read."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body too large (the limit is {limit} bytes)")


class Gate:
    """Counts admitted requests (used from the event loop thread only)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.inside = 0

    def enter(self) -> bool:
        """Admit one more request if there is room."""
        if self.inside >= self.limit:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        """One admitted request is done."""
        self.inside -= 1


def declared_length(scope) -> Optional[int]:
    """The request's Content-Length, or None when absent or malformed."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def bounded(receive, limit: int):
    """``receive`` that raises BodyTooLarge once more than ``limit`` body bytes have arrived."""
    seen = 0

    async def receive_bounded():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_bounded


class RequestGate:
    """ASGI middleware for the inference routes: body bound (413) and admission (503)."""

    def __init__(self, app, gate: Gate, max_body_bytes: int):
        self.app = app
        self.gate = gate
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in GATED_PATHS:
            await self.app(scope, receive, send)
            return
        path, length = scope["path"], declared_length(scope)
        if length is not None and length > self.max_body_bytes:
            message = f"request body too large ({length} bytes; the limit is {self.max_body_bytes})"
            await error_json(path, 413, message)(scope, receive, send)
            return
        if not self.gate.enter():
            message = (f"server busy: {self.gate.limit} requests are running or waiting "
                       f"(workers + queue); retry later")
            await error_json(path, 503, message, headers={"Retry-After": RETRY_AFTER_SECONDS})(scope, receive, send)
            return
        try:
            await self.app(scope, bounded(receive, self.max_body_bytes), send)
        finally:
            self.gate.leave()


# ------------------------------------------------------------------------------------- inference

class Transcriber:
    """The shared model behind a bounded pool of inference threads."""

    def __init__(self, model: WhisperModel, config: ServeConfig):
        self.model = model
        self.policy: SourcePolicy = config.policy
        self.decoding = config.decoding
        self.executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="numwhisper-infer",
                                           initializer=self.set_threads, initargs=(config.threads_per_worker,))

    @staticmethod
    def set_threads(threads: Optional[int]) -> None:
        """Numba's thread count is per thread: each worker sets its own."""
        if threads is not None:
            set_num_threads(threads)

    def work(self, source: Source, options) -> Tuple[dict, float]:
        """In a worker thread: decode the audio and transcribe it -> (PaddleX's result dict, seconds of audio)."""
        samples, mel = read_audio(source, self.policy, self.model, options)
        result = {"input_path": None, "result": transcribe_mel(self.model, mel, options)}
        return result, samples.n_samples / SAMPLE_RATE

    async def run(self, source: Source, options=None) -> Tuple[dict, float]:
        """Queue one transcription for the workers and wait for it."""
        future = self.executor.submit(self.work, source, options or self.decoding)
        return await asyncio.wrap_future(future)

    async def resolve(self, text: str) -> Source:
        """Fetch or decode a request's ``audio`` string off the event loop."""
        return await run_in_threadpool(resolve, text, self.policy)

    def close(self) -> None:
        """Stop the workers (running transcriptions finish; waiting ones are dropped)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def parse_infer_request(body: bytes, request: Request) -> InferRequest:
    """The PaddleX request body -> InferRequest; Refused (422) for bad JSON or fields. A ``logId`` in the
    body is kept for the error answer, as PaddleX's serving does."""
    if not body.strip():
        raise Refused(422, 'request body is empty; send JSON {"audio": <URL, base64 audio or path>}')
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Refused(422, f"request body is not valid JSON ({err})") from None
    if isinstance(payload, dict) and isinstance(payload.get("logId"), str):
        request.state.log_id = payload["logId"]
    try:
        return InferRequest.model_validate(payload)
    except ValidationError as err:
        raise Refused(422, validation_message(err)) from None


def form_text(form, name: str) -> Optional[str]:
    """A text field of the multipart form (None when absent or empty); Refused (400) for a file there."""
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise Refused(400, f"{name} must be a text field, not a file")
    return value if value else None


def timestamp_granularities(form, response_format: str) -> tuple:
    """The ``timestamp_granularities[]`` fields (default: segment); Refused (400) for an unknown one, or
    for any outside verbose_json, as OpenAI's API answers."""
    given = [value for key in ("timestamp_granularities[]", "timestamp_granularities") for value in form.getlist(key)]
    if any(isinstance(value, UploadFile) for value in given):
        raise Refused(400, "timestamp_granularities[] must be a text field, not a file")
    unknown = sorted(set(given) - set(GRANULARITIES))
    if unknown:
        raise Refused(400, f"timestamp_granularities[] {unknown} not understood; choose from {', '.join(GRANULARITIES)}")
    if given and response_format != "verbose_json":
        raise Refused(400, "timestamp_granularities[] needs response_format verbose_json")
    return tuple(g for g in GRANULARITIES if g in given) or ("segment",)


def openai_options(form, defaults):
    """OpenAI's form fields -> (DecodingOptions, response_format, granularities); Refused (400) for a bad value."""
    response_format = form_text(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise Refused(400, f"response_format {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}")
    granularities = timestamp_granularities(form, response_format)
    changes = {"word_timestamps": True} if "word" in granularities else {}
    if form_text(form, "language"):
        changes["language"] = form_text(form, "language")
    if form_text(form, "prompt"):
        changes["initial_prompt"] = form_text(form, "prompt")
    temperature = form_text(form, "temperature")
    if temperature is not None:
        try:
            changes["temperature"] = float(temperature)
        except ValueError:
            raise Refused(400, f"temperature must be a number, got {temperature!r}") from None
        if not 0.0 <= changes["temperature"] <= 1.0:
            raise Refused(400, f"temperature must be between 0 and 1, got {temperature}")
    try:
        return dataclasses.replace(defaults, **changes), response_format, granularities
    except ValueError as err:
        raise Refused(400, str(err)) from None


# ------------------------------------------------------------------------------------------- app

INFER_OPENAPI = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": InferRequest.model_json_schema()}}}}
OPENAI_OPENAPI = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"},
                   **{name: {"type": "string"} for name in OPENAI_FIELDS}}}}}}}
ERROR_RESPONSES = {status: {"model": ErrorResponse} for status in (400, 403, 413, 422, 500, 503)}


def create_app(model: WhisperModel, config: ServeConfig = ServeConfig(), model_name: str = "") -> FastAPI:
    """The FastAPI app serving ``model`` under ``config`` (run it with uvicorn)."""
    transcriber = Transcriber(model, config)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        transcriber.close()

    app = FastAPI(title="numwhisper", description=f"Whisper speech recognition ({model_name or 'model'})",
                  lifespan=lifespan)
    app.add_middleware(RequestGate, gate=Gate(config.admission_limit), max_body_bytes=config.max_body_bytes)

    @app.exception_handler(Refused)
    async def refused(request: Request, err: Refused):
        return error_json(request.url.path, err.status, err.message, getattr(request.state, "log_id", None))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return error_json(request.url.path, err.status_code, str(err.detail), getattr(request.state, "log_id", None))

    @app.exception_handler(PaddleXFailure)
    async def paddlex_failure(request: Request, err: PaddleXFailure):
        return error_json(request.url.path, 500, f"transcription failed: {err}", getattr(request.state, "log_id", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_json(request.url.path, 500, "internal server error", getattr(request.state, "log_id", None))

    @app.get(HEALTH_PATH, response_model=ErrorResponse)
    async def health():
        """Whether the service is up (PaddleX's health answer)."""
        return ErrorResponse(logId=new_log_id(), errorCode=0, errorMsg=HEALTHY_MESSAGE)

    @app.post(INFER_PATH, response_model=InferResponse, responses=ERROR_RESPONSES, openapi_extra=INFER_OPENAPI)
    async def infer(request: Request):
        """Transcribe ``audio`` (http(s) URL, base64 audio, or a path inside an allowed directory)."""
        payload = parse_infer_request(await request.body(), request)
        source = await transcriber.resolve(payload.audio)
        result, _ = await transcriber.run(source)
        answer = InferResponse(logId=new_log_id(), result=infer_result(result))
        return Response(answer.model_dump_json(), media_type="application/json")

    @app.post(OPENAI_PATH, openapi_extra=OPENAI_OPENAPI)
    async def transcriptions(request: Request):
        """OpenAI's ``audio.transcriptions.create``: the uploaded ``file`` in ``response_format``."""
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Refused(400, "file is required: upload the audio as multipart/form-data field 'file'")
            options, response_format, granularities = openai_options(form, config.decoding)
            source = Source(upload.filename or "file", await upload.read())
        finally:
            await form.close()
        result, duration = await transcriber.run(source, options)
        body, media_type = openai_body(result, response_format, options.task, duration, granularities)
        return Response(body, media_type=media_type)

    return app
