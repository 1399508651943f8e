"""Decoding one 30 s window: options, logit filters, token selection (greedy, sampling, beam search).

The pieces follow PaddleX's Whisper decoder: a frozen ``DecodingOptions`` (PaddleX's names and
defaults), small logit filters applied in order (blank suppression at the start, the suppressed-token
set, the timestamp rules), a token decoder (greedy/sampling or beam search), a ranker that picks the
best finished candidate, and ``DecodingTask``, which wires them around the model's decoder with an
explicit key/value cache. The model is a ``backend.Backend`` (NumPy or Paddle): this module's
arithmetic is NumPy on every backend, so a device never changes the algorithm. All beams (or
best-of samples) of a window go through one decoder call per step.

Log-probabilities are computed as paddle's CPU ``log_softmax`` computes them: every logit is first
clamped to at least (row maximum - 64), so suppressed (-inf) and very unlikely tokens get a finite
log-probability of about -64; and the exponentials are summed front to back in float32, so the many
tiny terms that round away against a large running sum are lost as in paddle (a plain, pairwise
sum comes out up to ~3e-4 larger). Beam scores depend on both.

``compat="paddlex"`` reproduces PaddleX's bugs as well (see ``DecodingOptions``); without it they
are fixed.

``compat="openai"`` decodes as openai-whisper 20250625 does instead (``openai_defaults`` gives its
command line's defaults): log-probabilities as torch's CPU ``log_softmax`` computes them (no clamp;
the exponentials summed in TORCH_SUM_LANES float32 lanes, which loses the small terms a lane's
running sum rounds away: the sum comes out up to ~3e-5 smaller than an exact one), the first sampled
token must be a timestamp and timestamps may not go back in time, <|transcribe|> and <|translate|>
are suppressed too, the compression ratio counts UTF-8 bytes, and the text is tiktoken's (no
PaddleX clean-up).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import kernels
from .backend import Backend
from .errors import PaddleXFailure
from .languages import language_code, paddlex_code
from .tokenizer import TASKS, Tokenizer

COMPAT_PADDLEX = "paddlex"
COMPAT_OPENAI = "openai"
COMPAT_MODES = (None, COMPAT_PADDLEX, COMPAT_OPENAI)
PREPEND_PUNCTUATIONS = "\"'\u201c\u00bf([{-"  # openai-whisper's: joined to the word after them
APPEND_PUNCTUATIONS = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"  # joined to the word before them
LOG_SOFTMAX_FLOOR = -64.0  # paddle's CPU log_softmax clamps (logit - row max) at this value
# torch's CPU log_softmax sums a row's exponentials in this many float32 lanes (one AVX-512 register;
# 8 on an AVX2 machine), folded together at the end. The openai goldens were made on an AVX-512 machine.
TORCH_SUM_LANES = 16
SECONDS_PER_TIMESTAMP = 0.02  # one timestamp token step: 30 s / 1500 audio positions


@dataclass(frozen=True)
class DecodingOptions:
    """How to decode and transcribe; names and defaults are PaddleX's (its inference.yml defaults).

    Window decoding: task ("transcribe" or "translate"), language (None: detect it from the first
    window), temperature (0: beam search of ``beam_size``, or argmax when beam_size is None; > 0:
    ``best_of`` samples), beam_size, patience, length_penalty (None: divide by length; else Google
    NMT's alpha in [0, 1]), suppress_tokens ("-1" = the non-speech symbols), suppress_blank,
    without_timestamps, max_initial_timestamp (seconds), sample_len (None: n_text_ctx // 2).

    Long-form transcription: temperature_increment_on_fallback (None: only ``temperature`` is tried;
    else the temperatures temperature, temperature + step, ... <= 1.0 are tried in turn while the
    result is too repetitive or too unlikely), compression_ratio_threshold, logprob_threshold,
    no_speech_threshold, condition_on_previous_text, initial_prompt.

    seed: seeds sampling at T > 0 (None: seed 0, or fresh OS entropy when compat="paddlex").
    monotonic_timestamps: also forbid timestamps that go back in time and zero-length segments (the
    rule of current openai-whisper). Off by default, as PaddleX has no such rule: on, it changes
    PaddleX's results (other beams survive), so it is an opt-in.
    Word timestamps (openai-whisper's method, ``timing``): word_timestamps adds "words" to every
    segment; prepend_punctuations / append_punctuations are merged into the next / previous word.
    In PaddleX modes the words never change PaddleX's segments or seek.

    openai-whisper's long-form options (compat="openai" only): clip_timestamps (start,end,... seconds
    to transcribe), hallucination_silence_threshold (seconds; needs word_timestamps),
    carry_initial_prompt (the initial prompt leads every window's prompt).

    compat: None (PaddleX's results with its bugs fixed), "paddlex" (its bugs reproduced too) or
    "openai" (openai-whisper's ``transcribe``: its loop, rules and result dict; ``openai_defaults``
    gives its command-line defaults).
    """

    task: str = "transcribe"
    language: Optional[str] = None
    temperature: float = 0  # an int, as in PaddleX's inference.yml (it shows in the result)
    temperature_increment_on_fallback: Optional[float] = None
    compression_ratio_threshold: Optional[float] = 2.4
    logprob_threshold: Optional[float] = -1.0
    no_speech_threshold: Optional[float] = 0.6
    condition_on_previous_text: bool = True
    best_of: Optional[int] = 5
    beam_size: Optional[int] = 5
    patience: Optional[float] = None
    length_penalty: Optional[float] = None
    initial_prompt: Optional[str] = None
    suppress_tokens: Union[str, Tuple[int, ...], None] = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: Optional[float] = 1.0
    sample_len: Optional[int] = None
    seed: Optional[int] = None
    monotonic_timestamps: bool = False
    word_timestamps: bool = False
    prepend_punctuations: str = PREPEND_PUNCTUATIONS
    append_punctuations: str = APPEND_PUNCTUATIONS
    clip_timestamps: Union[str, Tuple[float, ...]] = "0"
    hallucination_silence_threshold: Optional[float] = None
    carry_initial_prompt: bool = False
    compat: Optional[str] = None

    def __post_init__(self):
        if self.compat not in COMPAT_MODES:
            raise ValueError(f"compat must be None, {COMPAT_PADDLEX!r} or {COMPAT_OPENAI!r}, got {self.compat!r}")
        if self.task not in TASKS:
            raise ValueError(f"unsupported task: {self.task!r} (use one of {TASKS})")
        if self.language is not None:
            language_code(self.language)  # raises ValueError for an unknown language
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.temperature_increment_on_fallback is not None and self.temperature_increment_on_fallback <= 0:
            raise ValueError("temperature_increment_on_fallback must be > 0 (or None)")
        for name in ("beam_size", "best_of", "sample_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (or None), got {value}")
        if self.patience is not None:
            if self.beam_size is None:
                raise ValueError("patience requires beam_size to be given")
            if round(self.beam_size * self.patience) < 1:
                raise ValueError(f"beam_size {self.beam_size} with patience {self.patience} keeps no candidate")
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise ValueError("length_penalty (alpha) should be a value between 0 and 1")
        if self.hallucination_silence_threshold is not None and not self.word_timestamps:
            raise ValueError("hallucination_silence_threshold needs word_timestamps: it looks at the words' times")
        if not self.openai:
            for name in ("clip_timestamps", "hallucination_silence_threshold", "carry_initial_prompt"):
                if getattr(self, name) != DecodingOptions.__dataclass_fields__[name].default:
                    raise ValueError(f"{name} is an option of openai-whisper's pipeline: it needs compat=\"openai\"")

    @property
    def paddlex(self) -> bool:
        """True when PaddleX's bugs are reproduced (compat="paddlex")."""
        return self.compat == COMPAT_PADDLEX

    @property
    def openai(self) -> bool:
        """True when openai-whisper's pipeline is followed (compat="openai")."""
        return self.compat == COMPAT_OPENAI

    @property
    def temperatures(self) -> tuple:
        """The temperatures tried in turn on each window (PaddleX's np.arange rule)."""
        step = self.temperature_increment_on_fallback
        steps = () if step is None else tuple(float(t) for t in np.arange(self.temperature, 1.0 + 1e-6, step))
        return steps or (self.temperature,)

    def at_temperature(self, temperature: float) -> "DecodingOptions":
        """These options for one decoding attempt at ``temperature``."""
        return dataclasses.replace(self, temperature=temperature)


# openai-whisper's defaults: those of its command line (``whisper`` CLI, cli() in transcribe.py), and
# for the options the command line lacks, those of its DecodingOptions.
OPENAI_CLI_DEFAULTS = MappingProxyType({
    "task": "transcribe", "language": None,
    "temperature": 0.0, "temperature_increment_on_fallback": 0.2,  # 0.0, 0.2, ..., 1.0 in turn
    "best_of": 5, "beam_size": 5, "patience": None, "length_penalty": None,
    "suppress_tokens": "-1", "initial_prompt": None, "carry_initial_prompt": False,
    "condition_on_previous_text": True,
    "compression_ratio_threshold": 2.4, "logprob_threshold": -1.0, "no_speech_threshold": 0.6,
    "word_timestamps": False, "prepend_punctuations": PREPEND_PUNCTUATIONS,
    "append_punctuations": APPEND_PUNCTUATIONS, "clip_timestamps": "0", "hallucination_silence_threshold": None,
    "suppress_blank": True, "without_timestamps": False, "max_initial_timestamp": 1.0, "sample_len": None,
})


def openai_defaults(**given) -> DecodingOptions:
    """compat="openai" options: what is ``given``, and openai-whisper's command-line defaults for the rest.

    They are: beam search of 5 at temperature 0.0, falling back to 0.2, 0.4, ... 1.0 (best of 5
    samples) while a window's text is too repetitive (compression ratio > 2.4) or too unlikely (average
    log-probability < -1.0), a window skipped as silent when its no-speech probability is > 0.6 and
    its average log-probability not above -1.0, each window prompted with the text before it
    (condition_on_previous_text), the whole clip ("0"), no word timestamps (``OPENAI_CLI_DEFAULTS``).
    Its Python ``transcribe()`` differs: beam_size and best_of None (greedy).
    """
    if given.get("compat", COMPAT_OPENAI) != COMPAT_OPENAI:
        raise ValueError(f"openai_defaults gives compat={COMPAT_OPENAI!r} options, not compat={given['compat']!r}")
    return DecodingOptions(**{**OPENAI_CLI_DEFAULTS, **given, "compat": COMPAT_OPENAI})



def options_for_mode(**given) -> DecodingOptions:
    """DecodingOptions of ``given`` fields, the rest from the defaults of the mode ``given["compat"]``
    names: openai-whisper's for compat="openai" (``openai_defaults``), PaddleX's otherwise."""
    return openai_defaults(**given) if given.get("compat") == COMPAT_OPENAI else DecodingOptions(**given)

@dataclass(frozen=True)
class DecodingResult:
    """One window's decoded tokens (after the prompt, up to but excluding <|endoftext|>) and scores."""

    language: str
    tokens: Tuple[int, ...]
    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float
    sum_logprob: float
    language_probs: Optional[Mapping[str, float]] = None


# ---------------------------------------------------------------------------------- numerics


def sequential_sum(x: np.ndarray) -> np.ndarray:
    """Float32 sums along the last axis, accumulated front to back as paddle's CPU sum does [..., 1]."""
    x = np.ascontiguousarray(x, dtype=np.float32)  # [..., V]
    sums = kernels.sequential_row_sums(x.reshape(-1, x.shape[-1]))  # [rows, 1]
    return sums.reshape(*x.shape[:-1], 1)  # [..., 1]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax as paddle's CPU kernel -> float32 [B, V].

    (logit - row max) is clamped at -64, then s - log(sum(exp(s))) with a front-to-back float32 sum;
    measured within 2.4e-7 of paddle's kernel on real decoder rows (a pairwise sum: 3.8e-4).
    """
    x = np.asarray(logits, dtype=np.float32)  # [B, V]
    shifted = np.maximum(x - x.max(axis=-1, keepdims=True), np.float32(LOG_SOFTMAX_FLOOR))  # [B, V]
    return shifted - np.log(sequential_sum(np.exp(shifted)))  # [B, V]


def lane_sums(x: np.ndarray) -> np.ndarray:
    """Float32 sums of the rows of x [B, V] as torch's vectorised CPU reduction adds them -> [B, 1].

    Lane j of TORCH_SUM_LANES accumulates x[j], x[j + lanes], ... front to back; the V % lanes
    entries left over are added to the first lanes; then the lanes are folded in halves (lane j +
    lane j + lanes/2, ...), as the register's shuffles fold them.
    """
    rows, width = x.shape
    lanes = TORCH_SUM_LANES
    whole = width - width % lanes
    columns = x[:, :whole].reshape(rows, whole // lanes, lanes)  # [B, V // lanes, lanes]
    acc = np.cumsum(columns, axis=1, dtype=np.float32)[:, -1]  # [B, lanes] front-to-back float32 sums
    rest = width - whole
    acc[:, :rest] += x[:, whole:]  # [B, rest]
    step = lanes // 2
    while step:
        acc = acc + acc[:, np.arange(lanes) ^ step]  # [B, lanes]
        step //= 2
    return acc[:, :1]  # [B, 1]


def torch_log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax as torch's CPU kernel -> float32 [B, V]: s - log(sum(exp(s))), s = logit - row
    max, with no clamp and the exponentials summed as ``lane_sums``.

    Measured against torch 2.13 (AVX-512) on 135 real decoder rows of base and tiny.en: 98.8-99.9% of
    the values are equal, the others one float32 ulp away (at most 1.9e-6, at log-probabilities
    near -25; at most 3e-7 above -8). An exact sum differs by up to 3.2e-5.
    """
    x = np.asarray(logits, dtype=np.float32)  # [B, V]
    shifted = x - x.max(axis=-1, keepdims=True)  # [B, V]
    exps = np.exp(shifted.astype(np.float64)).astype(np.float32)  # [B, V] correctly rounded, as torch's exp nearly is
    return shifted - np.log(lane_sums(exps))  # [B, V]


def torch_logsumexp(row: np.ndarray) -> np.float32:
    """log(sum(exp(row))) of a float32 row [n] as torch.logsumexp: shifted by the row's maximum (0 when it
    is infinite), summed accurately, in float32."""
    top = row.max()
    top = np.float32(0) if not np.isfinite(top) else top
    total = np.exp((row - top).astype(np.float64)).sum()  # float64 scalar
    with np.errstate(divide="ignore"):  # every entry -inf: log(0) = -inf, as torch gives
        return np.float32(np.log(np.float32(total))) + top


@dataclass(frozen=True)
class Numerics:
    """Whose CPU kernels the log-probabilities follow: paddle's (PaddleX's modes) or torch's (compat="openai")."""

    torch: bool = False

    def log_softmax(self, logits: np.ndarray) -> np.ndarray:
        """Row-wise log-softmax of logits [B, V] -> float32 [B, V]."""
        return torch_log_softmax(logits) if self.torch else log_softmax(logits)

    def softmax(self, logits: np.ndarray) -> np.ndarray:
        """Row-wise softmax of logits [B, V] -> float32 [B, V]. torch's: its exponentials over ``lane_sums``
        (within 2.4e-7 relative of torch's on the rows ``torch_log_softmax`` was measured on; 3e-5 with
        paddle's sum)."""
        if not self.torch:
            return softmax(logits)
        x = np.asarray(logits, dtype=np.float32)  # [B, V]
        exps = np.exp((x - x.max(axis=-1, keepdims=True)).astype(np.float64)).astype(np.float32)  # [B, V]
        return exps / lane_sums(exps)  # [B, V]

    def total_logprob(self, logprobs: np.ndarray) -> float:
        """log of the total probability of some log-probabilities [n] (the timestamp rule's mass)."""
        if self.torch:
            return torch_logsumexp(logprobs)
        return np.log(sequential_sum(np.exp(logprobs))[0])


PADDLE_NUMERICS = Numerics()
TORCH_NUMERICS = Numerics(torch=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 [B, V]; -inf logits get probability 0."""
    x = np.asarray(logits, dtype=np.float32)  # [B, V]
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # [B, V]
    return e / e.sum(axis=-1, keepdims=True, dtype=np.float32)  # [B, V]


def compression_ratio(text: str) -> float:
    """Characters per zlib-compressed UTF-8 byte (PaddleX's repetitiveness measure)."""
    return len(text) / len(zlib.compress(text.encode("utf-8")))


def byte_compression_ratio(text: str) -> float:
    """UTF-8 bytes per zlib-compressed byte (openai-whisper's measure; above PaddleX's for non-ASCII text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def top_k(rows: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The k largest entries of each row of rows [B, V], best first, ties by lower index ->
    (values [B, k], indices [B, k])."""
    return kernels.top_k_rows(np.ascontiguousarray(rows), k)


# ---------------------------------------------------------------------------------- logit filters


@dataclass(frozen=True)
class SuppressBlank:
    """At the first sampled position, forbid a bare space and <|endoftext|> (no blank transcripts)."""

    token_ids: Tuple[int, ...]
    sample_begin: int

    def apply(self, logits: np.ndarray, tokens: np.ndarray) -> None:
        """Mask logits [B, V] in place given the tokens so far [B, T]."""
        if tokens.shape[1] == self.sample_begin:
            logits[:, list(self.token_ids)] = -np.inf


@dataclass(frozen=True)
class SuppressTokens:
    """Forbid a fixed set of tokens at every step."""

    token_ids: Tuple[int, ...]

    def apply(self, logits: np.ndarray, tokens: np.ndarray) -> None:
        """Mask logits [B, V] in place."""
        logits[:, list(self.token_ids)] = -np.inf


@dataclass(frozen=True)
class TimestampRules:
    """Whisper's timestamp grammar, applied in PaddleX's order.

    1. <|notimestamps|> is never sampled. 2. Timestamps come in pairs: right after a closing pair
    (or a timestamp at the start) comes text; right after text + one timestamp comes another
    timestamp or <|endoftext|>. 3. (``monotonic``, not in PaddleX) a timestamp may not be earlier
    than the previous one, and a segment's end must be later than its start. 4. The first sampled
    token may not be a timestamp later than ``max_initial_index`` (and, with ``initial_timestamp``,
    as in openai-whisper, it must be a timestamp). 5. When the timestamps together are more likely
    than the best single text token, a timestamp must be sampled (``numerics``: whose log-softmax
    and sum decide it).
    """

    eot: int
    no_timestamps: int
    timestamp_begin: int
    sample_begin: int
    max_initial_index: Optional[int]
    monotonic: bool
    initial_timestamp: bool = False
    numerics: Numerics = PADDLE_NUMERICS

    def apply(self, logits: np.ndarray, tokens: np.ndarray) -> None:
        """Mask logits [B, V] in place given the tokens so far [B, T]."""
        ts = self.timestamp_begin
        logits[:, self.no_timestamps] = -np.inf
        for k in range(tokens.shape[0]):
            sampled = tokens[k, self.sample_begin:]  # [T - sample_begin]
            last_is_ts = sampled.shape[0] >= 1 and sampled[-1] >= ts
            before_last_is_ts = sampled.shape[0] < 2 or sampled[-2] >= ts
            if last_is_ts:
                if before_last_is_ts:
                    logits[k, ts:] = -np.inf  # a pair just closed: text must follow
                else:
                    logits[k, :self.eot] = -np.inf  # an end timestamp: no text yet
            if self.monotonic:
                stamps = sampled[sampled >= ts]
                if stamps.shape[0] > 0:
                    # right after an end timestamp the next start may repeat it; otherwise move on
                    lowest = stamps[-1] if (last_is_ts and not before_last_is_ts) else stamps[-1] + 1
                    logits[k, ts:lowest] = -np.inf
        if tokens.shape[1] == self.sample_begin:
            if self.initial_timestamp:
                logits[:, :ts] = -np.inf
            if self.max_initial_index is not None:
                logits[:, ts + self.max_initial_index + 1:] = -np.inf
        logprobs = self.numerics.log_softmax(logits)  # [B, V]
        for k in range(tokens.shape[0]):
            if self.numerics.total_logprob(logprobs[k, ts:]) > logprobs[k, :ts].max():
                logits[k, :ts] = -np.inf


# ---------------------------------------------------------------------------------- token decoders


@dataclass(frozen=True)
class GreedyDecoder:
    """Argmax at temperature 0, else a sample from softmax(logits / temperature).

    ``accumulate`` False reproduces PaddleX, whose greedy decoder never adds to the running sums
    (its avg_logprob is always 0.0). ``numerics``: whose log-softmax the sums add.
    """

    temperature: float
    eot: int
    accumulate: bool = True
    numerics: Numerics = PADDLE_NUMERICS

    def update(self, tokens: np.ndarray, logits: np.ndarray, sum_logprobs: np.ndarray,
               rng: Optional[np.random.Generator]) -> Tuple[np.ndarray, np.ndarray, bool]:
        """Append one token per row -> (tokens [B, T + 1], sum_logprobs [B], all rows finished)."""
        if self.temperature == 0:
            next_tokens = logits.argmax(axis=-1)  # [B]
        else:
            next_tokens = sample_categorical(logits / np.float32(self.temperature), rng)  # [B]
        done = tokens[:, -1] == self.eot  # [B]
        if self.accumulate:
            logprobs = self.numerics.log_softmax(logits)  # [B, V]
            picked = logprobs[np.arange(logits.shape[0]), next_tokens]  # [B]
            sum_logprobs = sum_logprobs + np.where(done, np.float32(0), picked).astype(np.float32)  # [B]
        next_tokens = np.where(done, self.eot, next_tokens)  # [B]
        tokens = np.concatenate([tokens, next_tokens[:, None]], axis=1)  # [B, T + 1]
        return tokens, sum_logprobs, bool((tokens[:, -1] == self.eot).all())

    def finalize(self, tokens: np.ndarray, sum_logprobs: np.ndarray) -> Tuple[list, list]:
        """Every row as a candidate ending in <|endoftext|> -> (sequences, their summed log-probs)."""
        ended = np.concatenate([tokens, np.full((tokens.shape[0], 1), self.eot)], axis=1)  # [B, T + 1]
        return [tuple(int(t) for t in row) for row in ended], [float(s) for s in sum_logprobs]


def sample_categorical(logits: np.ndarray, rng: Optional[np.random.Generator]) -> np.ndarray:
    """One draw per row from softmax(logits [B, V]) with ``rng`` -> token ids [B]."""
    if rng is None:
        raise ValueError("sampling at temperature > 0 needs a random generator")
    x = logits.astype(np.float64)  # [B, V]
    probs = np.exp(x - x.max(axis=-1, keepdims=True))  # [B, V]
    cdf = np.cumsum(probs, axis=-1)  # [B, V]
    draws = rng.random(logits.shape[0]) * cdf[:, -1]  # [B]
    picks = np.array([np.searchsorted(c, u, side="right") for c, u in zip(cdf, draws)])  # [B]
    return np.minimum(picks, logits.shape[1] - 1)


@dataclass(frozen=True)
class BeamState:
    """Finished candidates of a beam search so far: ((full token sequence, summed log-prob), ...), in order."""

    finished: Tuple[Tuple[tuple, float], ...] = ()


@dataclass(frozen=True)
class BeamSearchDecoder:
    """PaddleX's beam search over one audio window (the batch rows are the beams).

    Each beam proposes its beam_size + 1 best next tokens; all proposals are ranked by summed
    log-probability; those ending in <|endoftext|> become finished candidates (at most
    round(beam_size * patience) kept) and the best beam_size others continue. Search stops when
    enough candidates are finished. openai-whisper's search is the same but for ``numerics``.
    """

    beam_size: int
    eot: int
    patience: Optional[float] = None
    numerics: Numerics = PADDLE_NUMERICS

    @property
    def max_candidates(self) -> int:
        """Finished candidates to collect before stopping."""
        return round(self.beam_size * (self.patience or 1.0))

    def update(self, tokens: np.ndarray, logits: np.ndarray, sum_logprobs: np.ndarray, state: BeamState):
        """One step -> (tokens [beam, T + 1], sum_logprobs [beam], source rows [beam], state, done)."""
        logprobs = self.numerics.log_softmax(logits)  # [beam, V]
        best_values, best_indices = top_k(logprobs, self.beam_size + 1)  # [beam, beam + 1] each
        totals = (np.asarray(sum_logprobs, np.float32)[:, None] + best_values).tolist()  # float32 sums (paddle)
        scores, sources = {}, {}
        for j, (row_totals, row_ids) in enumerate(zip(totals, best_indices.tolist())):
            prefix = tuple(tokens[j].tolist())
            for total, token in zip(row_totals, row_ids):
                sequence = prefix + (token,)
                scores[sequence] = total
                sources[sequence] = j
        kept, kept_scores, kept_sources, newly_finished = [], [], [], {}
        for sequence in sorted(scores, key=scores.get, reverse=True):
            if sequence[-1] == self.eot:
                newly_finished[sequence] = scores[sequence]
                continue
            kept.append(sequence)
            kept_scores.append(scores[sequence])
            kept_sources.append(sources[sequence])
            if len(kept) == self.beam_size:
                break
        finished = dict(state.finished)
        for sequence in sorted(newly_finished, key=newly_finished.get, reverse=True):
            if len(finished) >= self.max_candidates:
                break
            finished[sequence] = newly_finished[sequence]
        done = len(finished) >= self.max_candidates
        new_tokens = np.array(kept, dtype=np.int64)  # [beam, T + 1]
        new_sums = np.array(kept_scores, dtype=np.float32)  # [beam]
        return new_tokens, new_sums, kept_sources, BeamState(tuple(finished.items())), done

    def finalize(self, tokens: np.ndarray, sum_logprobs: np.ndarray, state: BeamState) -> Tuple[list, list]:
        """Finished candidates, topped up with the best unfinished beams -> (sequences, summed log-probs)."""
        finished = dict(state.finished)
        if len(finished) < self.beam_size:
            for j in np.argsort(sum_logprobs)[::-1]:
                finished[tuple(tokens[j].tolist()) + (self.eot,)] = float(sum_logprobs[j])
                if len(finished) >= self.beam_size:
                    break
        return list(finished), list(finished.values())


@dataclass(frozen=True)
class MaximumLikelihoodRanker:
    """Pick the candidate with the best summed log-probability divided by a length penalty.

    length_penalty None: the number of tokens; else ((5 + length) / 6) ** length_penalty.
    """

    length_penalty: Optional[float] = None

    def rank(self, sequences: Sequence[Sequence[int]], sum_logprobs: Sequence[float]) -> int:
        """Index of the best candidate (the first one on ties)."""
        scores = []
        for tokens, logprob in zip(sequences, sum_logprobs):
            n = len(tokens)
            penalty = n if self.length_penalty is None else ((5 + n) / 6) ** self.length_penalty
            scores.append(logprob / penalty)
        return int(np.argmax(scores))


# ---------------------------------------------------------------------------------- the task


def paddlex_decode(tokenizer: Tokenizer, ids: Sequence[int], where: str) -> str:
    """Tokenizer.decode, failing where PaddleX's decode fails: no ids, or one lone timestamp id."""
    ids = [int(t) for t in ids]
    if not ids:
        raise PaddleXFailure(f"PaddleX fails here: {where} has no tokens to decode "
                             "(its Tokenizer.decode([]) raises ValueError)")
    if len(ids) == 1 and ids[0] >= tokenizer.timestamp_begin:
        raise PaddleXFailure(f"PaddleX fails here: {where} is the lone timestamp {ids[0]} "
                             "(its Tokenizer.decode of one timestamp id raises KeyError)")
    return tokenizer.decode(ids)


def text_of(tokenizer: Tokenizer, ids: Sequence[int], options: DecodingOptions, where: str) -> str:
    """Decoded text of ids; in compat="paddlex" mode fails where PaddleX fails."""
    if options.paddlex:
        return paddlex_decode(tokenizer, ids, where)
    return tokenizer.decode(ids)


def detect_language(backend: Backend, tokenizer: Tokenizer, audio_features: np.ndarray,
                    cross=None) -> Tuple[str, dict]:
    """Most likely language of a window's audio features -> (code as PaddleX spells it, {code: prob})."""
    if not tokenizer.is_multilingual:
        raise ValueError("this model is English-only: it has no language tokens to detect with")
    ids = tokenizer.all_language_tokens
    probs = backend.language_probs(audio_features, tokenizer.sot, ids, cross=cross)  # [n_lang]
    codes = [paddlex_code(c) for c in tokenizer.all_language_codes]
    return codes[int(np.argmax(probs))], dict(zip(codes, (float(p) for p in probs)))


def needs_detection(tokenizer: Tokenizer, options: DecodingOptions) -> bool:
    """Whether the language must be detected: none given, and the model is multilingual."""
    return options.language is None and tokenizer.is_multilingual


def choose_language(tokenizer: Tokenizer, options: DecodingOptions, detected: Optional[str]) -> Tuple[str, str]:
    """(code to decode with, code the result reports) from options.language, else the ``detected``
    code (PaddleX's spelling; None unless needs_detection), else English for English-only models.

    compat="paddlex" reports options.language as given; otherwise in PaddleX's spelling.
    """
    if options.language is not None:
        language = language_code(options.language)
        return language, options.language if options.paddlex else paddlex_code(language)
    if detected is not None:
        return language_code(detected), detected
    return "en", "en"


def check_english_only(tokenizer: Tokenizer, language: str, options: DecodingOptions) -> None:
    """ValueError when an English-only model is asked to transcribe another language.

    PaddleX (compat="paddlex") and openai-whisper (compat="openai") quietly decode English instead;
    translation is allowed, as both allow it (English-only models have no task token, so it is
    transcription).
    """
    if tokenizer.is_multilingual or options.paddlex or options.openai or language == "en":
        return
    raise ValueError(f"this model is English-only: it cannot transcribe language {language!r} "
                     "(use a multilingual model such as base)")


def suppressed_tokens(tokenizer: Tokenizer, options: DecodingOptions) -> tuple:
    """The ids options.suppress_tokens blocks at every step (PaddleX's set; openai-whisper adds
    <|transcribe|> and <|translate|>)."""
    ids = tokenizer.suppress_tokens(options.suppress_tokens)
    if options.openai:
        ids = tuple(sorted({*ids, tokenizer.transcribe, tokenizer.translate}))
    return ids


@dataclass(frozen=True)
class DecodingTask:
    """Everything fixed for decoding one window: the initial tokens, filters, token decoder and ranker."""

    options: DecodingOptions
    tokenizer: Tokenizer
    language: str
    initial_tokens: Tuple[int, ...]
    sample_begin: int
    sot_index: int
    sample_len: int
    n_ctx: int
    n_group: int
    logit_filters: tuple
    decoder: Union[GreedyDecoder, BeamSearchDecoder]
    ranker: MaximumLikelihoodRanker

    @classmethod
    def build(cls, backend: Backend, tokenizer: Tokenizer, options: DecodingOptions, language: str,
              prompt: Sequence[int] = ()) -> "DecodingTask":
        """Wire a task for ``language`` (a code) with ``prompt`` (previous-text tokens) as context."""
        check_english_only(tokenizer, language, options)
        n_ctx = backend.dims.n_text_ctx
        sample_len = options.sample_len or n_ctx // 2
        sot_sequence = tokenizer.sot_sequence(language, options.task, without_timestamps=options.without_timestamps)
        initial = list(sot_sequence)
        if len(prompt) > 0:
            initial = [tokenizer.sot_prev, *(int(t) for t in prompt[-(n_ctx // 2 - 1):]), *initial]
        initial = tuple(initial)
        sample_begin = len(initial)
        numerics = TORCH_NUMERICS if options.openai else PADDLE_NUMERICS
        if options.temperature == 0 and options.beam_size is not None:
            decoder = BeamSearchDecoder(options.beam_size, tokenizer.eot, options.patience, numerics)
            n_group = options.beam_size
        else:
            decoder = GreedyDecoder(options.temperature, tokenizer.eot, not options.paddlex, numerics)
            n_group = (options.best_of or 1) if options.temperature > 0 else 1
        filters = []
        if options.suppress_blank:
            filters.append(SuppressBlank((*tokenizer.encode(" "), tokenizer.eot), sample_begin))
        if options.suppress_tokens:
            filters.append(SuppressTokens(suppressed_tokens(tokenizer, options)))
        if not options.without_timestamps:
            max_initial = None
            if options.max_initial_timestamp:
                max_initial = round(options.max_initial_timestamp / SECONDS_PER_TIMESTAMP)
            filters.append(TimestampRules(tokenizer.eot, tokenizer.no_timestamps, tokenizer.timestamp_begin,
                                          sample_begin, max_initial, options.monotonic_timestamps or options.openai,
                                          initial_timestamp=options.openai, numerics=numerics))
        return cls(options=options, tokenizer=tokenizer, language=language, initial_tokens=initial,
                   sample_begin=sample_begin, sot_index=initial.index(tokenizer.sot), sample_len=sample_len,
                   n_ctx=n_ctx, n_group=n_group, logit_filters=tuple(filters), decoder=decoder,
                   ranker=MaximumLikelihoodRanker(options.length_penalty))

    def main_loop(self, backend: Backend, cross, rng: Optional[np.random.Generator]):
        """Sample up to sample_len tokens for n_group rows.

        Returns (tokens [n, T], sum_logprobs [n], no-speech probability, beam state).
        """
        tokens = np.array([self.initial_tokens], dtype=np.int64)  # [1, T0]
        cache = backend.new_cache(cross)
        logits, cache = backend.decode(tokens, cache, logits_at=(self.sot_index, -1))  # [1, 2, V] the prompt, once
        no_speech_prob = float(self.decoder.numerics.softmax(logits[:, 0])[0, self.tokenizer.no_speech])
        logits = np.repeat(logits[:, 1], self.n_group, axis=0)  # [n, V]
        tokens = np.repeat(tokens, self.n_group, axis=0)  # [n, T0]
        cache = backend.reorder(cache, [0] * self.n_group)
        sum_logprobs = np.zeros(self.n_group, dtype=np.float32)  # [n]
        state = BeamState()
        for step in range(self.sample_len):
            if step > 0:
                logits, cache = backend.decode(tokens[:, -1:], cache)  # [n, 1, V]
                logits = logits[:, -1]  # [n, V]
            logits = np.array(logits, dtype=np.float32)  # [n, V] a copy the filters may write
            for logit_filter in self.logit_filters:
                logit_filter.apply(logits, tokens)
            if isinstance(self.decoder, BeamSearchDecoder):
                tokens, sum_logprobs, sources, state, done = self.decoder.update(tokens, logits, sum_logprobs, state)
                cache = backend.reorder(cache, sources)
            else:
                tokens, sum_logprobs, done = self.decoder.update(tokens, logits, sum_logprobs, rng)
            if done or tokens.shape[1] > self.n_ctx:
                break
        return tokens, sum_logprobs, no_speech_prob, state

    def run(self, backend: Backend, audio_features: np.ndarray, rng: Optional[np.random.Generator] = None,
            cross=None) -> DecodingResult:
        """Decode one window's audio features [n_audio_ctx, d] into its best candidate.

        ``cross``: the backend's cross_kv of the features, when the caller already has it.
        """
        if cross is None:
            cross = backend.cross_kv(audio_features)
        tokens, sum_logprobs, no_speech_prob, state = self.main_loop(backend, cross, rng)
        if isinstance(self.decoder, BeamSearchDecoder):
            sequences, sums = self.decoder.finalize(tokens, sum_logprobs, state)
        else:
            sequences, sums = self.decoder.finalize(tokens, sum_logprobs)
        eot = self.tokenizer.eot
        candidates = [seq[self.sample_begin:seq.index(eot, self.sample_begin)] for seq in sequences]
        best = self.ranker.rank(candidates, sums)
        chosen = tuple(candidates[best])
        text = text_of(self.tokenizer, chosen, self.options, "the window's decoded tokens").strip()
        openai = self.options.openai
        return DecodingResult(
            language=self.language if openai else paddlex_code(self.language), tokens=chosen, text=text,
            avg_logprob=sums[best] / (len(chosen) + 1), no_speech_prob=no_speech_prob,
            temperature=self.options.temperature,
            compression_ratio=byte_compression_ratio(text) if openai else compression_ratio(text),
            sum_logprob=sums[best])


def decode(backend: Backend, tokenizer: Tokenizer, audio_features: np.ndarray,
           options: DecodingOptions = DecodingOptions(), *, prompt: Sequence[int] = (),
           rng: Optional[np.random.Generator] = None, cross=None) -> DecodingResult:
    """Decode one 30 s window from its audio features [n_audio_ctx, d] (``backend.encode`` of the mel).

    ``prompt``: tokens of previous text, placed after <|startofprev|>. With options.language None
    the language is detected on this window first. At temperature > 0 a seeded generator is made
    from options.seed unless ``rng`` is given.
    """
    if cross is None:
        cross = backend.cross_kv(audio_features)
    detected, language_probs = None, None
    if needs_detection(tokenizer, options):
        detected, language_probs = detect_language(backend, tokenizer, audio_features, cross)
    language, _ = choose_language(tokenizer, options, detected)
    if rng is None and options.temperature > 0:
        rng = sampling_generator(options, ())
    task = DecodingTask.build(backend, tokenizer, options, language, prompt)
    result = task.run(backend, audio_features, rng, cross)
    if language_probs is not None:
        result = dataclasses.replace(result, language_probs=MappingProxyType(language_probs))
    return result


def is_silent(result: DecodingResult, options: DecodingOptions) -> bool:
    """The no-speech rule (PaddleX's and openai-whisper's): the window is skipped when its no-speech
    probability is above its threshold and its log-prob not above its own."""
    if options.no_speech_threshold is None:
        return False
    if options.logprob_threshold is not None and result.avg_logprob > options.logprob_threshold:
        return False
    return result.no_speech_prob > options.no_speech_threshold


def needs_fallback(result: DecodingResult, options: DecodingOptions) -> bool:
    """Whether a window is decoded again at the next temperature: its text is too repetitive
    (compression ratio above its threshold) or too unlikely (average log-prob below its own).
    compat="openai" exempts a window the no-speech rule would skip (openai-whisper's rule); PaddleX
    has no such exemption."""
    too_repetitive = (options.compression_ratio_threshold is not None
                      and result.compression_ratio > options.compression_ratio_threshold)
    too_unlikely = options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold
    if options.openai and too_unlikely and options.no_speech_threshold is not None \
            and result.no_speech_prob > options.no_speech_threshold:
        return False
    return too_repetitive or too_unlikely


def decode_with_fallback(backend: Backend, tokenizer: Tokenizer, audio_features: np.ndarray, cross, seek: int,
                         options: DecodingOptions, language: str, prompt: Sequence[int]) -> DecodingResult:
    """Decode the window at ``seek`` at each of options.temperatures in turn while ``needs_fallback``:
    the decoder of options at 0 (beam search or greedy), best_of samples above, each attempt drawing
    from its own generator (``sampling_generator`` keyed by the seek and the attempt)."""
    result = None
    for attempt, temperature in enumerate(options.temperatures):
        attempt_options = options.at_temperature(temperature)
        rng = sampling_generator(attempt_options, (seek, attempt)) if temperature > 0 else None
        task = DecodingTask.build(backend, tokenizer, attempt_options, language, prompt)
        result = task.run(backend, audio_features, rng, cross)
        if not needs_fallback(result, options):
            break
    return result


def sampling_generator(options: DecodingOptions, key: Sequence[int]) -> np.random.Generator:
    """The generator for one sampling attempt: from (seed, *key), or OS entropy (compat, no seed)."""
    if options.seed is None and options.paddlex:
        return np.random.default_rng()
    return np.random.default_rng([options.seed or 0, *key])
