"""Write PyTorch ``torch.save`` checkpoints without PyTorch, so the suite can test the ``.pt`` reader.

The pickle is emitted opcode by opcode, following the layout torch.save (2.x) writes, as checked
against files made by torch 2.13 (``bench/formats_pt.py`` also loads this writer's files with torch
and openai-whisper):

- a zip archive, every entry stored uncompressed, all under one folder ``<prefix>/``; the data of
  every entry starts at a multiple of 64 bytes (torch pads the local header's extra field);
- ``<prefix>/data.pkl``: pickle protocol 2 of the saved object; a dict is EMPTY_DICT then SETITEMS;
  an OrderedDict is GLOBAL 'collections OrderedDict', EMPTY_TUPLE, REDUCE, then SETITEMS;
- a tensor is GLOBAL 'torch._utils _rebuild_tensor_v2' REDUCEd with the tuple (storage,
  storage_offset, size, stride, requires_grad=False, OrderedDict()); offset, size and stride count
  elements;
- a storage is BINPERSID of ("storage", GLOBAL 'torch <Type>Storage', key, "cpu", numel), its
  bytes in ``<prefix>/data/<key>``; tensors viewing one storage share it;
- ``<prefix>/byteorder`` ("little" or "big"), ``<prefix>/version`` ("3\\n"), ``.format_version``
  ("1"), ``.storage_alignment`` ("64") and ``.data/serialization_id``.

Anything else (a global such as ``os.system``, a storage cut short, a big-endian file) can be
written on purpose, which is what the hostile tests need.
"""

from __future__ import annotations

import collections
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STORAGE_NAMES = {
    "float32": "FloatStorage", "float16": "HalfStorage", "float64": "DoubleStorage", "bool": "BoolStorage",
    "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage", "int8": "CharStorage",
    "uint8": "ByteStorage", "bfloat16": "BFloat16Storage",
}
ALIGNMENT = 64


@dataclass(frozen=True)
class Global:
    """A GLOBAL opcode naming ``module.name``."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """``func(*args)`` in the pickle (GLOBAL, the argument tuple, REDUCE)."""

    func: Global
    args: tuple


@dataclass(eq=False)
class Storage:
    """One storage: a 1-D array of its elements ("bfloat16" keeps the uint16 bits). ``numel`` may
    claim more elements than ``data`` holds, and ``entry_bytes`` may cut the zip entry short."""

    data: np.ndarray
    element: str = ""
    numel: int = -1
    entry_bytes: int = -1

    def __post_init__(self):
        self.element = self.element or self.data.dtype.name
        self.numel = self.data.size if self.numel < 0 else self.numel


@dataclass(eq=False)
class Tensor:
    """A tensor as torch pickles it: a view of ``storage`` (sizes, strides and offset in elements)."""

    storage: Storage
    offset: int
    size: tuple
    stride: tuple
    extra: tuple = field(default=())   # more rebuild arguments (torch >= 2.0 may add metadata)
    untyped: bool = False              # pickle as PyTorch 2 does for uint16 & co: _rebuild_tensor_v3
                                       # over torch.storage.UntypedStorage (numel in bytes), dtype after hooks


def contiguous(array: np.ndarray) -> Tensor:
    """A C-contiguous tensor over a storage of its own."""
    array = np.asarray(array)
    strides = [s // array.itemsize for s in np.ascontiguousarray(array).strides]
    return Tensor(Storage(np.ascontiguousarray(array).reshape(-1)), 0, array.shape, tuple(strides))


def bfloat16(array: np.ndarray) -> Tensor:
    """A bfloat16 tensor holding the upper 16 bits of each float32 value (exact for values that fit)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    bits = (array.view(np.uint32) >> 16).astype(np.uint16).reshape(-1)  # [numel]
    tensor = contiguous(array)
    return Tensor(Storage(bits, "bfloat16"), 0, tensor.size, tensor.stride)


def transposed(array: np.ndarray) -> Tensor:
    """``array`` [a, b] stored as torch stores ``x.t()`` of a contiguous x [b, a]: strides (1, a)."""
    a, b = array.shape
    return Tensor(Storage(np.ascontiguousarray(array.T).reshape(-1)), 0, (a, b), (1, a))


# ---------------------------------------------------------------- pickle opcodes

class _Pickle:
    """Emits protocol-2 pickle opcodes for plain values, tensors, globals and calls."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")          # PROTO 2
        self.storages = {}                          # id(Storage) -> (key, Storage)

    def dump(self, obj) -> bytes:
        self.emit(obj)
        self.out += b"."                            # STOP
        return bytes(self.out)

    def emit(self, obj) -> None:
        if obj is None:
            self.out += b"N"
        elif obj is True or obj is False:
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self._int(obj)
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            raw = obj.encode("utf-8")
            self.out += b"X" + struct.pack("<I", len(raw)) + raw
        elif isinstance(obj, bytes):
            self.out += b"B" + struct.pack("<I", len(obj)) + obj
        elif isinstance(obj, tuple):
            self._tuple(obj)
        elif isinstance(obj, list):
            self.out += b"]("
            for item in obj:
                self.emit(item)
            self.out += b"e"
        elif isinstance(obj, collections.OrderedDict):
            self.emit(Call(Global("collections", "OrderedDict"), ()))
            self._items(obj)
        elif isinstance(obj, dict):
            self.out += b"}"
            self._items(obj)
        elif isinstance(obj, np.ndarray):
            self.emit(contiguous(obj))
        elif isinstance(obj, Tensor):
            self._tensor(obj)
        elif isinstance(obj, Global):
            self.out += b"c" + f"{obj.module}\n{obj.name}\n".encode("utf-8")
        elif isinstance(obj, Call):
            self.emit(obj.func)
            self.emit(tuple(obj.args))
            self.out += b"R"
        else:
            raise TypeError(f"pt_writer cannot pickle {type(obj).__name__}")

    def _int(self, value: int) -> None:
        if 0 <= value < 256:
            self.out += b"K" + bytes([value])
        elif -(1 << 31) <= value < 1 << 31:
            self.out += b"J" + struct.pack("<i", value)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw

    def _tuple(self, items: tuple) -> None:
        if len(items) <= 3:
            for item in items:
                self.emit(item)
            self.out += (b")", b"\x85", b"\x86", b"\x87")[len(items)]
        else:
            self.out += b"("
            for item in items:
                self.emit(item)
            self.out += b"t"

    def _items(self, mapping: dict) -> None:
        if mapping:
            self.out += b"("
            for key, value in mapping.items():
                self.emit(key)
                self.emit(value)
            self.out += b"u"

    def _tensor(self, tensor: Tensor) -> None:
        key, storage = self.storages.setdefault(id(tensor.storage), (str(len(self.storages)), tensor.storage))
        if tensor.untyped:
            storage_type = Global("torch.storage", "UntypedStorage")
            numel, tail = storage.numel * storage.data.itemsize, (Global("torch", storage.element),)
        else:
            storage_type, numel, tail = Global("torch", STORAGE_NAMES[storage.element]), storage.numel, ()
        self.emit(Global("torch._utils", "_rebuild_tensor_v3" if tensor.untyped else "_rebuild_tensor_v2"))
        self.out += b"("
        self.emit(("storage", storage_type, key, "cpu", numel))
        self.out += b"Q"                            # BINPERSID
        for item in (tensor.offset, tuple(tensor.size), tuple(tensor.stride), False,
                     collections.OrderedDict(), *tail, *tensor.extra):
            self.emit(item)
        self.out += b"tR"


# ---------------------------------------------------------------- the archive

def storage_bytes(storage: Storage, byteorder: str) -> bytes:
    data = storage.data
    if storage.element == "bfloat16":
        data = data.astype(np.uint16)
    order = "<" if byteorder == "little" else ">"
    raw = data.astype(data.dtype.newbyteorder(order)).tobytes()
    return raw if storage.entry_bytes < 0 else raw[:storage.entry_bytes]


def _aligned_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Write an entry whose data starts at a multiple of ALIGNMENT (padding the extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    start = zf.fp.tell() + 30 + len(name.encode("utf-8")) + 4
    pad = -start % ALIGNMENT
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    zf.writestr(info, data)


def write_pt(path, obj, *, prefix: str = "archive", byteorder: str = "little", pickle_bytes: bytes = None,
             omit=(), compress_storages: bool = False) -> Path:
    """Write ``obj`` as torch.save would; ``pickle_bytes`` replaces data.pkl, ``omit`` drops entries
    (names relative to the prefix), ``compress_storages`` deflates the storage entries."""
    path = Path(path)
    pickler = _Pickle()
    data_pkl = pickler.dump(obj)
    entries = {"data.pkl": pickle_bytes if pickle_bytes is not None else data_pkl,
               ".format_version": b"1", ".storage_alignment": str(ALIGNMENT).encode(),
               "byteorder": byteorder.encode()}
    for key, storage in pickler.storages.values():
        entries[f"data/{key}"] = storage_bytes(storage, byteorder)
    entries["version"] = b"3\n"
    entries[".data/serialization_id"] = b"0" * 40
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            if name in omit:
                continue
            if compress_storages and name.startswith("data/"):
                zf.writestr(f"{prefix}/{name}", data, compress_type=zipfile.ZIP_DEFLATED)
            else:
                _aligned_entry(zf, f"{prefix}/{name}", data)
    return path


def whisper_checkpoint(dims: dict, tensors: dict, **extra) -> dict:
    """openai-whisper's saved object: {"dims": ..., "model_state_dict": OrderedDict}, plus ``extra`` keys."""
    return {"dims": dict(dims), "model_state_dict": collections.OrderedDict(tensors), **extra}


# ---------------------------------------------------------------- the committed fixture's contents

# tests/data/formats/tiny_random.pt (made by real torch.save in bench/formats_pt.py --fixture): a
# Whisper of tiny dims whose values come from fixture_tensors, stored in each of torch's layouts.
FIXTURE_DIMS = dict(n_mels=2, n_audio_ctx=2, n_audio_state=2, n_audio_head=1, n_audio_layer=1,
                    n_vocab=51864, n_text_ctx=2, n_text_state=2, n_text_head=2, n_text_layer=2)
FIXTURE_FLOAT32 = ("encoder.conv1.bias",)                  # saved as float32, the rest float16 ...
FIXTURE_BFLOAT16 = ("decoder.ln.weight",)                  # ... but this, saved as bfloat16
FIXTURE_TRANSPOSED = ("decoder.blocks.0.mlp.0.weight",)    # saved as x.t() of a contiguous x
FIXTURE_SHARED = ("decoder.blocks.0.attn.query.weight", "decoder.blocks.0.attn.value.weight")  # one storage
FIXTURE_EXPANDED = "decoder.token_embedding.weight"        # one row, expanded with stride 0
FIXTURE_ALIGNMENT_MASK = ((False, True), (True, False))   # top-level "alignment_heads", a bool tensor


def fixture_values(index: int, shape: tuple) -> np.ndarray:
    """Deterministic float32 values that float16 and bfloat16 hold exactly (multiples of 1/64 in [-1, 1])."""
    n = int(np.prod(shape))
    k = (np.arange(n, dtype=np.int64) * 37 + index * 11) % 101 - 50  # [n]
    return (k / 64).astype(np.float32).reshape(shape)


def fixture_tensors(shapes: dict) -> dict:
    """{name: float32 array} of the fixture, for ``expected_shapes`` of FIXTURE_DIMS."""
    tensors = {}
    for index, (name, shape) in enumerate(shapes.items()):
        if name == FIXTURE_EXPANDED:
            tensors[name] = np.broadcast_to(fixture_values(index, (1, shape[1])), shape).copy()
        else:
            tensors[name] = fixture_values(index, shape)
    return tensors
