"""Whisper's byte-level BPE tokenizer, written from scratch on the standard library.

Text becomes ids in three steps:

1. Pre-tokenization cuts the text with GPT-2's pattern (contractions, letter runs, digit runs,
   runs of other symbols, whitespace runs), each optionally led by one space. The pattern needs
   the Unicode classes L (letters), N (numbers) and White_Space; they are built here from
   ``unicodedata`` for the standard ``re`` module, so no third-party regex engine is needed.
2. Each piece's UTF-8 bytes are merged pairwise into vocabulary tokens (byte-pair encoding).
3. The tokens' ids are looked up.

Two merge procedures are available. By default the ids are exactly those of OpenAI's own
tokenizer (tiktoken with ``multilingual.tiktoken`` / ``gpt2.tiktoken``): a whole piece that is a
vocabulary token is taken as is; otherwise the adjacent pair whose concatenation has the lowest
id is merged, leftmost first, one pair at a time. This needs only the vocabulary, whose ids are
the ranks. With ``paddlex_lost_merge=True`` the merge rules of the model file are applied in rank
order, every occurrence of the best rule at once, as PaddleX's GPT tokenizer does; PaddleX's
multilingual rule list (the merges.txt Hugging Face publishes) lacks its first rule "Ġ t", so e.g.
" the" becomes [220, 3322] there instead of [264]. Model files made from OpenAI's own ranks (a
``.pt`` or ggml file) hold that rule; this mode skips it for multilingual vocabularies.

Decoding joins the tokens' bytes and reads them as UTF-8 (invalid bytes become U+FFFD). With
``paddlex_cleanup=True`` (the default) the text is rendered as PaddleX renders it: added special
tokens are set apart by single spaces and the "clean up tokenization spaces" replacements
(" ." -> "." and the like) are applied to each stretch between timestamps.

Known differences, on purpose or by nature:
- Letters and numbers are those of the running Python's Unicode database. tiktoken 0.14 knows
  Unicode 16, so the 9,392 letters and digits that Unicode 15.0-16.0 added (unassigned in Python
  3.11's Unicode 14) split differently; every other code point was checked to split the same.
- Special tokens are spelled as OpenAI spells them: <|he|> (PaddleX writes <|iw|>), <|nospeech|>
  (Hugging Face's vocabularies write <|nocaptions|>).
- ``encode`` treats special-token spellings in the text as plain text (as tiktoken's
  ``encode_ordinary``); PaddleX turns "<|en|>" into the special id.
- ``decode([])`` is "" and lone timestamps are dropped; PaddleX raises on both.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import string
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import ModelFileError
from .formats.bpe_ranks import bytes_to_unicode
from .languages import (CONTROL_TOKENS, EOT_TEXT, LANGUAGES, N_LANGUAGES_BEFORE_V3, N_TIMESTAMPS, SOT_TEXT,
                        is_multilingual, language_code, paddlex_code)

TASKS = ("transcribe", "translate")
# Languages written without spaces between words: word timing splits their text at every complete
# character instead (openai-whisper's rule; no morphological analysis).
NO_SPACE_LANGUAGES = ("zh", "ja", "th", "lo", "my", "yue")

# Symbols whose tokens the "-1" suppress set blocks (speaker tags, music notes, brackets).
NON_SPEECH_SYMBOLS = tuple('"#()*+/:;<=>@[\\]^_`{|}~「」『』') + tuple(
    "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
)
# Musical symbols U+2640..U+267F: when they take several tokens, the first token is blocked.
NON_SPEECH_MUSIC = tuple("♩♪♫♬♭♮♯")

# PaddleX's clean-up replacements, applied in this order.
CLEANUP_REPLACEMENTS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)

# Unicode White_Space (the meaning of \s in tiktoken's and PaddleX's patterns; Python's own \s
# would also take U+001C..U+001F).
WHITESPACE_RANGES = (
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)
# Planes that hold assigned letters or numbers (4-13 are empty, 15-16 are private use).
SCANNED_PLANES = (0, 1, 2, 3, 14)
PADDLEX_LOST_RULE = ("Ġ", "t")  # the first multilingual merge rule, missing from PaddleX's list


@dataclass(frozen=True)
class TokenizerOptions:
    """How far to imitate PaddleX's tokenizer.

    paddlex_lost_merge: encode with the model file's merge rules as PaddleX does (the multilingual
        list lacks "Ġ t"). Default False: ids identical to OpenAI's tiktoken tokenizer.
    paddlex_cleanup: decode as PaddleX does: spaces around added special tokens and the
        clean_up_tokenization_spaces replacements. Default True, as in PaddleX's transcripts.
    """

    paddlex_lost_merge: bool = False
    paddlex_cleanup: bool = True


def _code_point_ranges(chars: str) -> list:
    """The code points of chars (ascending) as [(first, last), ...] runs of consecutive ones."""
    cps = np.frombuffer(chars.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)  # [n]
    if cps.shape[0] == 0:
        return []
    breaks = np.flatnonzero(np.diff(cps) != 1)  # [runs - 1] last index of every run but the final one
    firsts = np.concatenate([cps[:1], cps[breaks + 1]])  # [runs]
    lasts = np.concatenate([cps[breaks], cps[-1:]])  # [runs]
    return list(zip(firsts.tolist(), lasts.tolist()))


def _scanned_characters() -> str:
    """Every code point of SCANNED_PLANES as one string, in order (surrogates included)."""
    planes = [np.arange(plane << 16, (plane + 1) << 16, dtype="<u4") for plane in SCANNED_PLANES]
    return np.concatenate(planes).tobytes().decode("utf-32-le", "surrogatepass")


def _class_body(ranges: Iterable) -> str:
    """A character-class body (without brackets) for ``re`` from (first, last) ranges."""
    parts = []
    for first, last in ranges:
        lo = re.escape(chr(first))
        parts.append(lo if first == last else f"{lo}-{re.escape(chr(last))}")
    return "".join(parts)


@lru_cache(maxsize=1)
def pretokenize_pattern() -> re.Pattern:
    """GPT-2's pre-tokenization pattern for ``re``, its classes built from ``unicodedata``.

    Letters (category L) are exactly what ``str.isalpha`` accepts, and every number (category N)
    has a numeric value (``str.isnumeric``); filtering with those C methods first leaves
    ``unicodedata.category`` a few thousand characters to look at instead of 330 000.
    """
    return _pattern_over(_scanned_characters())


@lru_cache(maxsize=1)
def ascii_pretokenize_pattern() -> re.Pattern:
    """``pretokenize_pattern`` with its letter and number classes cut to ASCII, so it is cheap to
    build, unlike the full Unicode classes. It splits alike any text whose other characters are
    neither letters nor numbers (``only_ascii_words``), such as the symbols every transcription
    suppresses."""
    return _pattern_over("".join(map(chr, range(128))))


def only_ascii_words(text: str) -> bool:
    """True when every letter and number of text is ASCII (other characters may be anything)."""
    return text.isascii() or not any(c.isalpha() or c.isnumeric() for c in set(text) if not c.isascii())


def _pattern_over(scanned: str) -> re.Pattern:
    """GPT-2's pattern with letter and number classes holding the L and N characters of ``scanned``."""
    L = _class_body(_code_point_ranges("".join(filter(str.isalpha, scanned))))
    numeric = filter(str.isnumeric, scanned)
    N = _class_body(_code_point_ranges("".join(c for c in numeric if unicodedata.category(c)[0] == "N")))
    S = _class_body(WHITESPACE_RANGES)
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"
    )


def pretokenize(text: str) -> list:
    """Split text into GPT-2 pre-tokens (their concatenation is the text)."""
    pattern = ascii_pretokenize_pattern() if only_ascii_words(text) else pretokenize_pattern()
    return pattern.findall(text)


def timestamp_text(index: int) -> str:
    """Text of the index-th timestamp token, e.g. 54 -> "<|1.08|>"."""
    return f"<|{index * 0.02:.2f}|>"


def _rank_merge(piece: bytes, ranks: Mapping) -> list:
    """tiktoken's merge of one piece: a whole-token piece as is, else lowest-id pairs first."""
    whole = ranks.get(piece)
    if whole is not None:
        return [whole]
    bounds = list(range(len(piece) + 1))  # token i is piece[bounds[i]:bounds[i + 1]]
    while len(bounds) > 2:
        best, best_i = None, -1
        for i in range(len(bounds) - 2):
            rank = ranks.get(piece[bounds[i]:bounds[i + 2]])
            if rank is not None and (best is None or rank < best):
                best, best_i = rank, i
        if best is None:
            break
        del bounds[best_i + 1]
    return [ranks[piece[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]


def _rule_merge(symbols: tuple, merge_ranks: Mapping) -> tuple:
    """PaddleX's merge of one piece: apply the best-ranked rule everywhere, repeat until none applies."""
    while len(symbols) > 1:
        pairs = set(zip(symbols[:-1], symbols[1:]))
        best = min(pairs, key=lambda pair: merge_ranks.get(pair, float("inf")))
        if best not in merge_ranks:
            break
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = tuple(merged)
    return symbols


class Tokenizer:
    """Whisper's tokenizer: encode/decode text and the special token ids of one vocabulary.

    Build it with ``Tokenizer.from_metadata`` (a model file's metadata) or from the parsed
    vocabulary, merge rules and added tokens. Ids below ``eot`` are text tokens; ``eot`` ..
    ``no_timestamps`` are special tokens; ``timestamp_begin`` .. ``n_vocab - 1`` are timestamps.
    The only mutable member is a memo of merged pieces, which never changes results.
    """

    def __init__(self, vocab: Mapping, merges: Sequence, added_tokens: Mapping,
                 options: TokenizerOptions = TokenizerOptions()):
        self.options = options
        self._byte_to_char = bytes_to_unicode()
        # str.translate table: each byte-level character to its byte as a Latin-1 character, and any
        # other Latin-1 character to U+FFFF, so that encoding a stray one fails (see _read_vocab)
        char_to_byte = {cp: "\uffff" for cp in range(256)}
        char_to_byte.update({ord(c): chr(b) for b, c in self._byte_to_char.items()})
        self._read_specials(added_tokens)
        self._text_tokens = self._read_vocab(vocab, added_tokens, char_to_byte)  # id -> bytes, ids < eot
        self._ranks = {token: i for i, token in enumerate(self._text_tokens)}
        if any(rule.count(" ") != 1 for rule in merges):
            raise ModelFileError("tokenizer.merges: every rule must be two symbols joined by one space")
        self._vocab_source, self._merges = vocab, merges  # read into tables by PaddleX's rule merging only
        self._memo = {}  # piece bytes -> tuple of ids

    @cached_property
    def _merge_ranks(self) -> dict:
        """{(left, right): rank} of the merge rules, for PaddleX's rule merging (``paddlex_lost_merge``).
        Built on first use: the ranked merging that every other encode uses needs only ``_ranks``, and
        the 50,000 rules' table is the slowest part of building a tokenizer."""
        ranks = {tuple(rule.split(" ")): rank for rank, rule in enumerate(self._merges)}
        if self.is_multilingual:
            ranks.pop(PADDLEX_LOST_RULE, None)  # the rule PaddleX's tokenizer loses, see PADDLEX_LOST_RULE
        return ranks

    @cached_property
    def _vocab(self) -> dict:
        """{token text: id}, for PaddleX's rule merging (built on first use, as ``_merge_ranks``)."""
        return dict(self._vocab_source)

    @classmethod
    def from_metadata(cls, metadata: Mapping, *, paddlex_lost_merge: bool = False,
                      paddlex_cleanup: bool = True) -> "Tokenizer":
        """From a model file's metadata ("tokenizer.vocab", "tokenizer.merges", "tokenizer.added_tokens")."""
        try:
            parts = [json.loads(metadata[key]) for key in
                     ("tokenizer.vocab", "tokenizer.merges", "tokenizer.added_tokens")]
        except KeyError as err:
            raise ModelFileError(f"metadata key {err.args[0]} is missing") from None
        except json.JSONDecodeError as err:
            raise ModelFileError(f"tokenizer metadata is not valid JSON ({err})") from None
        options = TokenizerOptions(paddlex_lost_merge=paddlex_lost_merge, paddlex_cleanup=paddlex_cleanup)
        return cls(*parts, options=options)

    def with_options(self, **changes) -> "Tokenizer":
        """This tokenizer with some TokenizerOptions changed (e.g. paddlex_lost_merge=True); the parsed
        vocabulary and merge tables are shared, the memo of merged pieces is not."""
        other = copy.copy(self)
        other.options = dataclasses.replace(self.options, **changes)
        other._memo = {}
        return other

    # ------------------------------------------------------------------ construction helpers

    def _read_specials(self, added: Mapping) -> None:
        """Set the special ids (fixed offsets from <|startoftranscript|>) after checking their spellings."""
        for name in (EOT_TEXT, SOT_TEXT):
            if name not in added:
                raise ModelFileError(f"tokenizer.added_tokens has no {name}")
        self.eot, self.sot = int(added[EOT_TEXT]), int(added[SOT_TEXT])
        if self.sot != self.eot + 1:
            raise ModelFileError(f"tokenizer.added_tokens: {SOT_TEXT} must follow {EOT_TEXT}")
        self._language_codes = tuple(LANGUAGES)[:self._count_languages(added)]
        spellings = [(f"<|{c}|>", (f"<|{paddlex_code(c)}|>",) if paddlex_code(c) != c else ())
                     for c in self._language_codes]
        spellings += [(text, (in_files,) if in_files != text else ()) for text, in_files in CONTROL_TOKENS]
        by_id = {int(i): text for text, i in added.items()}
        for offset, (text, others) in enumerate(spellings, start=1):
            got = by_id.get(self.sot + offset)
            if got not in (text, *others):
                raise ModelFileError(f"tokenizer.added_tokens: id {self.sot + offset} is {got!r}, expected {text}")
        first_control = self.sot + 1 + len(self._language_codes)
        self.translate = first_control
        self.transcribe = first_control + 1
        self.sot_lm = first_control + 2
        self.sot_prev = first_control + 3
        self.no_speech = first_control + 4
        self.no_timestamps = first_control + 5
        self.timestamp_begin = first_control + 6
        self.n_vocab = self.timestamp_begin + N_TIMESTAMPS
        names = [EOT_TEXT, SOT_TEXT, *(text for text, _ in spellings)]
        self.special_tokens = MappingProxyType({text: self.eot + i for i, text in enumerate(names)})
        self._special_text = {i: text for text, i in self.special_tokens.items()}

    def _count_languages(self, added: Mapping) -> int:
        """99 language tokens, or 100 when <|yue|> follows <|su|> (large-v3's vocabulary)."""
        yue = f"<|{tuple(LANGUAGES)[N_LANGUAGES_BEFORE_V3]}|>"
        if added.get(yue) is not None and int(added[yue]) == self.sot + 1 + N_LANGUAGES_BEFORE_V3:
            return len(LANGUAGES)
        return N_LANGUAGES_BEFORE_V3

    def _read_vocab(self, vocab: Mapping, added: Mapping, char_to_byte: dict) -> list:
        """The byte string of every text token (ids 0 .. eot-1), refusing gaps and stray ids."""
        tokens = [None] * self.eot
        for text, i in vocab.items():
            i = int(i)
            if i >= self.eot:  # only added tokens (e.g. <|endoftext|>) may sit here
                if added.get(text) != i:
                    raise ModelFileError(f"tokenizer.vocab: {text!r} has id {i}, in the special range")
                continue
            try:
                tokens[i] = text.translate(char_to_byte).encode("latin-1")
            except UnicodeEncodeError:
                raise ModelFileError(f"tokenizer.vocab: {text!r} is not a byte-level token") from None
        missing = [i for i, t in enumerate(tokens) if t is None]
        if missing:
            raise ModelFileError(f"tokenizer.vocab lacks id {missing[0]} ({len(missing)} ids missing)")
        return tokens

    # ------------------------------------------------------------------ properties

    @property
    def is_multilingual(self) -> bool:
        """True for a multilingual vocabulary, False for the English-only (GPT-2) one."""
        return is_multilingual(self.n_vocab)

    @property
    def all_language_tokens(self) -> tuple:
        """Ids of the language tokens (99, or 100 for large-v3's vocabulary), in LANGUAGES order."""
        return tuple(range(self.sot + 1, self.sot + 1 + len(self._language_codes)))

    @property
    def all_language_codes(self) -> tuple:
        """Codes of the language tokens (OpenAI's spelling, "he" for Hebrew)."""
        return self._language_codes

    def language_token(self, language: str) -> int:
        """Id of a language's token (code, PaddleX code or English name)."""
        code = language_code(language)
        if code not in self._language_codes:
            raise ValueError(f"language {language!r} has no token in this model's vocabulary (before large-v3)")
        return self.sot + 1 + self._language_codes.index(code)

    def sot_sequence(self, language: Optional[str] = None, task: Optional[str] = None, *,
                     without_timestamps: bool = False) -> tuple:
        """The decoder prompt start: (sot, language, task) for multilingual vocabularies, (sot,) else.

        Multilingual defaults are language "en" and task "transcribe" (as PaddleX); English-only
        vocabularies ignore both. ``without_timestamps`` appends <|notimestamps|>.
        """
        sequence = [self.sot]
        if self.is_multilingual:
            task = task or "transcribe"
            if task not in TASKS:
                raise ValueError(f"unsupported task: {task!r} (use one of {TASKS})")
            sequence.append(self.language_token(language or "en"))
            sequence.append(self.transcribe if task == "transcribe" else self.translate)
        if without_timestamps:
            sequence.append(self.no_timestamps)
        return tuple(sequence)

    @property
    def non_speech_tokens(self) -> tuple:
        """Sorted ids of the non-speech symbols (the "-1" entry of suppress_tokens)."""
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in NON_SPEECH_SYMBOLS + NON_SPEECH_MUSIC:
            for ids in (self.encode(symbol), self.encode(" " + symbol)):
                if len(ids) == 1 or symbol in NON_SPEECH_MUSIC:
                    result.add(ids[0])
        return tuple(sorted(result))

    def suppress_tokens(self, spec: Union[str, Sequence[int]] = "-1") -> tuple:
        """Sorted ids blocked during sampling, as PaddleX builds them.

        ``spec`` is a comma-separated string or a list of ids; -1 stands for ``non_speech_tokens``.
        <|startoftranscript|>, <|startofprev|>, <|startoflm|> and <|nospeech|> are always added.
        (Newer openai-whisper releases also add <|translate|> and <|transcribe|>; PaddleX does not.)
        """
        items = spec.split(",") if isinstance(spec, str) else spec
        ids = [int(t) for t in items if str(t).strip()]
        if -1 in ids:
            ids = [t for t in ids if t >= 0] + list(self.non_speech_tokens)
        ids += [self.sot, self.sot_prev, self.sot_lm, self.no_speech]
        return tuple(sorted(set(ids)))

    # ------------------------------------------------------------------ encode

    def encode(self, text: str) -> list:
        """Ids of a text; special-token spellings in the text are ordinary text."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: pair what pairs, replace the rest (as tiktoken)
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        ids = []
        for piece in pretokenize(text):
            ids.extend(self._encode_piece(piece.encode("utf-8")))
        return ids

    def _encode_piece(self, piece: bytes) -> tuple:
        """Ids of one pre-token (memoized)."""
        ids = self._memo.get(piece)
        if ids is None:
            if self.options.paddlex_lost_merge:
                symbols = _rule_merge(tuple(self._byte_to_char[b] for b in piece), self._merge_ranks)
                ids = tuple(self._vocab.get(s, self.eot) for s in symbols)  # unknown -> eot, as PaddleX
            else:
                ids = tuple(_rank_merge(piece, self._ranks))
            self._memo[piece] = ids
        return ids

    # ------------------------------------------------------------------ decode

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (special and timestamp tokens: their UTF-8 spelling)."""
        token = int(token)
        if 0 <= token < self.eot:
            return self._text_tokens[token]
        if token in self._special_text:
            return self._special_text[token].encode()
        if self.timestamp_begin <= token < self.n_vocab:
            return timestamp_text(token - self.timestamp_begin).encode()
        raise ValueError(f"token id {token} is outside the vocabulary (0..{self.n_vocab - 1})")

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids; timestamp ids (>= timestamp_begin) are dropped; [] gives ""."""
        return self._decode_run([int(t) for t in ids if int(t) < self.timestamp_begin])

    def decode_with_timestamps(self, ids: Iterable[int]) -> str:
        """Text of token ids with timestamps written in, e.g. "<|1.08|> Hello<|1.50|>"."""
        if not self.options.paddlex_cleanup:
            return b"".join(self.token_bytes(t) for t in ids).decode("utf-8", "replace")
        pieces, run = [], []
        for token in map(int, ids):
            if token >= self.timestamp_begin:
                pieces += [self._decode_run(run), self.token_bytes(token).decode()]
                run = []
            else:
                run.append(token)
        pieces.append(self._decode_run(run))
        return "".join(pieces)

    def _decode_run(self, ids: list) -> str:
        """Text of ids without timestamps, rendered per ``options.paddlex_cleanup``."""
        if not self.options.paddlex_cleanup:
            return b"".join(self.token_bytes(t) for t in ids).decode("utf-8", "replace")
        parts, chunk = [], []
        for token in ids:
            if token in self._special_text and token != self.eot:  # PaddleX's added tokens
                if chunk:
                    parts.append(b"".join(chunk).decode("utf-8", "replace"))
                    chunk = []
                parts.append(self._special_text[token])
            else:
                chunk.append(self.token_bytes(token))
        if chunk:
            parts.append(b"".join(chunk).decode("utf-8", "replace"))
        return clean_up_tokenization(" ".join(parts))

    # ------------------------------------------------------------------ words (word timestamps)

    def raw_text(self, ids: Iterable[int]) -> str:
        """The tokens' bytes joined and read as UTF-8 (invalid bytes become U+FFFD), specials and
        timestamps spelled out, without PaddleX's clean-up: the text tiktoken's decode gives."""
        return b"".join(self.token_bytes(t) for t in ids).decode("utf-8", "replace")

    def split_to_word_tokens(self, tokens: Sequence[int], language: Optional[str] = None) -> tuple:
        """Tokens cut into words -> (words [str], their tokens [[int]]), as openai-whisper cuts them for
        word timestamps: in NO_SPACE_LANGUAGES at every complete character, else at spaces and
        punctuation (``language`` is a code; None for English-only vocabularies)."""
        if language in NO_SPACE_LANGUAGES:
            return self._split_on_characters(tokens)
        words, word_tokens = [], []
        for piece, ids in zip(*self._split_on_characters(tokens)):
            starts_word = ids[0] >= self.eot or piece.startswith(" ") or piece.strip() in string.punctuation
            if starts_word or not words:
                words.append(piece)
                word_tokens.append(ids)
            else:
                words[-1] += piece
                word_tokens[-1].extend(ids)
        return words, word_tokens

    def _split_on_characters(self, tokens: Sequence[int]) -> tuple:
        """Tokens cut into the shortest runs that decode to whole characters -> (texts, token lists).

        A run ends at a token after which its text holds no U+FFFD, or only one that the whole
        text holds at that place too (bytes that are invalid anyway)."""
        full = self.raw_text(tokens)
        texts, runs, current, offset = [], [], [], 0
        for token in tokens:
            current.append(int(token))
            text = self.raw_text(current)
            bad = text.find("\ufffd")
            if bad < 0 or full[offset + bad] == "\ufffd":
                texts.append(text)
                runs.append(current)
                current = []
                offset += len(text)
        return texts, runs


def clean_up_tokenization(text: str) -> str:
    """PaddleX's clean-up of spaces before punctuation and English contractions."""
    for old, new in CLEANUP_REPLACEMENTS:
        text = text.replace(old, new)
    return text
