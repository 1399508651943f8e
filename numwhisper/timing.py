"""Word-level timestamps: openai-whisper's method, written here over any backend's ``alignment``.

A window's text tokens are forced through the decoder after <|startoftranscript|>, the language and
task tokens and <|notimestamps|>, with <|endoftext|> after them (``Backend.alignment``). The
pre-softmax cross-attention scores of the model's alignment heads, cut to the frames that hold
audio, become per-head attention weights (softmax over time), are standardised over the tokens
(population standard deviation), median-filtered along time and averaged over the heads. Dynamic
time warping through minus that matrix maps every text token to audio positions; a word starts
where the path first reaches its first token and ends where it first reaches the next word's. A
word's probability is the mean of its tokens' probabilities (softmax over the text tokens' logits).

Words are cut as openai-whisper cuts them (``Tokenizer.split_to_word_tokens``), punctuation is then
merged into its neighbours (``merge_punctuations``), and ``add_word_timestamps`` applies openai-whisper's
duration rules: words at sentence ends and after pauses are cut to twice the median word duration,
and each segment's first and last words are weighed against the segment's own start and end.
Times are rounded as openai-whisper rounds them (NumPy's round to 0.01 s), so they lie on its grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import kernels
from .backend import Backend
from .mel import HOP_LENGTH, SAMPLE_RATE
from .tokenizer import Tokenizer

AUDIO_POSITIONS_PER_SECOND = SAMPLE_RATE // (2 * HOP_LENGTH)  # 50: the encoder halves the 100 mel frames/s
MEDIAN_FILTER_WIDTH = 7  # openai-whisper's medfilt_width
MAX_MEDIAN_DURATION = 0.7  # seconds: the median word duration the rules assume at most
SENTENCE_END_MARKS = ".\u3002!\uff01?\uff1f"  # words after which (or as which) a sentence ends
SEGMENT_EDGE_SLACK = 0.5  # seconds a first/last word may overhang its segment before the segment's time wins


@dataclass
class WordTiming:
    """One word of an alignment: its text (leading space included), tokens, start and end (seconds
    from the window's start) and probability. Mutable: punctuation merging moves text and tokens."""

    word: str
    tokens: List[int]
    start: float
    end: float
    probability: float


# ---------------------------------------------------------------------------------- the alignment matrix


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a sliding window of odd ``width`` along the last axis of x [..., F] -> float32 [..., F]
    (``kernels.sliding_median_rows``).

    The edges are reflect-padded (the edge value itself not repeated), as openai-whisper pads;
    an axis of at most width // 2 values is returned as it is.
    """
    if width <= 0 or width % 2 != 1:
        raise ValueError(f"the median filter's width must be a positive odd number, got {width}")
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(np.asarray(x, dtype=np.float32), [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")  # [..., F + 2 pad]
    rows = np.ascontiguousarray(padded.reshape(-1, padded.shape[-1]))  # [R, F + 2 pad]
    return kernels.sliding_median_rows(rows, width).reshape(x.shape)  # [..., F]


def standardised_weights(qk: np.ndarray, num_frames: int, qk_scale: float = 1.0) -> np.ndarray:
    """Alignment heads' scores qk [A, T, S] -> attention over the audio's positions, standardised over
    the tokens: float32 [A, T, num_frames // 2].

    Softmax along time of qk * qk_scale cut to the positions that hold audio, then (w - mean) / std
    per head and position, over the T tokens (population std; mean and std rounded to float32).
    """
    scores = np.asarray(qk, dtype=np.float32)[:, :, :num_frames // 2] * np.float32(qk_scale)  # [A, T, F]
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))  # [A, T, F]
    weights /= weights.sum(axis=-1, keepdims=True)  # [A, T, F]
    wide = weights.astype(np.float64)  # [A, T, F]
    mean = wide.mean(axis=-2, keepdims=True)  # [A, 1, F]
    std = np.sqrt(((wide - mean) ** 2).mean(axis=-2, keepdims=True))  # [A, 1, F]
    return (weights - mean.astype(np.float32)) / std.astype(np.float32)  # [A, T, F]


def alignment_matrix(qk: np.ndarray, num_frames: int, medfilt_width: int = MEDIAN_FILTER_WIDTH,
                     qk_scale: float = 1.0) -> np.ndarray:
    """Token-to-time affinity of a forced pass: qk [A, T, S] -> float32 [T, num_frames // 2], the
    standardised weights median-filtered along time and averaged over the heads."""
    filtered = median_filter(standardised_weights(qk, num_frames, qk_scale), medfilt_width)  # [A, T, F]
    return filtered.mean(axis=0)  # [T, F]


def dtw(cost: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Cheapest monotonic path through cost [N, M] -> (row indices [L], column indices [L]), int64
    (openai-whisper's DTW, ``kernels.dtw_path``)."""
    path = kernels.dtw_path(np.ascontiguousarray(cost, dtype=np.float64))  # [2, L]
    return path[0], path[1]


def token_probabilities(logits: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """Probability of each token under its row of logits [n, n_text_vocab] (softmax over the text
    tokens only, float32) -> float32 [n].

    The rows are overwritten with their exponentials (a window's rows span up to ~224 x 51,865 floats,
    so a second array of that size would be the largest allocation of word timing)."""
    x = logits if logits.dtype == np.float32 and logits.flags.writeable else logits.astype(np.float32)  # [n, V_text]
    x -= x.max(axis=-1, keepdims=True)  # [n, V_text]
    np.exp(x, out=x)  # [n, V_text]
    picked = x[np.arange(len(tokens)), np.asarray(tokens, dtype=np.intp)]  # [n]
    return picked / x.sum(axis=-1)  # [n]


# ---------------------------------------------------------------------------------- words of one window


def forced_tokens(tokenizer: Tokenizer, language: Optional[str], task: str, text_tokens: Sequence[int]) -> list:
    """The sequence word timing forces through the decoder: the start-of-transcript sequence of
    language and task, <|notimestamps|>, the text tokens, <|endoftext|>."""
    return [*tokenizer.sot_sequence(language, task), tokenizer.no_timestamps, *map(int, text_tokens), tokenizer.eot]


def find_alignment(backend: Backend, tokenizer: Tokenizer, cross, language: Optional[str], task: str,
                   text_tokens: Sequence[int], num_frames: int, heads: Sequence[Tuple[int, int]],
                   medfilt_width: int = MEDIAN_FILTER_WIDTH, qk_scale: float = 1.0) -> List[WordTiming]:
    """Words of one window's text tokens with their times (seconds from the window's start) and
    probabilities.

    ``cross``: the backend's cross-attention state of the window; ``num_frames``: the mel frames of
    the window that hold audio (at most 3000); ``heads``: the alignment heads ((layer, head), ...).
    No text tokens, or only one word's worth of pieces, gives [] (as openai-whisper).
    """
    text_tokens = [int(t) for t in text_tokens]
    if not text_tokens:
        return []
    n_sot = len(tokenizer.sot_sequence(language, task))
    qk, logits = backend.alignment(cross, forced_tokens(tokenizer, language, task, text_tokens), heads)
    probs = token_probabilities(logits[n_sot:n_sot + len(text_tokens), :tokenizer.eot], text_tokens)  # [n_text]
    matrix = alignment_matrix(qk, num_frames, medfilt_width, qk_scale)[n_sot:-1]  # [n_text + 1, F]
    text_indices, time_indices = dtw(-matrix)  # [L] each

    split_language = language if tokenizer.is_multilingual else None
    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot], split_language)
    if len(word_tokens) <= 1:
        return []
    boundaries = np.concatenate([[0], np.cumsum([len(t) for t in word_tokens[:-1]])])  # [n_words + 1]
    jumps = np.diff(text_indices, prepend=text_indices[0] - 1).astype(bool)  # [L] first step on each row
    jump_times = time_indices[jumps] / AUDIO_POSITIONS_PER_SECOND  # [n_text + 1] float64 seconds
    starts = jump_times[boundaries[:-1]]  # [n_words]
    ends = jump_times[boundaries[1:]]  # [n_words]
    wide_probs = probs.astype(np.float64)  # [n_text]
    return [WordTiming(word, tokens, start, end, float(np.mean(wide_probs[i:j])))
            for word, tokens, start, end, i, j in zip(words, word_tokens, starts.tolist(), ends.tolist(),
                                                       boundaries[:-1], boundaries[1:])]


def merge_punctuations(alignment: List[WordTiming], prepend: str, append: str) -> None:
    """Join punctuation to its word, in place: a spaced word that is one of ``prepend`` moves into the
    word after it (right to left, so runs gather), then a word that is one of ``append`` into the
    word before it (left to right) when that word does not end in a space. Emptied entries stay,
    with no text and no tokens."""
    following = len(alignment) - 1
    for i in range(len(alignment) - 2, -1, -1):
        before, after = alignment[i], alignment[following]
        if before.word.startswith(" ") and before.word.strip() in prepend:
            after.word = before.word + after.word
            after.tokens = before.tokens + after.tokens
            before.word, before.tokens = "", []
        else:
            following = i
    previous = 0
    for j in range(1, len(alignment)):
        before, after = alignment[previous], alignment[j]
        if not before.word.endswith(" ") and after.word in append:
            before.word = before.word + after.word
            before.tokens = before.tokens + after.tokens
            after.word, after.tokens = "", []
        else:
            previous = j


# ---------------------------------------------------------------------------------- words of segments


def typical_durations(alignment: Sequence[WordTiming]) -> Tuple[float, float, bool]:
    """(median word duration capped at MAX_MEDIAN_DURATION, twice that, whether any word has a
    duration) over the words of nonzero duration."""
    durations = np.array([w.end - w.start for w in alignment])  # [n_words]
    durations = durations[durations.nonzero()]  # [n_nonzero]
    median = min(MAX_MEDIAN_DURATION, float(np.median(durations))) if durations.shape[0] else 0.0
    return median, median * 2, durations.shape[0] > 0


def truncate_at_sentence_ends(alignment: List[WordTiming], max_duration: float) -> None:
    """Shorten, in place, a word longer than max_duration that is a sentence-end mark (its end moves)
    or follows one (its start moves)."""
    for i in range(1, len(alignment)):
        word = alignment[i]
        if word.end - word.start > max_duration:
            if word.word in SENTENCE_END_MARKS:
                word.end = word.start + max_duration
            elif alignment[i - 1].word in SENTENCE_END_MARKS:
                word.start = word.end - max_duration


def rounded_time(seconds: float) -> float:
    """A time rounded to 0.01 s as openai-whisper rounds it (NumPy's round of a float64)."""
    return float(np.round(np.float64(seconds), 2))


def words_of_segment(alignment: Sequence[WordTiming], first: int, n_tokens: int, time_offset: float) -> tuple:
    """The word dicts of a segment whose n_tokens text tokens begin at alignment[first] -> (words,
    index of the next segment's first entry). Entries emptied by punctuation merging count their
    tokens (none) but give no word."""
    words, taken, index = [], 0, first
    while index < len(alignment) and taken < n_tokens:
        timing = alignment[index]
        if timing.word:
            words.append({"word": timing.word, "start": rounded_time(time_offset + timing.start),
                          "end": rounded_time(time_offset + timing.end), "probability": timing.probability})
        taken += len(timing.tokens)
        index += 1
    return words, index


def shorten_after_pause(words: List[dict], last_speech_timestamp: float, median: float, max_duration: float) -> None:
    """In place: when the segment's first word ends long after the last speech (over 4 median
    durations) and it, or it with the next word, is too long, cut the first word (and the second)
    back to max_duration."""
    first = words[0]
    too_long = (first["end"] - first["start"] > max_duration
                or (len(words) > 1 and words[1]["end"] - first["start"] > max_duration * 2))
    if not (first["end"] - last_speech_timestamp > median * 4 and too_long):
        return
    if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
        boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
        first["end"] = words[1]["start"] = boundary
    first["start"] = max(0, first["end"] - max_duration)


def fit_segment_edges(words: List[dict], start: float, end: float, median: float) -> Tuple[float, float]:
    """Weigh a segment's first and last words against its own start and end, in place -> the segment's
    (start, end) as openai-whisper leaves them.

    A first word that starts over SEGMENT_EDGE_SLACK before the segment (which starts before the
    word ends) is moved to start near the segment's start; otherwise the segment starts with the word.
    Likewise at the end: a last word ending over the slack after the segment end is cut back, else
    the segment ends with the word.
    """
    first, last = words[0], words[-1]
    if start < first["end"] and start - SEGMENT_EDGE_SLACK > first["start"]:
        first["start"] = max(0, min(first["end"] - median, start))
    else:
        start = first["start"]
    if end > last["start"] and end + SEGMENT_EDGE_SLACK < last["end"]:
        last["end"] = max(last["start"] + median, end)
    else:
        end = last["end"]
    return start, end


def add_word_timestamps(*, segments: List[dict], segment_tokens: Sequence[Sequence[int]], backend: Backend,
                        tokenizer: Tokenizer, cross, language: Optional[str], task: str, num_frames: int,
                        heads: Sequence[Tuple[int, int]], prepend_punctuations: str, append_punctuations: str,
                        last_speech_timestamp: float, adjust_segments: bool = True) -> float:
    """Give each segment of one window its words, in place: segment["words"] = [{"word", "start",
    "end", "probability"}] (times in seconds from the clip's start).

    ``segment_tokens[i]``: segment i's tokens (ids >= eot are dropped); all segments share the window
    that starts at segments[0]["seek"] (mel frames), whose ``cross`` state the backend made and
    whose first ``num_frames`` frames hold audio. ``last_speech_timestamp``: where speech last ended
    before this window (seconds). With ``adjust_segments`` the segments' start and end move as
    openai-whisper moves them; without (PaddleX modes) they stay, and the words are the same.
    Returns the end of the last word given (``last_speech_timestamp`` when there is none), which
    openai-whisper's loop carries to the next window.
    """
    if not segments:
        return last_speech_timestamp
    per_segment = [[int(t) for t in tokens if int(t) < tokenizer.eot] for tokens in segment_tokens]
    if len(per_segment) != len(segments):
        raise ValueError(f"{len(segments)} segments but {len(per_segment)} token lists")
    text_tokens = [t for tokens in per_segment for t in tokens]
    alignment = find_alignment(backend, tokenizer, cross, language, task, text_tokens, num_frames, heads)
    median, max_duration, any_duration = typical_durations(alignment)
    if any_duration:
        truncate_at_sentence_ends(alignment, max_duration)
    merge_punctuations(alignment, prepend_punctuations, append_punctuations)

    time_offset = segments[0]["seek"] * HOP_LENGTH / SAMPLE_RATE
    index, last_word_end = 0, last_speech_timestamp
    for segment, tokens in zip(segments, per_segment):
        words, index = words_of_segment(alignment, index, len(tokens), time_offset)
        if words:
            shorten_after_pause(words, last_speech_timestamp, median, max_duration)
            start, end = fit_segment_edges(words, segment["start"], segment["end"], median)
            if adjust_segments:
                segment["start"], segment["end"] = start, end
            last_speech_timestamp = end
            last_word_end = words[-1]["end"]
        segment["words"] = words
    return last_word_end
