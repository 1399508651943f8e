"""Reader for CTranslate2 Whisper directories (``model.bin`` + ``config.json`` + ``tokenizer.json``),
of any size and any of CTranslate2's quantisations.

``model.bin`` layout (little endian), binary versions 4 to 6 (CTranslate2 reads these three alike;
versions 1-3 stored an item size instead of a dtype id and are refused):

    u32 binary_version
    str spec_name                      (str = u16 byte length, bytes ending in NUL)
    u32 spec_revision
    u32 n_variables, then per variable:
        str name, u8 rank, u32[rank] shape, u8 dtype, u32 n_bytes, n_bytes of data
    u32 n_aliases, then per alias: str alias_name, str variable_name

dtype ids follow CTranslate2's ``DataType`` enum: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16,
5 bfloat16 (the upper 16 bits of a float32). Scalars (``num_heads``, flags) are int8/int16 of rank 0.

What ``quantization=`` writes (``ctranslate2.specs.model_spec``). The quantised variables are those
whose name ends in ``weight`` (linear, conv and embedding weights; not norms, biases or position
encodings):

    float32, float16, bfloat16    every float array in that type
    int8, int8_float32,           weight q int8 with ``<name>_scale``, float32 of shape [rows]: one
    int8_float16, int8_bfloat16   scale s per leading-axis row (a conv [out, in, k] is scaled as
                                  [out, in * k]), s = 127 / max|row| (1 for an all-zero row, at most
                                  float32's max) and q = rint(w * s); the other float arrays become
                                  float32 / float16 / bfloat16 as the suffix says, and stay as they
                                  were under plain int8 (float16 when converted from float16)
    int16                         weight q int16 with a scalar float32 ``<name>_scale``
                                  s = 2**10 / max|w| over the whole tensor; other arrays float32

CTranslate2 turns a quantised weight back into floats as ``float(q) * (1 / s)`` in float32 (its CPU
``Dequantize``); this reader does exactly that, consumes the scales, widens bfloat16 to float32, and,
when a file holds any quantised or bfloat16 weight, widens every float array to float32 (exactly) so
the model has one dtype. float16 and float32 files keep their dtype. An alias (a variable equal to an
earlier one, such as the output projection tied to the token embedding) shares its target's scale.

A folder holding only ``vocabulary.json``/``vocabulary.txt`` (what CTranslate2's converter writes
unless asked to copy ``tokenizer.json``) cannot give the tokenizer: those list the tokens but not
the BPE merges that encoding prompts needs, so ``tokenizer.json`` is required.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .checkpoint import Checkpoint, bfloat16_to_float32, read_json
from .convert import ct2_to_checkpoint

# dtype id -> (CTranslate2's name, the numpy type its bytes are read as; bfloat16 as raw bit patterns)
CT2_DTYPES = {
    0: ("float32", np.float32),
    1: ("int8", np.int8),
    2: ("int16", np.int16),
    3: ("int32", np.int32),
    4: ("float16", np.float16),
    5: ("bfloat16", np.uint16),
}
SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
QUANTIZED_DTYPES = ("int8", "int16")
SCALE_SUFFIX = "_scale"
ZERO_SUFFIX = "_zero"  # AWQ's int4 zero points; CTranslate2 never writes them for Whisper
TOKENIZER_FILE = "tokenizer.json"
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")


@dataclass(frozen=True)
class StoredVariable:
    """One variable as ``model.bin`` holds it: CTranslate2's dtype name and the array read from the
    bytes (bfloat16 kept as its uint16 bit patterns)."""

    dtype: str
    array: np.ndarray


# ---------------------------------------------------------------- bounded reads

class _Reader:
    """Bounds-checked sequential reads over a bytes-like buffer."""

    def __init__(self, data, where: str):
        self.data, self.pos, self.where = memoryview(data), 0, where

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.data):
            raise ModelFileError(f"{self.where}: file ends inside {what} (truncated?)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def string(self, what: str) -> str:
        (n,) = self.unpack("H", what)
        raw = bytes(self.take(n, what))
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(f"{self.where}: {what} is not text; not a CTranslate2 model") from None


def _read_variable(r: _Reader, where: str) -> tuple:
    """(name, StoredVariable) of the next variable record; its size is checked before any copy."""
    name = r.string("a variable name")
    (rank,) = r.unpack("B", f"variable {name}")
    shape = r.unpack(f"{rank}I", f"variable {name}")
    (dtype_id,) = r.unpack("B", f"variable {name}")
    (n_bytes,) = r.unpack("I", f"variable {name}")
    if dtype_id not in CT2_DTYPES:
        raise ModelFileError(f"{where}: variable {name} has unknown dtype id {dtype_id}")
    dtype_name, storage = CT2_DTYPES[dtype_id]
    item = np.dtype(storage).newbyteorder("<")
    if n_bytes != math.prod(shape) * item.itemsize:
        raise ModelFileError(f"{where}: variable {name} has {n_bytes} bytes for {dtype_name} shape {list(shape)}")
    raw = r.take(n_bytes, f"variable {name}")
    array = np.frombuffer(raw, dtype=item).reshape(shape)  # [*shape], a view of the file
    return name, StoredVariable(dtype_name, array.astype(item.newbyteorder("="), copy=False))


def parse_model_bin(data, where: str) -> tuple:
    """(variables {name: StoredVariable}, aliases {alias: target}) of ``model.bin`` bytes, as stored."""
    r = _Reader(data, where)
    (version,) = r.unpack("I", "the header")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ModelFileError(f"{where}: not a CTranslate2 model.bin of a known version (header {version})")
    spec = r.string("the spec name")
    if spec != "WhisperSpec":
        raise ModelFileError(f"{where}: CTranslate2 spec is {spec!r}, expected 'WhisperSpec'")
    r.unpack("I", "the spec revision")
    (n_variables,) = r.unpack("I", "the variable count")
    variables = dict(_read_variable(r, where) for _ in range(n_variables))
    (n_aliases,) = r.unpack("I", "the alias count")
    aliases = {}
    for _ in range(n_aliases):
        alias, target = r.string("an alias"), r.string("an alias target")
        aliases[alias] = target
    return variables, aliases


# ---------------------------------------------------------------- dtypes and dequantisation

def _checked_scale(name: str, weight: StoredVariable, scale: StoredVariable, where: str) -> np.ndarray:
    """The float32 scale of ``name``: one value per leading-axis row for int8, a scalar for int16;
    refused unless every value is finite and positive (CTranslate2 never writes another)."""
    scale_name = name + SCALE_SUFFIX
    if scale.dtype not in ("float32", "float16", "bfloat16"):
        raise ModelFileError(f"{where}: variable {scale_name} has dtype {scale.dtype}, expected a float")
    values = bfloat16_to_float32(scale.array) if scale.dtype == "bfloat16" else scale.array
    values = values.astype(np.float32)  # [rows] or []
    if weight.dtype == "int16":
        want = ()
    elif weight.array.ndim == 0:
        raise ModelFileError(f"{where}: variable {name} is an int8 scalar with a scale; expected a weight array")
    else:
        want = (weight.array.shape[0],)
    if values.shape != want:
        raise ModelFileError(f"{where}: variable {scale_name} has shape {list(values.shape)}, expected {list(want)} "
                             f"for {weight.dtype} {name} of shape {list(weight.array.shape)}")
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ModelFileError(f"{where}: variable {scale_name} holds a zero, negative or non-finite scale")
    return values


def dequantize_weight(name: str, weight: StoredVariable, scale: StoredVariable, where: str) -> np.ndarray:
    """An int8 (per-row scales) or int16 (one scale) weight as float32, computed as CTranslate2 does:
    float(q) * (1 / s), both operations in float32."""
    inverse = np.float32(1) / _checked_scale(name, weight, scale, where)  # [rows] or []
    q = weight.array.astype(np.float32)  # [*shape]
    if weight.dtype == "int16":
        return q * inverse  # [*shape]
    rows = q.reshape(q.shape[0], -1)  # [rows, row_size]
    return (rows * inverse[:, None]).reshape(q.shape)  # [*shape]


def _plain_array(name: str, variable: StoredVariable, where: str) -> np.ndarray:
    """A variable without a scale: floats as stored (bfloat16 widened); integers only as scalars or
    as arrays that are not weights (a quantised weight must come with its scale)."""
    if variable.dtype == "bfloat16":
        return bfloat16_to_float32(variable.array)
    if variable.dtype in QUANTIZED_DTYPES and variable.array.ndim and name.endswith("weight"):
        raise ModelFileError(f"{where}: variable {name} is {variable.dtype} but its scale {name}{SCALE_SUFFIX} is missing")
    return variable.array


def _is_weight_scale(name: str, variables: dict) -> bool:
    """Whether ``name`` is the quantisation scale of another variable (``<weight>_scale``); other names
    ending in ``_scale`` (an attention's ``queries_scale``) are ordinary variables."""
    return name.endswith(SCALE_SUFFIX) and name[:-len(SCALE_SUFFIX)] in variables


def describe_storage(variables: dict) -> str:
    """How parsed variables store a model, in CTranslate2's terms: "float16", or "int8 weights,
    float16 other arrays" (the weights are the variables named ``...weight``)."""
    floats = ("float32", "float16", "bfloat16")
    arrays = {n: v for n, v in variables.items() if v.array.ndim and not _is_weight_scale(n, variables)}
    weights = sorted({v.dtype for n, v in arrays.items() if n.endswith("weight")})
    others = sorted({v.dtype for n, v in arrays.items() if not n.endswith("weight") and v.dtype in floats})
    if weights == others:
        return "/".join(weights)
    return f"{'/'.join(weights)} weights, {'/'.join(others) or 'no'} other arrays"


def dequantize_variables(variables: dict, where: str) -> dict:
    """{name: ndarray} from parsed variables: quantised weights dequantised, their scales consumed,
    bfloat16 widened, and all floats float32 when anything was quantised or bfloat16."""
    arrays, dequantized = {}, False
    for name, variable in variables.items():
        if name.endswith(ZERO_SUFFIX):
            raise ModelFileError(f"{where}: variable {name} holds AWQ zero points; AWQ-quantised models are not supported")
        if _is_weight_scale(name, variables):
            weight_name = name[:-len(SCALE_SUFFIX)]
            if variables[weight_name].dtype not in QUANTIZED_DTYPES:
                raise ModelFileError(f"{where}: variable {name} scales {weight_name}, which is "
                                     f"{variables[weight_name].dtype}, not int8/int16")
            continue
        scale = variables.get(name + SCALE_SUFFIX)
        if scale is not None and variable.dtype in QUANTIZED_DTYPES:
            arrays[name] = dequantize_weight(name, variable, scale, where)
            dequantized = True
        else:
            arrays[name] = _plain_array(name, variable, where)
    if dequantized or any(v.dtype == "bfloat16" and v.array.ndim for v in variables.values()):
        arrays = {n: a.astype(np.float32) if a.ndim and a.dtype.kind == "f" else a for n, a in arrays.items()}
    return arrays


def _with_aliases(arrays: dict, aliases: dict, where: str) -> dict:
    """``arrays`` plus each alias bound to its target's (already dequantised) array."""
    for alias, target in aliases.items():
        if target not in arrays:
            raise ModelFileError(f"{where}: alias {alias} points at missing variable {target}")
        arrays[alias] = arrays[target]
    return arrays


def read_model_bin(data, where: str) -> dict:
    """Parse ``model.bin`` bytes into {variable name: ndarray}: dequantised, aliases resolved."""
    variables, aliases = parse_model_bin(data, where)
    return _with_aliases(dequantize_variables(variables, where), aliases, where)


# ---------------------------------------------------------------- directories

def _model_bin_bytes(parts: list):
    """The bytes of ``model.bin``: one file mapped into memory (float16/float32 variables then stay
    views of it, no copy), or split parts read and joined."""
    for part in parts:
        if not part.is_file():
            raise ModelFileError(f"{part}: no such file")
    if len(parts) == 1:
        with open(parts[0], "rb") as f:
            if f.seek(0, 2) == 0:
                raise ModelFileError(f"{parts[0]}: empty file; not a CTranslate2 model.bin")
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return b"".join(part.read_bytes() for part in parts)


def _read_variables(model_dir: Path, model_bin_parts) -> tuple:
    """({name: ndarray} dequantised with aliases, how the file stores them) of a directory's model.bin."""
    parts = [Path(p) for p in (model_bin_parts or [model_dir / "model.bin"])]
    where = "+".join(str(p) for p in parts)
    variables, aliases = parse_model_bin(_model_bin_bytes(parts), where)
    storage = describe_storage(variables)
    return _with_aliases(dequantize_variables(variables, where), aliases, where), storage


def read_model_dir(model_dir, model_bin_parts=None) -> tuple:
    """Read a CTranslate2 Whisper directory: (variables, config dict, tokenizer dict).

    ``model_bin_parts`` lists files whose concatenation is ``model.bin`` (for packages that split it).
    """
    model_dir = Path(model_dir)
    variables, _ = _read_variables(model_dir, model_bin_parts)
    return variables, read_json(model_dir / "config.json"), read_json(_tokenizer_path(model_dir))


def read_ct2_dir(model_dir, model_bin_parts=None, source=None) -> Checkpoint:
    """A CTranslate2 Whisper directory (any size, any quantisation) as a canonical ``Checkpoint``.

    ``source`` is the provenance text stored with it (default: the directory and how it stored the
    weights, e.g. "CTranslate2 DIR (int8 weights, float16 other arrays)").
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelFileError(f"{model_dir}: not a directory; a CTranslate2 model is a folder holding model.bin")
    variables, storage = _read_variables(model_dir, model_bin_parts)
    config, tokenizer = read_json(model_dir / "config.json"), read_json(_tokenizer_path(model_dir))
    return ct2_to_checkpoint(variables, config, tokenizer, source=source or f"CTranslate2 {model_dir} ({storage})")


def _tokenizer_path(model_dir: Path) -> Path:
    """``tokenizer.json`` of the folder; when only CTranslate2's vocabulary file is there, say why it is not enough."""
    path = model_dir / TOKENIZER_FILE
    if path.is_file():
        return path
    present = [name for name in VOCABULARY_FILES if (model_dir / name).is_file()]
    if present:
        raise ModelFileError(f"{path}: no such file; {present[0]} lists the tokens but not the BPE merges, so "
                             f"copy tokenizer.json from the Hugging Face model (openai/whisper-<size>) into {model_dir}")
    return path
