"""Reader for CTranslate2 model directories (``model.bin`` + ``config.json`` + ``tokenizer.json``).

``model.bin`` layout (little endian), binary versions 5 and 6:

    u32 binary_version
    str spec_name                      (str = u16 byte length, bytes ending in NUL)
    u32 spec_revision
    u32 n_variables, then per variable:
        str name, u8 rank, u32[rank] shape, u8 dtype, u32 n_bytes, n_bytes of data
    u32 n_aliases, then per alias: str alias_name, str variable_name
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SUPPORTED_BINARY_VERSIONS = (5, 6)


class _Reader:
    """Bounds-checked sequential reads over a bytes buffer."""

    def __init__(self, data: bytes, where: str):
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


def read_model_bin(data: bytes, where: str) -> dict:
    """Parse ``model.bin`` bytes into {variable name: ndarray}, aliases resolved."""
    r = _Reader(data, where)
    (version,) = r.unpack("I", "the header")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ModelFileError(f"{where}: not a CTranslate2 model.bin of a known version (header {version})")
    spec = r.string("the spec name")
    if spec != "WhisperSpec":
        raise ModelFileError(f"{where}: CTranslate2 spec is {spec!r}, expected 'WhisperSpec'")
    r.unpack("I", "the spec revision")
    (n_variables,) = r.unpack("I", "the variable count")
    variables = {}
    for _ in range(n_variables):
        name = r.string("a variable name")
        (rank,) = r.unpack("B", f"variable {name}")
        shape = r.unpack(f"{rank}I", f"variable {name}")
        (dtype_id,) = r.unpack("B", f"variable {name}")
        (n_bytes,) = r.unpack("I", f"variable {name}")
        if dtype_id not in CT2_DTYPES:
            raise ModelFileError(f"{where}: variable {name} has unsupported dtype id {dtype_id}")
        dtype = np.dtype(CT2_DTYPES[dtype_id]).newbyteorder("<")
        if n_bytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ModelFileError(f"{where}: variable {name} has {n_bytes} bytes for shape {list(shape)}")
        raw = r.take(n_bytes, f"variable {name}")
        variables[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    (n_aliases,) = r.unpack("I", "the alias count")
    for _ in range(n_aliases):
        alias, target = r.string("an alias"), r.string("an alias target")
        if target not in variables:
            raise ModelFileError(f"{where}: alias {alias} points at missing variable {target}")
        variables[alias] = variables[target]
    return variables


def read_model_dir(model_dir, model_bin_parts=None) -> tuple:
    """Read a CTranslate2 Whisper directory: (variables, config dict, tokenizer dict).

    ``model_bin_parts`` lists files whose concatenation is ``model.bin`` (for packages that split it).
    """
    model_dir = Path(model_dir)
    parts = [Path(p) for p in (model_bin_parts or [model_dir / "model.bin"])]
    chunks = []
    for part in parts:
        if not part.is_file():
            raise ModelFileError(f"{part}: no such file")
        chunks.append(part.read_bytes())
    where = "+".join(str(p) for p in parts)
    variables = read_model_bin(b"".join(chunks), where)
    config = _read_json(model_dir / "config.json")
    tokenizer = _read_json(model_dir / "tokenizer.json")
    return variables, config, tokenizer


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from None
