"""openai-whisper's long-form loop (compat="openai"): its ``transcribe``, result for result.

``transcription.transcribe`` and its siblings come here when ``options.openai`` (this module imports
nothing from ``transcription``: the model is a ``transcription.WhisperModel`` and its window encoder
is handed in). It holds what differs from PaddleX's loop, in openai-whisper 20250625's order:

- The log-mel is that of the clip followed by 30 s of zeros (``mel.PaddedLogMel``). Language
  detection sees that log-mel's first 30 s; the windows hold only frames of audio, then 0.0.
- ``clip_timestamps`` ("start,end,start,end,..." seconds; an odd count ends at the clip's end) limits
  the loop to those stretches: a window never reaches past its stretch's end.
- A window falls back to the next temperature when its text is too repetitive or too unlikely,
  unless it looks silent (no-speech probability above its threshold and too unlikely): such a
  window is kept at its temperature and then skipped.
- Segments run between adjacent timestamps as in PaddleX, but a window that ends in text + one
  timestamp ("single timestamp ending") also closes its last segment there and the next window
  starts after the whole window. Each segment carries its own tokens, timestamps included.
- With ``word_timestamps`` each window's segments get words (``timing.add_word_timestamps``, which
  also moves their start and end), and the next window starts at the last word's end unless the
  window had a single timestamp ending; ``hallucination_silence_threshold`` then skips silence
  around segments whose words look hallucinated.
- Segments that are instantaneous or blank stay in the result with empty text, tokens and words.
- The prompt is the text since the last reset (a reset follows a window decoded above temperature
  0.5, or every window without condition_on_previous_text); ``carry_initial_prompt`` puts the initial
  prompt before it in every window, and the rest of the prompt is cut to fit beside it.

Times are the float sums openai-whisper computes (seek * 160 / 16000 + index * 0.02, or the words'
times rounded to 2 decimals) and seeks after words are round(seconds * 100). Windows decoded at a
temperature above 0 sample from numwhisper's seeded generator, not torch's, so they cannot match.
One guard is numwhisper's own: a clip_timestamps stretch ends at the clip's end at the latest
(openai-whisper would loop forever on windows with no audio past it).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .audio import Samples
from .decoding import (APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS, DecodingOptions, DecodingResult,
                       decode_with_fallback, detect_language, is_silent)
from .languages import language_code
from .mel import HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE, PaddedLogMel, WholeLogMel, with_trailing_silence
from .timing import add_word_timestamps
from .tokenizer import Tokenizer

FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames per second
# openai-whisper's fixed set for the hallucination rules (its default punctuations, whatever the options say)
PUNCTUATION = PREPEND_PUNCTUATIONS + APPEND_PUNCTUATIONS
# A word is anomalous (likely hallucinated) by these measures, as openai-whisper scores it.
IMPROBABLE_WORD = 0.15  # probability below this: +1
SHORT_WORD_SECONDS = 0.133  # shorter: + 15 per second missing
LONG_WORD_SECONDS = 2.0  # longer: + the seconds beyond
ANOMALY_WORDS = 8  # a segment is scored on its first 8 words (punctuation aside)
ANOMALY_SCORE = 3.0  # a segment whose words score this much (or about one per word) is anomalous
EDGE_SECONDS = 2.0  # a segment this close to a window's start or end counts as next to silence


# ---------------------------------------------------------------------------------- the log-mel


def openai_log_mel(backend, samples: Samples) -> PaddedLogMel:
    """The windows openai-whisper cuts from an opened input: streamed when the backend offers
    ``log_mel_windows``, else from its whole-clip ``log_mel`` of the samples and 30 s of zeros.

    The first pass over the input happens here, so an unreadable input fails here (InputError).
    """
    streamed = getattr(backend, "log_mel_windows", None)
    if streamed is None:
        padded = np.concatenate([samples.all(), np.zeros(N_SAMPLES, np.float32)])  # [N + 480000]
        return PaddedLogMel(WholeLogMel(backend.log_mel(padded)))
    return PaddedLogMel(samples.explained(lambda: streamed(lambda: with_trailing_silence(samples.pieces()))))


class DetectionWindow:
    """``MelWindows`` of one window: the padded log-mel's first 30 s, on which the language is detected."""

    def __init__(self, mel: PaddedLogMel):
        self.mel = mel.detection_window()  # [n_mels, 3000]
        self.n_frames = N_FRAMES

    def window(self, seek: int) -> np.ndarray:
        """The detection window (whatever ``seek``) [n_mels, 3000]."""
        return self.mel


# ---------------------------------------------------------------------------------- options


def seek_clips(clip_timestamps: Union[str, Sequence[float]], n_frames: int) -> List[Tuple[int, int]]:
    """clip_timestamps ("start,end,..." seconds, or numbers) -> [(first frame, end frame), ...].

    An odd count ends at the clip's end; none means the whole clip. Ends past the clip's end stop
    there (numwhisper's guard).
    """
    if isinstance(clip_timestamps, str):
        clip_timestamps = [float(t) for t in clip_timestamps.split(",")] if clip_timestamps else []
    points = [round(float(t) * FRAMES_PER_SECOND) for t in clip_timestamps] or [0]
    if len(points) % 2 == 1:
        points.append(n_frames)
    return [(start, min(end, n_frames)) for start, end in zip(points[::2], points[1::2])]


def initial_prompt_tokens(tokenizer: Tokenizer, options: DecodingOptions) -> list:
    """The initial prompt's tokens (" " + the stripped text), or [] without one."""
    if options.initial_prompt is None:
        return []
    return tokenizer.encode(" " + options.initial_prompt.strip())


def window_prompt(all_tokens: Sequence[int], initial: Sequence[int], reset_since: int, options: DecodingOptions,
                  room: int) -> list:
    """The prompt of the next window: the tokens since the last reset, or with carry_initial_prompt the
    initial prompt followed by the last ``room`` tokens decoded since (openai-whisper's slice: a room
    of 0 or less keeps more, and the decoder's prompt limit then cuts the front)."""
    if not options.carry_initial_prompt:
        return list(all_tokens[reset_since:])
    since = all_tokens[max(len(initial), reset_since):]
    return [*initial, *since[-room:]]


def choose_openai_language(model, tokenizer: Tokenizer, mel: PaddedLogMel, options: DecodingOptions,
                           encode) -> tuple:
    """(language code, (detection mel [n_mels, 3000], its encoded Window) or None): options.language,
    else English for English-only models, else detected on the padded log-mel's first 30 s."""
    if options.language is not None:
        return language_code(options.language), None
    if not tokenizer.is_multilingual:
        return "en", None
    windows = DetectionWindow(mel)
    window = encode(model, windows, 0)
    detected, _ = detect_language(model.backend, tokenizer, window.features, window.cross)
    return language_code(detected), (windows.mel, window)


# ---------------------------------------------------------------------------------- one window


def new_segment(tokenizer: Tokenizer, seek: int, start: float, end: float, tokens: Sequence[int],
                result: DecodingResult) -> dict:
    """openai-whisper's segment dict (without its "id") of ``tokens``, timestamps included."""
    tokens = [int(t) for t in tokens]
    return {
        "seek": seek,
        "start": start,
        "end": end,
        "text": tokenizer.decode([t for t in tokens if t < tokenizer.eot]),
        "tokens": tokens,
        "temperature": result.temperature,
        "avg_logprob": result.avg_logprob,
        "compression_ratio": result.compression_ratio,
        "no_speech_prob": result.no_speech_prob,
    }


def split_window(tokenizer: Tokenizer, seek: int, segment_size: int, result: DecodingResult,
                 input_stride: int) -> Tuple[List[dict], int, bool]:
    """A window's result -> (its segments, the next window's seek, whether it has a single timestamp
    ending).

    Segments end at each pair of adjacent timestamps, and at the end when the tokens end in text +
    one timestamp; the next window then starts after this one, else at the last pair's closing
    time. Without a pair the whole window is one segment, ending at its last timestamp (or the end
    of its audio), and the next window starts after this one.
    """
    tokens = [int(t) for t in result.tokens]
    ts_begin = tokenizer.timestamp_begin
    time_offset = float(seek * HOP_LENGTH / SAMPLE_RATE)
    precision = input_stride * HOP_LENGTH / SAMPLE_RATE  # seconds per timestamp step: 0.02
    is_ts = [t >= ts_begin for t in tokens]
    single_ending = is_ts[-2:] == [False, True]
    pair_ends = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    if not pair_ends:
        duration = segment_size * HOP_LENGTH / SAMPLE_RATE
        stamps = [t for t in tokens if t >= ts_begin]
        if stamps and stamps[-1] != ts_begin:
            duration = (stamps[-1] - ts_begin) * precision  # no speech after the last timestamp
        return [new_segment(tokenizer, seek, time_offset, time_offset + duration, tokens, result)], \
            seek + segment_size, single_ending
    segments, last = [], 0
    for cut in pair_ends + ([len(tokens)] if single_ending else []):
        piece = tokens[last:cut]  # <|start|> text... <|end|>
        start = time_offset + (piece[0] - ts_begin) * precision
        end = time_offset + (piece[-1] - ts_begin) * precision
        segments.append(new_segment(tokenizer, seek, start, end, piece, result))
        last = cut
    if single_ending:
        return segments, seek + segment_size, True
    return segments, seek + (tokens[last - 1] - ts_begin) * input_stride, False


def last_end(segments: Sequence[dict]) -> Optional[float]:
    """The end of the last word of the segments, else of the last segment, else None."""
    for segment in reversed(segments):
        if segment.get("words"):
            return segment["words"][-1]["end"]
    return segments[-1]["end"] if segments else None


def clear_blank_segments(segments: Sequence[dict]) -> None:
    """Empty, in place, the text, tokens and words of segments that are instantaneous or blank."""
    for segment in segments:
        if segment["start"] == segment["end"] or segment["text"].strip() == "":
            segment["text"] = ""
            segment["tokens"] = []
            segment["words"] = []


# ---------------------------------------------------------------------------------- hallucinations


def word_anomaly_score(word: dict) -> float:
    """How unlike real speech a word is: improbable, very short or very long."""
    probability = word.get("probability", 0.0)
    duration = word["end"] - word["start"]
    score = 0.0
    if probability < IMPROBABLE_WORD:
        score += 1.0
    if duration < SHORT_WORD_SECONDS:
        score += (SHORT_WORD_SECONDS - duration) * 15
    if duration > LONG_WORD_SECONDS:
        score += duration - LONG_WORD_SECONDS
    return score


def is_segment_anomaly(segment: Optional[dict]) -> bool:
    """Whether a segment's first words (punctuation aside) look hallucinated."""
    if segment is None or not segment["words"]:
        return False
    words = [w for w in segment["words"] if w["word"] not in PUNCTUATION][:ANOMALY_WORDS]
    score = sum(word_anomaly_score(w) for w in words)
    return score >= ANOMALY_SCORE or score + 0.01 >= len(words)


def next_words_segment(segments: Sequence[dict]) -> Optional[dict]:
    """The first of the segments that has words, or None."""
    return next((s for s in segments if s["words"]), None)


def skip_hallucinations(segments: List[dict], *, threshold: float, seek: int, previous_seek: int,
                        segment_size: int, single_ending: bool, last_speech: float,
                        n_frames: int) -> Tuple[int, bool]:
    """openai-whisper's hallucination_silence_threshold rules for one window's timed segments ->
    (the next seek, whether to drop the whole window).

    Past the last word, silence longer than ``threshold`` is skipped (else the next window starts
    after this one). A first segment that looks hallucinated after more than ``threshold`` of silence
    drops the window and the next one starts at it. A segment that looks hallucinated with silence
    (or more hallucination) on both sides is dropped with everything after it (in place), and the
    next window starts at it.
    """
    time_offset = float(previous_seek * HOP_LENGTH / SAMPLE_RATE)
    window_end_time = float((previous_seek + N_FRAMES) * HOP_LENGTH / SAMPLE_RATE)
    segment_duration = segment_size * HOP_LENGTH / SAMPLE_RATE
    content_duration = float(n_frames * HOP_LENGTH / SAMPLE_RATE)
    if not single_ending:
        end = last_end(segments)
        if end is not None and end > time_offset:
            if window_end_time - end > threshold:
                seek = round(end * FRAMES_PER_SECOND)
            else:
                seek = previous_seek + segment_size
    first = next_words_segment(segments)
    if first is not None and is_segment_anomaly(first):
        gap = first["start"] - time_offset
        if gap > threshold:
            return previous_seek + round(gap * FRAMES_PER_SECOND), True
    speech_end = last_speech
    for index, segment in enumerate(segments):
        if not segment["words"]:
            continue
        if is_segment_anomaly(segment):
            following = next_words_segment(segments[index + 1:])
            next_start = following["words"][0]["start"] if following is not None else time_offset + segment_duration
            silence_before = (segment["start"] - speech_end > threshold or segment["start"] < threshold
                              or segment["start"] - time_offset < EDGE_SECONDS)
            silence_after = (next_start - segment["end"] > threshold or is_segment_anomaly(following)
                             or window_end_time - segment["end"] < EDGE_SECONDS)
            if silence_before and silence_after:
                seek = round(max(time_offset + 1, segment["start"]) * FRAMES_PER_SECOND)
                if content_duration - segment["end"] < threshold:
                    seek = n_frames
                del segments[index:]
                break
        speech_end = segment["end"]
    return seek, False


# ---------------------------------------------------------------------------------- the loop


def transcribe_openai(model, mel: PaddedLogMel, options: DecodingOptions, encode: Callable,
                      progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """openai-whisper's ``transcribe`` over a clip's ``PaddedLogMel`` -> {"text", "segments", "language"}.

    ``model``: a ``transcription.WhisperModel``; ``encode(model, windows, seek)``: its window encoder
    (``transcription.encode_window`` or a memoising one). ``progress(done_frames, total_frames)`` is
    called after each window.
    """
    tokenizer = model.tokenizer_for(options)
    n_frames = mel.n_frames
    language, detection = choose_openai_language(model, tokenizer, mel, options, encode)
    words_language = language if tokenizer.is_multilingual else None
    initial = initial_prompt_tokens(tokenizer, options)
    room = model.backend.dims.n_text_ctx // 2 - 1 - len(initial)
    all_tokens, segments = list(initial), []
    reset_since, last_speech = 0, 0.0
    clips = seek_clips(options.clip_timestamps, n_frames)
    clip_index, seek = 0, clips[0][0]
    while clip_index < len(clips):
        clip_start, clip_end = clips[clip_index]
        seek = max(seek, clip_start)
        if seek >= clip_end:
            clip_index += 1
            if clip_index < len(clips):
                seek = clips[clip_index][0]
            continue
        windows = mel.clipped(clip_end)
        segment_size = windows.frames_at(seek)
        if detection is not None and seek == 0 and np.array_equal(windows.window(0), detection[0]):
            window = detection[1]  # a clip of 30 s or more: its first window is the detection window
        else:
            window = encode(model, windows, seek)
        detection = None
        prompt = window_prompt(all_tokens, initial, reset_since, options, room)
        result = decode_with_fallback(model.backend, tokenizer, window.features, window.cross, window.seek, options,
                                      language, prompt)
        if is_silent(result, options):
            seek += segment_size
            report(progress, seek, n_frames)
            continue

        previous_seek = seek
        current, seek, single_ending = split_window(tokenizer, seek, segment_size, result, model.input_stride)
        if options.word_timestamps:
            add_word_timestamps(
                segments=current, segment_tokens=[s["tokens"] for s in current], backend=model.backend,
                tokenizer=tokenizer, cross=window.cross, language=words_language, task=options.task,
                num_frames=segment_size, heads=model.alignment_heads,
                prepend_punctuations=options.prepend_punctuations,
                append_punctuations=options.append_punctuations, last_speech_timestamp=last_speech)
            time_offset = float(previous_seek * HOP_LENGTH / SAMPLE_RATE)
            end = last_end(current)
            if not single_ending and end is not None and end > time_offset:
                seek = round(end * FRAMES_PER_SECOND)
            if options.hallucination_silence_threshold is not None:
                seek, drop = skip_hallucinations(
                    current, threshold=options.hallucination_silence_threshold, seek=seek,
                    previous_seek=previous_seek, segment_size=segment_size, single_ending=single_ending,
                    last_speech=last_speech, n_frames=n_frames)
                if drop:
                    report(progress, seek, n_frames)
                    continue
            end = last_end(current)
            if end is not None:
                last_speech = end

        clear_blank_segments(current)
        segments += [{"id": len(segments) + k, **segment} for k, segment in enumerate(current)]
        all_tokens.extend(t for segment in current for t in segment["tokens"])
        if not options.condition_on_previous_text or result.temperature > 0.5:
            reset_since = len(all_tokens)
        report(progress, seek, n_frames)

    return {"text": tokenizer.decode(all_tokens[len(initial):]), "segments": segments, "language": language}


def report(progress: Optional[Callable[[int, int], None]], seek: int, n_frames: int) -> None:
    """Tell ``progress`` how far the loop is (frames done, of n_frames)."""
    if progress is not None:
        progress(min(seek, n_frames), n_frames)
