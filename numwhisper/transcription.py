"""Long-form transcription: PaddleX's loop over 30 s windows, producing PaddleX's result dict.

``load_model`` makes a ``WhisperModel`` (a backend and its tokenizers) from a model name or path;
``transcribe`` reads any input and runs the loop (``transcribe_samples`` for samples already at
16 kHz, ``transcribe_mel`` for a clip's log-mel).

The log-mel of the whole clip is cut into windows starting at ``seek`` (in mel frames). On the NumPy
and Paddle backends the windows are computed as the loop reaches them from the input read a second
time (``mel.StreamedLogMel``), with the same values, so memory does not grow with the clip. Each window
is decoded (with temperature fallback when the result is too repetitive or too unlikely), skipped
when it looks like silence, and split into segments at pairs of adjacent timestamp tokens. The next
window starts at the last closing timestamp, or 30 s later when the window had no such pair. With
condition_on_previous_text the tokens decoded so far are the next window's prompt.

Times are the float sums PaddleX computes (seek * 160 / 16000 + index * 0.02, e.g.
2.7600000000000002) and, as in PaddleX, a segment's end may lie past the end of the audio; every
segment of a window carries the whole window's tokens and the window's start as ``seek``.

With compat="openai" the same entry points run openai-whisper's loop instead
(``transcription_openai``) over its log-mel windows, and the "result" is openai-whisper's dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from .audio import Samples, open_samples
from .backend import Backend, load_backend
from .decoding import (DecodingOptions, DecodingResult, choose_language, decode_with_fallback, detect_language, is_silent,
                       needs_detection, options_for_mode, text_of)
from .devices import Device, resolve_device
from .formats.checkpoint import Checkpoint
from .formats.hub import load_checkpoint
from .formats.names import default_alignment_heads
from .inputs import AudioLimits
from .mel import HOP_LENGTH, N_FRAMES, SAMPLE_RATE, MelWindows, PaddedLogMel, WholeLogMel
from .timing import add_word_timestamps
from .tokenizer import Tokenizer
from .transcription_openai import openai_log_mel, transcribe_openai


@dataclass(frozen=True)
class WhisperModel:
    """A loaded Whisper model: its backend (NumPy or Paddle, see ``devices``) and its tokenizers
    (plain, and PaddleX's lost-merge one)."""

    backend: Backend
    tokenizer: Tokenizer
    paddlex_tokenizer: Tokenizer
    alignment_heads: Tuple[Tuple[int, int], ...] = ()  # ((decoder layer, head), ...) for word timestamps

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, device: Device) -> "WhisperModel":
        """Put a checkpoint's weights on the backend of a resolved ``device`` and build its tokenizers."""
        return cls.with_backend(load_backend(checkpoint, device), checkpoint.metadata)

    @classmethod
    def with_backend(cls, backend: Backend, metadata: dict) -> "WhisperModel":
        """A model over any backend, with the tokenizers of a model file's metadata."""
        tokenizer = Tokenizer.from_metadata(metadata)
        named = json.loads(metadata.get("alignment_heads", "[]")) or default_alignment_heads(backend.dims)
        heads = tuple((int(layer), int(head)) for layer, head in named)  # none named: openai-whisper's fallback
        return cls(backend=backend, tokenizer=tokenizer,
                   paddlex_tokenizer=tokenizer.with_options(paddlex_lost_merge=True), alignment_heads=heads)

    @property
    def weights(self):
        """The NumPy backend's ``model.Weights`` (AttributeError on other backends)."""
        if not hasattr(self.backend, "weights"):
            raise AttributeError(f"{type(self.backend).__name__} holds no NumPy weights")
        return self.backend.weights

    def tokenizer_for(self, options: DecodingOptions) -> Tokenizer:
        """The tokenizer that encodes prompts as ``options`` asks (PaddleX loses the first BPE merge) and
        decodes text as it asks (compat="openai": tiktoken's text, without PaddleX's clean-up)."""
        if options.openai:
            return self.tokenizer.with_options(paddlex_cleanup=False)
        return self.paddlex_tokenizer if options.paddlex else self.tokenizer

    def transcribe(self, audio, sample_rate: Optional[int] = None, **options) -> dict:
        """Transcribe any input (path, URL, bytes, base64, array) -> PaddleX's result dict. ``options``:
        DecodingOptions fields; those not given take the defaults of the mode ``compat`` names
        (``decoding.options_for_mode``: openai-whisper's with compat="openai", as the command line,
        the server and ``create_pipeline`` do)."""
        return transcribe(self, audio, options_for_mode(**options), sample_rate=sample_rate)

    def detect_language(self, audio, sample_rate: Optional[int] = None) -> Tuple[str, dict]:
        """Language of the first 30 s of any input (path, URL, bytes, base64, array) -> (code, {code: probability})."""
        window = encode_window(self, log_mel_windows(self, open_samples(audio, sample_rate)), 0)
        return detect_language(self.backend, self.tokenizer, window.features, window.cross)

    @property
    def input_stride(self) -> int:
        """Mel frames per audio position of the encoder output (2)."""
        return N_FRAMES // self.backend.dims.n_audio_ctx


def load_model(name_or_path: str = "base", cache=None, device: Union[str, Device, None] = None) -> WhisperModel:
    """Load a model by name ("base", "tiny.en") or path (see ``hub.load_checkpoint``) onto ``device``.

    device: "cpu" (NumPy/Numba), "paddle:cpu", "gpu:N", "npu:N", "xpu:N", "mlu:N", "dcu:N" (Paddle),
    None (gpu:0 when Paddle sees a GPU, else cpu; see ``devices``), or a Device already resolved. It is
    resolved and checked once, before the weights are read.
    """
    if not isinstance(device, Device):
        device = resolve_device(device)
    return WhisperModel.from_checkpoint(load_checkpoint(name_or_path, cache), device)


@dataclass(frozen=True)
class Window:
    """One 30 s window: where it starts (mel frames) and its encoded audio."""

    seek: int
    features: np.ndarray  # [n_audio_ctx, d]
    cross: Any  # the backend's cross-attention state of these features


def as_windows(mel: Union[np.ndarray, MelWindows]) -> MelWindows:
    """A clip's log-mel as windows: a whole-clip array [n_mels, T] is wrapped (``mel.WholeLogMel``)."""
    return WholeLogMel(mel) if isinstance(mel, np.ndarray) else mel


def encode_window(model: WhisperModel, mel: Union[np.ndarray, MelWindows], seek: int) -> Window:
    """Encode the window of a clip's log-mel (windows, or a whole-clip array [n_mels, T]) that starts at frame ``seek``."""
    segment = as_windows(mel).window(seek)  # [n_mels, 3000]
    features = model.backend.encode(segment)  # [n_audio_ctx, d]
    return Window(seek=seek, features=features, cross=model.backend.cross_kv(features))


def log_mel_windows(model: WhisperModel, samples: Samples, openai: bool = False) -> MelWindows:
    """The log-mel windows of an input: streamed when the backend offers it, else its whole-clip log-mel.
    With ``openai``, the windows openai-whisper cuts (``transcription_openai.openai_log_mel``).

    The first pass over the input happens here, so an unreadable input fails here (InputError).
    """
    if openai:
        return openai_log_mel(model.backend, samples)
    streamed = getattr(model.backend, "log_mel_windows", None)
    if streamed is None:
        return WholeLogMel(model.backend.log_mel(samples.all()))
    return samples.explained(lambda: streamed(samples.pieces))


def make_segment(tokenizer: Tokenizer, options: DecodingOptions, seek: int, start: float, end: float,
                 text_tokens: Sequence[int], result: DecodingResult) -> Optional[dict]:
    """PaddleX's segment dict (without its "id") for text_tokens, or None when its text is blank."""
    ids = [t for t in text_tokens if t < tokenizer.eot]
    text = text_of(tokenizer, ids, options, f"a segment of the window at seek {seek}")
    if not text.strip():
        return None
    return {
        "seek": seek,
        "start": start,
        "end": end,
        "text": text,
        "tokens": [int(t) for t in result.tokens],
        "temperature": result.temperature,
        "avg_logprob": result.avg_logprob,
        "compression_ratio": result.compression_ratio,
        "no_speech_prob": result.no_speech_prob,
    }


def split_window(tokenizer: Tokenizer, options: DecodingOptions, seek: int, result: DecodingResult,
                 input_stride: int) -> tuple:
    """A window's result -> (its segments, frames to advance seek by, the tokens that join the context,
    each segment's own tokens).

    Segments run between pairs of adjacent timestamps; text after the last pair is left for the next
    window, which starts at that pair's closing time. Without a pair the whole window is one segment,
    ending at its last timestamp (or 30 s later) and the next window starts 30 s later. A segment's
    "tokens" are the whole window's (as PaddleX); its own tokens (timestamps included) come last, for
    word timestamps.
    """
    tokens = list(result.tokens)
    ts_begin = tokenizer.timestamp_begin
    offset = float(seek * HOP_LENGTH / SAMPLE_RATE)
    precision = input_stride * HOP_LENGTH / SAMPLE_RATE  # seconds per timestamp step: 0.02
    is_ts = [t >= ts_begin for t in tokens]
    pair_ends = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    if pair_ends:
        made, last = [], 0
        for current in pair_ends:
            piece = tokens[last:current]  # <|start|> text... <|end|>
            start = offset + (piece[0] - ts_begin) * precision
            end = offset + (piece[-1] - ts_begin) * precision
            made.append((make_segment(tokenizer, options, seek, start, end, piece[1:-1], result), piece))
            last = current
        advance = (tokens[last - 1] - ts_begin) * input_stride
        kept = [(segment, piece) for segment, piece in made if segment is not None]
        return [s for s, _ in kept], advance, tokens[:last + 1], [piece for _, piece in kept]
    duration = N_FRAMES * HOP_LENGTH / SAMPLE_RATE  # 30.0
    stamps = [t for t in tokens if t >= ts_begin]
    if stamps and stamps[-1] != ts_begin:
        duration = (stamps[-1] - ts_begin) * precision  # no speech after the last timestamp
    segment = make_segment(tokenizer, options, seek, offset, offset + duration, tokens, result)
    if segment is None:
        return [], N_FRAMES, tokens, []
    return [segment], N_FRAMES, tokens, [tokens]


def check_word_timing(model: WhisperModel) -> None:
    """ValueError unless the model can time words: its backend offers ``alignment`` and its file names
    alignment heads."""
    if not callable(getattr(model.backend, "alignment", None)):
        name = getattr(model.backend, "name", type(model.backend).__name__)
        raise ValueError(f"word_timestamps: backend {name!r} has no alignment() (the forced pass word "
                         "timing needs); use the numpy or paddle backend")
    if not model.alignment_heads:
        raise ValueError("word_timestamps: this model file names no alignment heads (metadata "
                         "'alignment_heads'), which word timing needs")


WindowEncoder = Callable[[WhisperModel, MelWindows, int], Window]


def transcribe(model: Union[WhisperModel, str], audio, options: DecodingOptions = DecodingOptions(), *,
               sample_rate: Optional[int] = None, encode: WindowEncoder = encode_window,
               limits: AudioLimits = AudioLimits()) -> dict:
    """Transcribe (or translate) a clip of any length -> PaddleX's result dict.

    ``audio``: anything ``inputs.load_input`` reads (a path, URL, bytes, base64 text, or an int or float
    PCM array [N] / [N, channels] at ``sample_rate``, default 16 kHz).
    ``encode(model, mel, seek)`` encodes the window ``mel.window(seek)`` of the clip's log-mel
    (``mel.MelWindows``; default ``encode_window``); a memoising one lets
    several transcriptions of the same audio share the encoder's work. ``limits``: the admission rules
    for the audio (duration, sample rate); an input outside them raises InputError before it is decoded.
    Returns {"input_path", "result": {"text", "segments": [{"id", "seek", "start", "end", "text",
    "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"}], "language"}}.
    """
    if isinstance(model, str):
        model = load_model(model)
    input_path = str(audio) if isinstance(audio, (str, Path)) else None
    samples = open_samples(audio, sample_rate, paddlex=options.paddlex, limits=limits)
    return transcribe_audio(model, samples, options, input_path, encode=encode)


def transcribe_audio(model: WhisperModel, samples: Samples, options: DecodingOptions,
                     input_path: Optional[str] = None, encode: WindowEncoder = encode_window,
                     progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """An opened input (``audio.open_samples``) -> PaddleX's result dict {"input_path", "result"}
    (with compat="openai", "result" is openai-whisper's)."""
    mel = log_mel_windows(model, samples, options.openai)
    result = transcribe_mel(model, mel, options, encode=encode, progress=progress)
    return {"input_path": input_path, "result": result}


def transcribe_samples(model: WhisperModel, samples: np.ndarray, options: DecodingOptions,
                       input_path: Optional[str] = None, encode: WindowEncoder = encode_window,
                       progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """16 kHz mono float32 samples [N] -> PaddleX's result dict {"input_path", "result"}."""
    return transcribe_audio(model, open_samples(samples), options, input_path, encode=encode, progress=progress)


def transcribe_mel(model: WhisperModel, mel: Union[np.ndarray, MelWindows], options: DecodingOptions,
                   encode: WindowEncoder = encode_window,
                   progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """PaddleX's long-form loop over a clip's log-mel (``MelWindows``, or the whole clip's [n_mels, T])
    -> {"text", "segments", "language"}. With compat="openai", openai-whisper's loop
    (``transcription_openai``) over its windows (``log_mel_windows(..., openai=True)``).

    ``progress(done_frames, total_frames)`` is called after each window.
    """
    tokenizer = model.tokenizer_for(options)
    if options.word_timestamps:
        check_word_timing(model)
    if options.openai:
        if not isinstance(mel, PaddedLogMel):
            raise ValueError("compat='openai' transcribes openai-whisper's log-mel (the clip followed by 30 s of "
                             "zeros): make it with log_mel_windows(model, samples, openai=True)")
        return transcribe_openai(model, mel, options, encode, progress)
    mel = as_windows(mel)
    n_frames = mel.n_frames
    window, detected = None, None
    if needs_detection(tokenizer, options):
        window = encode(model, mel, 0)
        detected, _ = detect_language(model.backend, tokenizer, window.features, window.cross)
    language, reported = choose_language(tokenizer, options, detected)

    initial_prompt = []
    if options.initial_prompt and options.initial_prompt != "None":
        initial_prompt = tokenizer.encode(" " + options.initial_prompt.strip())
    all_tokens = list(initial_prompt)
    prompt_reset_since = 0
    segments = []
    seek = 0
    last_speech = 0.0  # where the words of earlier windows ended (word timestamps)
    while seek < n_frames:
        if window is None or window.seek != seek:
            window = encode(model, mel, seek)
        result = decode_with_fallback(model.backend, tokenizer, window.features, window.cross, window.seek, options,
                                      language, all_tokens[prompt_reset_since:])
        if is_silent(result, options):
            seek += N_FRAMES
        else:
            found, advance, context, pieces = split_window(tokenizer, options, seek, result, model.input_stride)
            if options.word_timestamps:
                last_speech = add_word_timestamps(
                    segments=found, segment_tokens=pieces, backend=model.backend, tokenizer=tokenizer,
                    cross=window.cross, language=language, task=options.task,
                    num_frames=min(N_FRAMES, n_frames - seek), heads=model.alignment_heads,
                    prepend_punctuations=options.prepend_punctuations,
                    append_punctuations=options.append_punctuations, last_speech_timestamp=last_speech,
                    adjust_segments=False)
            segments += [{"id": len(segments) + k, **segment} for k, segment in enumerate(found)]
            seek += advance
            all_tokens.extend(context)
            if not options.condition_on_previous_text or result.temperature > 0.5:
                prompt_reset_since = len(all_tokens)
        if progress is not None:
            progress(min(seek, n_frames), n_frames)

    text = text_of(tokenizer, all_tokens[len(initial_prompt):], options, "the whole transcript")
    return {"text": text, "segments": segments, "language": reported}
