"""Whisper's vocabulary from a tiktoken rank table: the byte-level vocab and the ordered merge rules.

openai-whisper ships its two vocabularies as ``assets/gpt2.tiktoken`` (English-only) and
``assets/multilingual.tiktoken``. Such a file is ASCII text, one token a line:

    <base64 of the token's bytes> <space> <rank in decimal> <newline>

The ranks are 0, 1, 2, ... in file order; a token's rank is its id and also the order in which byte
pair encoding forms it. The first 256 ranks are the single bytes. (The multilingual file's last line
is ``= 50256``: its rank 50256 is the empty token.)

numwhisper's model file keeps the vocabulary as Hugging Face does: each token spelled in GPT-2's
byte-to-unicode alphabet, mapped to its id, plus ``<|endoftext|>`` right after the last rank; and the
merge rules as "left right" strings in rank order. A token's rule is found by running byte pair
encoding on the token's own bytes with only the lower-ranked tokens: what remains are exactly two
parts, the left and right of its rule.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from ..errors import ModelFileError, printable
from ..languages import EOT_TEXT

MAX_TIKTOKEN_BYTES = 64 << 20      # openai-whisper's files are under 1 MB; the largest tiktoken files ~4 MB
MAX_TOKEN_BYTES = 1024             # the longest Whisper token has 128 bytes (gpt2), 33 (multilingual)
MAX_RANKS = 1 << 20                # a vocabulary of a million tokens is far beyond any real one


# ---------------------------------------------------------------- GPT-2's byte alphabet

def bytes_to_unicode() -> dict:
    """GPT-2's byte -> character table, in which vocabulary files spell tokens: the printable
    Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards in byte order."""
    printable_bytes = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in printable_bytes}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(0x100 + i) for i, b in enumerate(others)})
    return table


# ---------------------------------------------------------------- reading a .tiktoken file

def read_tiktoken(path) -> dict:
    """{token bytes: rank} from a ``.tiktoken`` file; ModelFileError for anything malformed.

    The ranks must be 0..n-1 (each once) and the tokens distinct, since the rank is the token id
    and an id without a token would leave a hole in the vocabulary.
    """
    path = Path(path)
    where = printable(path)
    if not path.is_file():
        raise ModelFileError(f"{where}: no such file")
    size = path.stat().st_size
    if size > MAX_TIKTOKEN_BYTES:
        raise ModelFileError(f"{where}: {size} bytes, more than a tiktoken vocabulary ({MAX_TIKTOKEN_BYTES}) holds")
    with open(path, "rb") as f:
        data = f.read(MAX_TIKTOKEN_BYTES + 1)
    ranks = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        token, rank = _parse_line(line, f"{where}: line {number}")
        if token in ranks:
            raise ModelFileError(f"{where}: line {number}: token {token!r} is listed twice")
        ranks[token] = rank
        if len(ranks) > MAX_RANKS:
            raise ModelFileError(f"{where}: more than {MAX_RANKS} tokens")
    check_ranks(ranks, where)
    return ranks


def _parse_line(line: bytes, where: str) -> tuple:
    """(token bytes, rank) from one ``base64 rank`` line."""
    fields = line.split()
    if len(fields) != 2:
        raise ModelFileError(f"{where}: expected '<base64 token> <rank>', got {len(fields)} fields; not a tiktoken file")
    encoded, rank_text = fields
    try:
        # the multilingual file writes its empty token as a lone "=", which tiktoken reads as b""
        token = b"" if encoded == b"=" else base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ModelFileError(f"{where}: the token is not base64; not a tiktoken file") from None
    if len(token) > MAX_TOKEN_BYTES:
        raise ModelFileError(f"{where}: a token of {len(token)} bytes (at most {MAX_TOKEN_BYTES})")
    if not rank_text.isdigit() or len(rank_text) > 9:
        raise ModelFileError(f"{where}: rank {rank_text[:20]!r} is not a non-negative integer")
    return token, int(rank_text)


def check_ranks(ranks: dict, where: str) -> None:
    """The ranks must be exactly 0..n-1 and the 256 single bytes must all be tokens."""
    seen = sorted(ranks.values())
    if seen != list(range(len(seen))):
        gap = next(i for i, r in enumerate(seen) if r != i)
        raise ModelFileError(f"{where}: ranks are not 0..{len(seen) - 1} (rank {gap} is missing or repeated)")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ModelFileError(f"{where}: the single byte {missing[0]:#04x} is not a token ({len(missing)} missing)")


# ---------------------------------------------------------------- ranks -> vocab and merges

def vocab_and_merges_from_ranks(ranks: dict) -> tuple:
    """(vocab, merges) in the model file's form from {token bytes: rank}.

    vocab: {token in GPT-2's byte-to-unicode alphabet: id}, the ranks as ids, plus
    ``<|endoftext|>`` with the id after the last rank (where Whisper puts it).
    merges: "left right" rules, one per token of two or more bytes, in rank order. Raises
    ModelFileError when a token cannot be formed from two lower-ranked tokens.
    """
    check_ranks(ranks, "tiktoken ranks")
    alphabet = bytes_to_unicode()
    spell = {token: "".join(alphabet[b] for b in token) for token in ranks}
    vocab = {spell[token]: rank for token, rank in sorted(ranks.items(), key=lambda item: item[1])}
    vocab[EOT_TEXT] = len(ranks)
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        left, right = merge_rule(token, rank, ranks)
        merges.append(f"{spell[left]} {spell[right]}")
    return vocab, merges


def merge_rule(token: bytes, rank: int, ranks: dict) -> tuple:
    """(left, right) bytes whose merge forms ``token``: byte pair encoding of ``token`` with the
    tokens ranked below ``rank`` (lowest-ranked adjacent pair first) must end in two parts."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, best_i = rank, -1
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1])
            if pair_rank is not None and pair_rank < best:
                best, best_i = pair_rank, i
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    if len(parts) != 2 or max(ranks[parts[0]], ranks[parts[1]]) >= rank:
        raise ModelFileError(f"tiktoken ranks: token {token!r} (rank {rank}) is not formed by merging "
                             f"two lower-ranked tokens; not a byte pair encoding vocabulary")
    return parts[0], parts[1]
