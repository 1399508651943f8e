"""Reader and writer for whisper.cpp's ggml model files (``ggml-base.bin``, ``ggml-tiny.en-q5_0.bin``).

Layout, every number little endian (i32 = int32, u32 = uint32, f32 = float32):

    u32 magic            0x67676d6c ("ggml" as an integer; the bytes on disk are "lmgg")
    i32 x 11 hparams     n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
                         n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
                         ftype = qntvr * 1000 + file type: 0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0,
                         8 q5_0, 9 q5_1 (qntvr, the quantisation version, is 2 in every quantised
                         file whisper.cpp writes today and 0 in its f16/f32 conversions)
    mel filters          i32 n_mel, i32 n_freq (201), then n_mel * n_freq f32, row-major [n_mel, n_freq]
    vocabulary           i32 n_tokens, then per token: u32 length, that many bytes. The tokens are
                         the text tokens in id order (OpenAI's tiktoken ranks): 50,256 for the
                         English-only vocabulary, 50,257 for the multilingual one (whose id 50256 is
                         the empty token); <|endoftext|> and the special tokens after it are implied.
                         Files converted from a Hugging Face vocab.json before whisper.cpp's PR 725
                         (early 2023; ggml-tiny.en.bin is 17 bytes longer for it) end the list with
                         <|endoftext|> itself, which the reader drops.
    tensors, to the end  i32 n_dims (1..4), i32 name_length, i32 type,
                         i32 ne[n_dims], name bytes, data
                         ``ne`` is ggml's order, fastest axis first: the NumPy shape reversed. The
                         data, with no padding, is prod(ne) / block_size blocks of type_size bytes.

Tensors keep OpenAI's names. whisper.cpp's converter squeezes every tensor and stores the conv
biases as [n, 1]; the reader undoes that. whisper.cpp fixes each tensor's type from ftype: biases,
layer norms, the conv biases and both positional embeddings are f32; conv weights are f16 (f32 in
an f32 file); every other matrix (the token embedding included) has the file's type.

Quantised types hold blocks of 32 values (ggml's ``ggml-common.h``), each with an f16 scale d and,
for the ``_1`` types, an f16 minimum m:

    q4_0  d, qs[16]          value j = (nibble_j - 8) * d
    q4_1  d, m, qs[16]       value j = nibble_j * d + m
    q5_0  d, qh[4], qs[16]   value j = ((nibble_j | bit_j << 4) - 16) * d
    q5_1  d, m, qh[4], qs[16]  value j = (nibble_j | bit_j << 4) * d + m
    q8_0  d, qs[32] (int8)   value j = qs[j] * d

where nibble_j is the low nibble of qs[j] for j < 16 and the high nibble of qs[j - 16] for j >= 16,
and bit_j is bit j of qh read as a little-endian u32. Dequantised tensors are float32, computed as
ggml computes them (the products q * d are exact in float32, so the one rounding is that of ``+ m``).

The embedded mel filters must be Whisper's Slaney filters (numwhisper computes its own, bit-equal
to OpenAI's ``mel_filters.npz``, and whisper.cpp uses the embedded ones): a file whose filters
differ by more than ``MEL_FILTER_TOLERANCE`` is refused, since numwhisper would hear the audio
differently from the model's own front end. ggml files carry no alignment heads: a file named after
a published model whose dims it has gets that model's (``names``), any other the decoder's second half.
"""

from __future__ import annotations

import functools
import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..dims import ModelDims
from ..errors import ModelFileError, printable
from ..languages import EOT_TEXT, N_TIMESTAMPS, n_languages, whisper_added_tokens
from ..mel import N_FFT, mel_filters
from .bpe_ranks import bytes_to_unicode, vocab_and_merges_from_ranks
from .checkpoint import Checkpoint, expected_shapes, make_metadata, validate_tensors
from .names import fallback_alignment_heads

GGML_MAGIC = 0x67676D6C
QNT_VERSION = 2              # ggml's GGML_QNT_VERSION: the block layouts below
QNT_VERSION_FACTOR = 1000    # ftype = qntvr * QNT_VERSION_FACTOR + file type
HPARAM_NAMES = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels")
MAX_NAME_BYTES = 256         # ggml's own limit is 64; whisper's longest name has 40
MAX_TOKEN_BYTES = 1024       # Whisper's longest token has 128 bytes
MAX_DIMS = 4
MAX_ELEMENTS = 2**31 - 1     # whisper.cpp counts a tensor's elements in an int32
MEL_FILTER_TOLERANCE = 1e-6  # largest accepted |embedded - Slaney| (the weights are at most 0.042)
BLOCK = 32                   # values per block of every quantised type read here


@dataclass(frozen=True)
class GgmlType:
    """One ggml tensor type: its name, values per block and bytes per block."""

    code: int
    name: str
    block_size: int
    type_size: int


GGML_TYPES = {t.code: t for t in (
    GgmlType(0, "f32", 1, 4), GgmlType(1, "f16", 1, 2),
    GgmlType(2, "q4_0", BLOCK, 18), GgmlType(3, "q4_1", BLOCK, 20),
    GgmlType(6, "q5_0", BLOCK, 22), GgmlType(7, "q5_1", BLOCK, 24),
    GgmlType(8, "q8_0", BLOCK, 34),
)}
TYPE_BY_NAME = {t.name: t for t in GGML_TYPES.values()}
# ggml types this reader does not dequantise, named for the error message.
OTHER_TYPE_NAMES = {
    4: "q4_2 (removed from ggml)", 5: "q4_3 (removed from ggml)", 9: "q8_1", 10: "q2_K", 11: "q3_K",
    12: "q4_K", 13: "q5_K", 14: "q6_K", 15: "q8_K", 16: "iq2_xxs", 17: "iq2_xs", 18: "iq3_xxs",
    19: "iq1_s", 20: "iq4_nl", 21: "iq3_s", 22: "iq2_s", 23: "iq4_xs", 24: "i8", 25: "i16", 26: "i32",
    27: "i64", 28: "f64", 29: "iq1_m", 30: "bf16", 34: "tq1_0", 35: "tq2_0",
}
# File types (the ftype hparam without the quantisation version) -> the type of the big matrices.
FILE_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1"}
FTYPE_BY_NAME = {name: code for code, name in FILE_TYPES.items()}
# Two-dimensional tensors whisper.cpp keeps in f32 whatever the file type.
F32_MATRICES = ("encoder.conv1.bias", "encoder.conv2.bias",
                "encoder.positional_embedding", "decoder.positional_embedding")
CONV_BIASES = ("encoder.conv1.bias", "encoder.conv2.bias")


# ---------------------------------------------------------------- bounded reads

class _Cursor:
    """Bounds-checked sequential reads over a buffer (a memory-mapped file)."""

    def __init__(self, data, where: str):
        self.data, self.pos, self.where = memoryview(data), 0, where

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.remaining:
            raise ModelFileError(f"{self.where}: file ends inside {what} (truncated?)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def ints(self, n: int, what: str, fmt: str = "i") -> tuple:
        return struct.unpack(f"<{n}{fmt}", self.take(4 * n, what))

    def int(self, what: str, fmt: str = "i") -> int:
        return self.ints(1, what, fmt)[0]

    def count(self, what: str, item_bytes: int) -> int:
        """A count of items of at least ``item_bytes`` each, checked against the bytes left."""
        n = self.int(what)
        if n < 0 or n * item_bytes > self.remaining:
            raise ModelFileError(f"{self.where}: {what} is {n}, more than the {self.remaining} bytes left hold")
        return n


# ---------------------------------------------------------------- the file's parts

@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies in a ggml file."""

    name: str
    type_code: int
    ne: tuple            # ggml order: fastest axis first
    header_offset: int   # where its n_dims field starts
    data_offset: int
    n_bytes: int

    @property
    def shape(self) -> tuple:
        """The NumPy shape (``ne`` reversed)."""
        return tuple(reversed(self.ne))


@dataclass(frozen=True)
class GgmlLayout:
    """A parsed ggml file: hparams, filters, vocabulary tokens, and the tensor index (no tensor data)."""

    hparams: dict        # HPARAM_NAMES -> int
    ftype: int           # the file type (ftype % 1000)
    qntvr: int           # the quantisation version (ftype // 1000)
    filters: np.ndarray  # [n_mel, n_freq] float32
    tokens: tuple        # bytes of each text token, in id order
    tensors: tuple       # TensorEntry in file order


def _read_hparams(cur: _Cursor) -> tuple:
    """(hparams dict, file type, qntvr) after checking the magic."""
    if cur.remaining < 4 or cur.int("the magic", "I") != GGML_MAGIC:
        raise ModelFileError(f"{cur.where}: no ggml magic; not a whisper.cpp model file")
    values = cur.ints(len(HPARAM_NAMES) + 1, "the hyper-parameters")
    ftype = values[-1]
    if ftype < 0:
        raise ModelFileError(f"{cur.where}: ftype {ftype} is negative")
    return dict(zip(HPARAM_NAMES, values[:-1])), ftype % QNT_VERSION_FACTOR, ftype // QNT_VERSION_FACTOR


def _read_filters(cur: _Cursor) -> np.ndarray:
    """The embedded mel filterbank, float32 [n_mel, n_freq]."""
    n_mel, n_freq = cur.ints(2, "the mel filter header")
    if n_mel <= 0 or n_freq <= 0 or n_mel * n_freq * 4 > cur.remaining:
        raise ModelFileError(f"{cur.where}: mel filters of [{n_mel}, {n_freq}] do not fit the file (truncated?)")
    raw = cur.take(4 * n_mel * n_freq, "the mel filters")
    return np.frombuffer(raw, dtype="<f4").reshape(n_mel, n_freq).astype(np.float32)  # [n_mel, n_freq]


def _read_tokens(cur: _Cursor) -> tuple:
    """The embedded vocabulary: each token's bytes, in id order."""
    n_tokens = cur.count("the vocabulary size", 4)
    tokens = []
    for i in range(n_tokens):
        length = cur.int(f"token {i}", "I")
        if length > MAX_TOKEN_BYTES:
            raise ModelFileError(f"{cur.where}: token {i} has {length} bytes (at most {MAX_TOKEN_BYTES})")
        tokens.append(bytes(cur.take(length, f"token {i}")))
    return tuple(tokens)


def _tensor_type(code: int, name: str, where: str) -> GgmlType:
    if code in GGML_TYPES:
        return GGML_TYPES[code]
    known = OTHER_TYPE_NAMES.get(code)
    what = f"ggml type {known} ({code}), which numwhisper does not read" if known else f"unknown ggml type {code}"
    raise ModelFileError(f"{where}: tensor {name} has {what}; "
                         f"convert the model to one of {', '.join(TYPE_BY_NAME)} with whisper.cpp")


def _tensor_size(ne: tuple, ggml_type: GgmlType, name: str, where: str) -> int:
    """Bytes of a tensor's data, refusing dims whose element count whisper.cpp would overflow."""
    n_elements = 1
    for n in ne:
        n_elements *= n
    if n_elements > MAX_ELEMENTS:
        raise ModelFileError(f"{where}: tensor {name} has dims {list(ne)}: {n_elements} elements overflow "
                             f"whisper.cpp's int32 count")
    if ne[0] % ggml_type.block_size:
        raise ModelFileError(f"{where}: tensor {name} has rows of {ne[0]} values, not whole "
                             f"{ggml_type.name} blocks of {ggml_type.block_size}")
    return n_elements // ggml_type.block_size * ggml_type.type_size


def _read_tensor_entry(cur: _Cursor) -> TensorEntry:
    """One tensor header; the data is skipped (its size checked against the file)."""
    start = cur.pos
    n_dims, name_length, type_code = cur.ints(3, "a tensor header")
    if not 1 <= n_dims <= MAX_DIMS:
        raise ModelFileError(f"{cur.where}: a tensor at byte {start} has {n_dims} dims (1..{MAX_DIMS}); corrupt file")
    if not 0 < name_length <= MAX_NAME_BYTES:
        raise ModelFileError(f"{cur.where}: a tensor at byte {start} has a name of {name_length} bytes; corrupt file")
    ne = cur.ints(n_dims, "a tensor header")
    raw_name = bytes(cur.take(name_length, "a tensor name"))
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{cur.where}: a tensor at byte {start} has a name that is not text; corrupt file") from None
    name = printable(name)
    if min(ne) <= 0:
        raise ModelFileError(f"{cur.where}: tensor {name} has dims {list(ne)}; each must be positive")
    ggml_type = _tensor_type(type_code, name, cur.where)
    n_bytes = _tensor_size(ne, ggml_type, name, cur.where)
    if n_bytes > cur.remaining:
        raise ModelFileError(f"{cur.where}: tensor {name} of dims {list(ne)} needs {n_bytes} bytes, "
                             f"only {cur.remaining} are left (truncated?)")
    data_offset = cur.pos
    cur.take(n_bytes, f"tensor {name}")
    return TensorEntry(name, type_code, tuple(ne), start, data_offset, n_bytes)


def parse_layout(data, where: str) -> GgmlLayout:
    """Parse a whole ggml file's bytes (or memory map) into its layout; no tensor data is copied."""
    cur = _Cursor(data, where)
    hparams, ftype, qntvr = _read_hparams(cur)
    filters = _read_filters(cur)
    tokens = _read_tokens(cur)
    tensors, seen = [], set()
    while cur.remaining:
        entry = _read_tensor_entry(cur)
        if entry.name in seen:
            raise ModelFileError(f"{where}: tensor {entry.name} appears twice")
        seen.add(entry.name)
        tensors.append(entry)
    return GgmlLayout(hparams, ftype, qntvr, filters, tokens, tuple(tensors))


def scan_ggml(path) -> GgmlLayout:
    """The layout of the ggml file at ``path`` (hparams, filters, tokens, tensor index)."""
    path, where = Path(path), printable(path)
    with _mapped(path) as data:
        return parse_layout(data, where)


class _mapped:
    """Context manager: a file's bytes, memory-mapped read-only (an empty file gives b"")."""

    def __init__(self, path: Path):
        self.path, self.file, self.map = path, None, None

    def __enter__(self):
        if not self.path.is_file():
            raise ModelFileError(f"{printable(self.path)}: no such file")
        self.file = open(self.path, "rb")
        if self.path.stat().st_size == 0:
            return b""
        self.map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        return self.map

    def __exit__(self, *exc):
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:  # a view is still alive (only when an error is in flight); let GC close it
                pass
        self.file.close()
        return False


# ---------------------------------------------------------------- dequantisation

def _f16(blocks: np.ndarray, start: int) -> np.ndarray:
    """The f16 at byte ``start`` of every block, as float32 [n_blocks, 1]."""
    return blocks[:, start:start + 2].copy().view("<f2").astype(np.float32)  # [n_blocks, 1]


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """Values 0..15 of the 32 elements of each block from qs [n_blocks, 16]: low nibbles first."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)  # [n_blocks, 32]


def _fifth_bits(qh: np.ndarray) -> np.ndarray:
    """Bit j of each block's little-endian u32 qh [n_blocks, 4], moved to 0x10, for j = 0..31."""
    bits = np.unpackbits(qh, axis=1, bitorder="little")  # [n_blocks, 32], element j = bit j
    return bits << 4  # [n_blocks, 32]


def dequantize(raw, type_name: str) -> np.ndarray:
    """Float32 values [n_blocks * 32] of quantised blocks, as ggml's dequantize_row_* computes them."""
    layout = TYPE_BY_NAME[type_name]
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, layout.type_size)  # [n_blocks, type_size]
    d = _f16(blocks, 0)  # [n_blocks, 1]
    if type_name == "q8_0":
        q = blocks[:, 2:].view(np.int8)  # [n_blocks, 32]
        return (q.astype(np.float32) * d).reshape(-1)
    if type_name == "q4_0":
        q = _nibbles(blocks[:, 2:18]).astype(np.float32) - 8  # [n_blocks, 32]
        return (q * d).reshape(-1)
    if type_name == "q5_0":
        q = (_nibbles(blocks[:, 6:22]) | _fifth_bits(blocks[:, 2:6])).astype(np.float32) - 16  # [n_blocks, 32]
        return (q * d).reshape(-1)
    m = _f16(blocks, 2)  # [n_blocks, 1]
    if type_name == "q4_1":
        q = _nibbles(blocks[:, 4:20]).astype(np.float32)  # [n_blocks, 32]
    elif type_name == "q5_1":
        q = (_nibbles(blocks[:, 8:24]) | _fifth_bits(blocks[:, 4:8])).astype(np.float32)  # [n_blocks, 32]
    else:
        raise ValueError(f"not a quantised type: {type_name}")
    return (q * d + m).reshape(-1)


def _tensor_values(raw, entry: TensorEntry) -> np.ndarray:
    """A tensor's values in its NumPy shape: f32 and f16 keep their dtype, quantised types give float32."""
    type_name = GGML_TYPES[entry.type_code].name
    if type_name in ("f32", "f16"):
        values = np.frombuffer(raw, dtype="<f4" if type_name == "f32" else "<f2")
        values = values.astype(values.dtype.newbyteorder("="))  # an aligned copy, native order
    else:
        values = dequantize(raw, type_name)
    return values.reshape(entry.shape)


def _squeezed(shape) -> tuple:
    return tuple(n for n in shape if n != 1)


def _openai_shape(entry: TensorEntry, expected: tuple, where: str) -> tuple:
    """The OpenAI shape of a stored tensor: the same dims once size-1 axes are dropped (the converter
    squeezes every tensor and stores the conv biases as [n, 1]); anything else is a mismatch."""
    if entry.shape == expected or _squeezed(entry.shape) == _squeezed(expected):
        return expected
    raise ModelFileError(f"{where}: tensor {entry.name} has shape {list(entry.shape)} "
                         f"(ggml dims {list(entry.ne)}), expected {list(expected)}")


# ---------------------------------------------------------------- reading

def _dims(layout: GgmlLayout, where: str) -> ModelDims:
    return ModelDims.from_dict(layout.hparams, where=f"{where}: hparams")


def _check_filters(filters: np.ndarray, dims: ModelDims, where: str) -> None:
    """The embedded filterbank must be Whisper's Slaney one for ``n_mels`` bins (see the module doc)."""
    n_freq = N_FFT // 2 + 1
    if filters.shape != (dims.n_mels, n_freq):
        raise ModelFileError(f"{where}: embedded mel filters are {list(filters.shape)}, "
                             f"expected [{dims.n_mels}, {n_freq}] for n_mels {dims.n_mels}")
    ours = mel_filters(dims.n_mels)  # [n_mels, n_freq]
    with np.errstate(invalid="ignore"):
        diff = float(np.max(np.abs(filters.astype(np.float64) - ours)))
    if not diff <= MEL_FILTER_TOLERANCE:
        raise ModelFileError(f"{where}: embedded mel filters differ from Whisper's by up to {diff:.3g}; "
                             f"numwhisper computes Whisper's own and cannot reproduce this model's front end")


@functools.lru_cache(maxsize=4)
def _tokenizer_from_tokens(tokens: tuple) -> tuple:
    """(vocab, merges) of the byte-level BPE whose ranks are the tokens' positions (cached: a second
    read of the same model skips the second or so this takes)."""
    ranks = {token: rank for rank, token in enumerate(tokens)}
    return vocab_and_merges_from_ranks(ranks)


def _tokenizer(tokens: tuple, dims: ModelDims, where: str) -> tuple:
    """(vocab, merges, added_tokens) from the embedded tokens; the special tokens follow them."""
    if tokens and tokens[-1] == EOT_TEXT.encode("ascii"):
        tokens = tokens[:-1]  # an early conversion listed <|endoftext|> itself (see the module doc)
    seen = {}
    for i, token in enumerate(tokens):
        if seen.setdefault(token, i) != i:
            raise ModelFileError(f"{where}: embedded vocabulary repeats token {seen[token]} as token {i} ({token[:40]!r})")
    eot = len(tokens)
    try:
        added = whisper_added_tokens(eot, n_languages(dims.n_vocab))
    except ValueError:
        added = None
    if added is None or max(added.values()) + 1 + N_TIMESTAMPS != dims.n_vocab:
        raise ModelFileError(f"{where}: embedded vocabulary has {len(tokens)} tokens, which with Whisper's special "
                             f"and timestamp tokens does not make n_vocab {dims.n_vocab}")
    try:
        vocab, merges = _tokenizer_from_tokens(tokens)
    except ModelFileError as err:
        raise ModelFileError(f"{where}: embedded vocabulary: {err}") from None
    return vocab, merges, added


def _check_quantisation_version(layout: GgmlLayout, where: str) -> None:
    quantised = [e for e in layout.tensors if GGML_TYPES[e.type_code].block_size > 1]
    if quantised and layout.qntvr != QNT_VERSION:
        raise ModelFileError(f"{where}: quantisation version {layout.qntvr} (tensor {quantised[0].name}); "
                             f"numwhisper reads version {QNT_VERSION}, the block layout of whisper.cpp since "
                             f"mid-2023: quantise the model again with a current whisper.cpp")


def _read_tensors(data, layout: GgmlLayout, dims: ModelDims, where: str) -> dict:
    """OpenAI-named tensors in OpenAI shapes from the file's bytes."""
    shapes = expected_shapes(dims)
    tensors = {}
    for entry in layout.tensors:
        if entry.name not in shapes:
            raise ModelFileError(f"{where}: unknown tensor {entry.name}; not a Whisper model")
        shape = _openai_shape(entry, shapes[entry.name], where)
        raw = data[entry.data_offset:entry.data_offset + entry.n_bytes]
        tensors[entry.name] = _tensor_values(raw, entry).reshape(shape)
    return tensors


def read_ggml(path) -> Checkpoint:
    """A whisper.cpp ggml model file as a canonical checkpoint.

    f32 and f16 tensors keep their dtype (so a whisper.cpp f16 file gives float16 matrices and
    float32 biases, exactly as stored); quantised tensors are dequantised to float32.
    """
    path, where = Path(path), printable(path)
    with _mapped(path) as data:
        layout = parse_layout(data, where)
        dims = _dims(layout, where)
        _check_quantisation_version(layout, where)
        tensors = _read_tensors(data, layout, dims, where)
    validate_tensors(tensors, dims, where)
    _check_filters(layout.filters, dims, where)
    vocab, merges, added = _tokenizer(layout.tokens, dims, where)
    kind = FILE_TYPES.get(layout.ftype, f"ftype {layout.ftype}")
    source = f"whisper.cpp ggml {path.name} ({kind})"
    heads = fallback_alignment_heads(path.name, dims)
    metadata = make_metadata(dims, heads, vocab, merges, added, source)
    return Checkpoint(tensors=tensors, dims=dims, metadata=metadata)


# ---------------------------------------------------------------- quantisation (ggml's reference quantisers)

def _fp16(values: np.ndarray) -> np.ndarray:
    """float32 -> the f16 bytes ggml stores (round to nearest even), [n_blocks, 2] uint8."""
    return values.astype("<f2").reshape(-1, 1).view(np.uint8)  # [n_blocks, 2]


def _reciprocal(d: np.ndarray) -> np.ndarray:
    """ggml's ``id = d ? 1.0f/d : 0.0f`` in float32."""
    out = np.zeros_like(d)
    np.divide(np.float32(1), d, out=out, where=d != 0)
    return out


def _truncate(x: np.ndarray) -> np.ndarray:
    """C's float -> integer conversion (toward zero), as int32."""
    return np.trunc(x).astype(np.int32)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's roundf (halves away from zero), exactly, as int32."""
    whole = np.trunc(x)
    return (whole + (np.abs(x - whole) >= 0.5) * np.sign(x)).astype(np.int32)


def _signed_absmax(x: np.ndarray) -> np.ndarray:
    """Per block, the first value of largest magnitude (+0.0 when all are zero), float32 [n_blocks]."""
    first = np.argmax(np.abs(x), axis=1)  # [n_blocks]
    value = x[np.arange(len(x)), first]  # [n_blocks]
    return np.where(np.abs(value) > 0, value, np.float32(0)).astype(np.float32)


def _first_extreme(x: np.ndarray, pick) -> np.ndarray:
    """Per block, the first minimum (pick = np.argmin) or maximum (np.argmax), float32 [n_blocks]."""
    return x[np.arange(len(x)), pick(x, axis=1)]  # [n_blocks]


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """[n_blocks, 32] values (low 4 bits used) -> qs [n_blocks, 16]: element j low, element j+16 high."""
    return ((q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)).astype(np.uint8)  # [n_blocks, 16]


def _pack_fifth_bits(q: np.ndarray) -> np.ndarray:
    """[n_blocks, 32] 5-bit values -> qh [n_blocks, 4]: bit j of the little-endian u32 = bit 4 of element j."""
    bits = ((q >> 4) & 1).astype(np.uint8)  # [n_blocks, 32]
    return np.packbits(bits, axis=1, bitorder="little")  # [n_blocks, 4]


def _quantize_symmetric(x: np.ndarray, levels: int) -> tuple:
    """q4_0 (levels 16) / q5_0 (32): d = max / -(levels/2) from the signed absmax; q = min(levels-1,
    trunc(x / d + levels/2 + 0.5)). Returns (d float32 [n_blocks], q int32 [n_blocks, 32])."""
    half = np.float32(levels // 2)
    d = (_signed_absmax(x) / -half).astype(np.float32)  # [n_blocks]
    scaled = x * _reciprocal(d)[:, None]  # [n_blocks, 32]
    q = np.minimum(levels - 1, _truncate(scaled + (half + np.float32(0.5))))  # [n_blocks, 32]
    return d, q


def _quantize_affine(x: np.ndarray, levels: int, clamp: bool) -> tuple:
    """q4_1 (levels 16, clamped) / q5_1 (32): d = (max - min) / (levels - 1), q = trunc((x - min) / d + 0.5).
    Returns (d, min, q)."""
    low = _first_extreme(x, np.argmin)  # [n_blocks]
    high = _first_extreme(x, np.argmax)  # [n_blocks]
    d = ((high - low) / np.float32(levels - 1)).astype(np.float32)  # [n_blocks]
    scaled = (x - low[:, None]) * _reciprocal(d)[:, None]  # [n_blocks, 32]
    q = _truncate(scaled + np.float32(0.5))  # [n_blocks, 32]
    if clamp:
        q = np.minimum(levels - 1, q)
    return d, low, q


def quantize(values: np.ndarray, type_name: str) -> bytes:
    """ggml's reference quantiser (quantize_row_*_ref) over float32 values whose count is a multiple of 32."""
    x = np.asarray(values, dtype=np.float32).reshape(-1, BLOCK)  # [n_blocks, 32]
    if type_name == "q8_0":
        d = (np.max(np.abs(x), axis=1) / np.float32(127)).astype(np.float32)  # [n_blocks]
        q = _round_half_away(x * _reciprocal(d)[:, None]).astype(np.int8)  # [n_blocks, 32]
        parts = [_fp16(d), q.view(np.uint8)]
    elif type_name == "q4_0":
        d, q = _quantize_symmetric(x, 16)
        parts = [_fp16(d), _pack_nibbles(q)]
    elif type_name == "q5_0":
        d, q = _quantize_symmetric(x, 32)
        parts = [_fp16(d), _pack_fifth_bits(q), _pack_nibbles(q)]
    elif type_name == "q4_1":
        d, low, q = _quantize_affine(x, 16, clamp=True)
        parts = [_fp16(d), _fp16(low), _pack_nibbles(q)]
    elif type_name == "q5_1":
        d, low, q = _quantize_affine(x, 32, clamp=False)
        parts = [_fp16(d), _fp16(low), _pack_fifth_bits(q), _pack_nibbles(q)]
    else:
        raise ValueError(f"not a quantised type: {type_name}")
    return np.concatenate(parts, axis=1).tobytes()  # [n_blocks, type_size]


# ---------------------------------------------------------------- writing

def _stored_type(name: str, ndim: int, file_type: str) -> str:
    """The type whisper.cpp expects for tensor ``name`` (OpenAI ``ndim``) in a file of ``file_type``."""
    if file_type == "f32" or ndim == 1 or name in F32_MATRICES:
        return "f32"
    if ndim == 3:  # conv weights
        return "f16"
    return file_type


def _stored_array(name: str, tensor: np.ndarray) -> np.ndarray:
    """A tensor in the shape the converter stores (conv biases [n, 1])."""
    return tensor.reshape(-1, 1) if name in CONV_BIASES else tensor


def _tensor_bytes(name: str, array: np.ndarray, type_name: str, where: str) -> bytes:
    if type_name in ("f32", "f16"):
        return np.ascontiguousarray(array, dtype="<f4" if type_name == "f32" else "<f2").tobytes()
    if array.shape[-1] % BLOCK:
        raise ModelFileError(f"{where}: tensor {name} has rows of {array.shape[-1]} values; "
                             f"{type_name} needs a multiple of {BLOCK}")
    values = np.asarray(array, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise ModelFileError(f"{where}: tensor {name} has non-finite values, which {type_name} cannot hold")
    return quantize(values, type_name)


def _tensor_record(name: str, array: np.ndarray, type_name: str, where: str) -> bytes:
    """Header and data of one tensor."""
    encoded = name.encode("utf-8")
    ne = tuple(reversed(array.shape))
    header = struct.pack(f"<3i{len(ne)}i", len(ne), len(encoded), TYPE_BY_NAME[type_name].code, *ne)
    return header + encoded + _tensor_bytes(name, array, type_name, where)


def _vocabulary_tokens(metadata: dict, where: str) -> list:
    """The text tokens' bytes in id order (ids below <|endoftext|>), from the GPT-2-alphabet vocab."""
    vocab = json.loads(metadata["tokenizer.vocab"])
    eot = json.loads(metadata["tokenizer.added_tokens"]).get(EOT_TEXT)
    if eot is None:
        raise ModelFileError(f"{where}: the tokenizer has no {EOT_TEXT}")
    by_id = {i: token for token, i in vocab.items() if i < eot}
    if sorted(by_id) != list(range(eot)):
        raise ModelFileError(f"{where}: the vocabulary's ids below {EOT_TEXT} ({eot}) are not 0..{eot - 1}")
    decode = {char: byte for byte, char in bytes_to_unicode().items()}
    try:
        return [bytes(decode[c] for c in by_id[i]) for i in range(eot)]
    except KeyError as err:
        raise ModelFileError(f"{where}: vocabulary character {err} is not in GPT-2's byte alphabet") from None


def _header_bytes(dims: ModelDims, ftype: int, tokens: list) -> bytes:
    """Magic, hparams, mel filters and vocabulary."""
    hparams = [getattr(dims, name) for name in HPARAM_NAMES] + [ftype]
    filters = mel_filters(dims.n_mels)  # [n_mels, 201]
    parts = [struct.pack("<I11i", GGML_MAGIC, *hparams), struct.pack("<2i", *filters.shape),
             filters.astype("<f4").tobytes(), struct.pack("<i", len(tokens))]
    parts += [struct.pack("<I", len(t)) + t for t in tokens]
    return b"".join(parts)


def write_ggml(checkpoint: Checkpoint, path, ftype: str = "f16") -> None:
    """Write a whisper.cpp model file (atomically) of file type ``ftype``: f32, f16, q8_0, q5_0, q5_1,
    q4_0 or q4_1.

    Each tensor gets the type whisper.cpp expects (see the module doc); quantised matrices use
    ggml's round-to-nearest reference quantisers, and the ftype field carries quantisation version
    2 as whisper.cpp's quantize tool writes it.
    """
    if ftype not in FTYPE_BY_NAME:
        raise ValueError(f"ftype must be one of {', '.join(FTYPE_BY_NAME)}, not {ftype!r}")
    where = printable(path)
    dims = checkpoint.dims
    validate_tensors(checkpoint.tensors, dims, where)
    code = FTYPE_BY_NAME[ftype]
    stored_ftype = code if ftype in ("f32", "f16") else QNT_VERSION * QNT_VERSION_FACTOR + code
    header = _header_bytes(dims, stored_ftype, _vocabulary_tokens(checkpoint.metadata, where))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(header)
            for name in expected_shapes(dims):
                tensor = np.asarray(checkpoint.tensors[name])
                type_name = _stored_type(name, tensor.ndim, ftype)
                f.write(_tensor_record(name, _stored_array(name, tensor), type_name, where))

    atomic_write(Path(path), write)
