"""Reader for openai-whisper ``.pt`` checkpoints, without PyTorch.

openai-whisper saves ``{"dims": {ModelDimensions fields}, "model_state_dict": {name: tensor}}`` with
``torch.save``, whose file (PyTorch 1.6 on) is a zip archive, every entry stored uncompressed under
one top-level folder ``<prefix>/`` (the file's stem when it was written):

    <prefix>/data.pkl          the pickled object (protocol 2); each tensor is pickled as
                               torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
                                                               requires_grad, backward_hooks[, metadata])
                               and each storage as the persistent id
                               ("storage", torch.<Type>Storage, key, location, numel)
    <prefix>/data/<key>        one storage's raw bytes: numel elements of the storage's type
    <prefix>/byteorder         "little" or "big" (absent in old files: little)
    <prefix>/version           the archive format version, "3\\n"
    (.format_version, .storage_alignment and .data/serialization_id are not needed to read it)

Offsets, sizes and strides count elements, not bytes. A tensor may view part of a storage, and
several tensors may share one. PyTorch 2 pickles tensors of the types that have no legacy storage
class (uint16, ...) as ``_rebuild_tensor_v3(..., dtype, ...)`` over ``torch.storage.UntypedStorage``
(numel counting bytes); both are read.

The pickle is read by an unpickler that admits only those rebuild functions, the storage and dtype
names, ``collections.OrderedDict`` and plain containers; any other global (``os.system``,
``builtins.eval``) is refused by name before anything runs. Every storage read is bounded by its
zip entry, and every tensor by its storage.

A ``.pt`` holds no vocabulary: it comes from a ``.tiktoken`` file, by default OpenAI's own, which
ship with numwhisper (``numwhisper/assets``). Nor does it hold alignment heads (openai-whisper keeps
them in its code, by model name): they come from ``names`` when the file is named after a published
model whose dims it has, else the decoder's second half.
"""

from __future__ import annotations

import base64
import collections
import functools
import io
import pickle
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dims import ModelDims
from ..errors import ModelFileError, printable
from ..languages import N_TIMESTAMPS, n_languages, whisper_added_tokens
from .bpe_ranks import read_tiktoken, vocab_and_merges_from_ranks
from .checkpoint import Checkpoint, bfloat16_to_float32, make_metadata, validate_tensors
from .names import fallback_alignment_heads

MAX_PICKLE_BYTES = 64 << 20          # openai-whisper's data.pkl is tens of KB; large-v3's under 100 KB
WEIGHT_DTYPES = ("float16", "float32")   # kept as they are; bfloat16 becomes float32
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")   # a zip local file header, 30 bytes
LOCAL_HEADER_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"   # pre-1.6 torch.save: pickled magic number

# torch storage class -> element type ("bfloat16" has no NumPy type; it is read as uint16 bits)
STORAGE_TYPES = {
    "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "DoubleStorage": "float64", "BoolStorage": "bool", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "UntypedStorage": "uint8",
}
# torch dtype name (as pickled: torch.<name>) -> element type, for _rebuild_tensor_v3
TORCH_DTYPES = {
    "float32": "float32", "float": "float32", "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "float64": "float64", "double": "float64", "bool": "bool",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32", "int16": "int16",
    "short": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32",
    "uint64": "uint64",
}
REBUILD_FUNCTIONS = ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state")


# ---------------------------------------------------------------- pickle markers

class StorageType(tuple):
    """A ``torch.<Type>Storage`` named in the pickle: (element type,). A tuple, so a pickle cannot
    rewrite it with BUILD."""

    __slots__ = ()

    @property
    def element(self) -> str:
        return self[0]


class TorchDType(tuple):
    """A ``torch.<dtype>`` named in the pickle: (element type,)."""

    __slots__ = ()

    @property
    def element(self) -> str:
        return self[0]


@dataclass(frozen=True)
class StorageRef:
    """A storage the pickle refers to: its zip entry key, element type and size in bytes."""

    key: str
    element: str
    nbytes: int


def element_size(element: str) -> int:
    """Bytes per element of an element type (bfloat16: 2)."""
    return 2 if element == "bfloat16" else np.dtype(element).itemsize


# ---------------------------------------------------------------- the archive

class TorchArchive:
    """The zip entries of one ``torch.save`` file, read with bounds; storages come back as
    read-only NumPy byte arrays (views of the mapped file for the usual uncompressed entries)."""

    def __init__(self, path: Path, zf: zipfile.ZipFile):
        self.path, self.zf, self.where = path, zf, printable(path)
        self.prefix = self._find_prefix()
        self.little_endian = self._read_byteorder()
        self._file = None

    def _find_prefix(self) -> str:
        names = self.zf.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in names):
            raise ModelFileError(f"{self.where}: a TorchScript archive, not a torch.save checkpoint")
        if len(pickles) != 1:
            raise ModelFileError(f"{self.where}: a zip archive without one <folder>/data.pkl; not a PyTorch checkpoint")
        return pickles[0][: -len("data.pkl")]

    def _read_byteorder(self) -> bool:
        name = self.prefix + "byteorder"
        if name not in self.zf.namelist():
            return True
        order = self.read_small(name, 16).strip()
        if order not in (b"little", b"big"):
            raise ModelFileError(f"{self.where}: byteorder is {order[:16]!r}, expected 'little' or 'big'")
        return order == b"little"

    def read_small(self, name: str, limit: int) -> bytes:
        """A whole entry of at most ``limit`` bytes."""
        info = self.zf.getinfo(name)
        if info.file_size > limit:
            raise ModelFileError(f"{self.where}: {name} has {info.file_size} bytes, more than the {limit} it may have")
        with self.zf.open(info) as f:
            return f.read(limit)

    def storage(self, ref: StorageRef, nbytes: int) -> np.ndarray:
        """The first ``nbytes`` bytes of storage ``ref.key`` as uint8 [nbytes]."""
        return self._entry_bytes(ref.key, nbytes)[:nbytes]

    def _entry_bytes(self, key: str, nbytes: int) -> np.ndarray:
        """Storage ``key``'s zip entry as uint8 [entry bytes], checked to hold ``nbytes``."""
        name = f"{self.prefix}data/{key}"
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise ModelFileError(f"{self.where}: storage {key} is referenced but {name} is missing") from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(f"{self.where}: storage {key} is compressed; torch.save stores storages "
                                 f"uncompressed (was the archive re-zipped?)")
        entry = self._mapped_entry(info)  # [entry bytes]
        if entry.shape[0] < nbytes:
            raise ModelFileError(f"{self.where}: storage {key} holds {entry.shape[0]} bytes, "
                                 f"its tensor needs {nbytes} (truncated?)")
        return entry

    def _mapped_entry(self, info: zipfile.ZipInfo) -> np.ndarray:
        """An uncompressed entry's bytes as a read-only view of the memory-mapped file."""
        if self._file is None:
            self._file = np.memmap(self.path, dtype=np.uint8, mode="r")  # [file bytes]
        start = info.header_offset
        header = bytes(self._file[start:start + LOCAL_HEADER.size])
        if len(header) != LOCAL_HEADER.size or header[:4] != LOCAL_HEADER_MAGIC:
            raise ModelFileError(f"{self.where}: the zip entry {info.filename} has no local header (damaged archive)")
        fields = LOCAL_HEADER.unpack(header)
        begin = start + LOCAL_HEADER.size + fields[9] + fields[10]  # + name length + extra length
        end = begin + info.compress_size
        if end > self._file.shape[0]:
            raise ModelFileError(f"{self.where}: the zip entry {info.filename} runs past the end of the file (truncated?)")
        return self._file[begin:end]


# ---------------------------------------------------------------- the restricted unpickler

class CheckpointUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` admitting only what a tensor checkpoint needs; tensors become TensorViews."""

    def __init__(self, data: bytes, archive: TorchArchive):
        super().__init__(io.BytesIO(data))
        self.archive, self.where = archive, archive.where

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in REBUILD_FUNCTIONS:
            return self._rebuilder(name)
        if (module == "torch" and name in STORAGE_TYPES) or (module, name) == ("torch.storage", "UntypedStorage"):
            return StorageType((STORAGE_TYPES[name],))
        if module == "torch" and name in TORCH_DTYPES:
            return TorchDType((TORCH_DTYPES[name],))
        raise ModelFileError(f"{self.where}: data.pkl names {printable(module)}.{printable(name)}, which a "
                             f"tensor checkpoint never needs; refusing to load it (it could run code)")

    def persistent_load(self, pid):
        """("storage", storage type, key, location, numel) -> StorageRef."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ModelFileError(f"{self.where}: data.pkl refers to {_describe(pid)}, not a storage")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise ModelFileError(f"{self.where}: storage {_describe(key)} has no storage type")
        if not (isinstance(key, str) and re.fullmatch(r"[0-9A-Za-z_]{1,64}", key)):
            raise ModelFileError(f"{self.where}: storage key {_describe(key)} is not a plain name")
        if not _is_count(numel):
            raise ModelFileError(f"{self.where}: storage {key} has element count {_describe(numel)}")
        return StorageRef(key, storage_type.element, int(numel) * element_size(storage_type.element))

    def _rebuilder(self, name: str):
        """A fresh function standing in for ``torch._utils.<name>``."""
        if name == "_rebuild_tensor_v2":
            def rebuild(storage, offset, size, stride, *_rest):
                return self.tensor(storage, offset, size, stride, dtype=None)
        elif name == "_rebuild_tensor_v3":
            def rebuild(storage, offset, size, stride, _requires_grad, _hooks, dtype, *_rest):
                if not isinstance(dtype, TorchDType):
                    raise ModelFileError(f"{self.where}: a tensor's dtype is {_describe(dtype)}")
                return self.tensor(storage, offset, size, stride, dtype=dtype.element)
        else:  # _rebuild_parameter(data, requires_grad, hooks[, state]): a Parameter is its data
            def rebuild(data, *_rest):
                return data
        return rebuild

    def tensor(self, storage, offset, size, stride, dtype) -> "TensorView":
        """The tensor a rebuild call describes: ``size`` elements ``stride`` apart from ``offset``,
        checked to lie inside its storage (its data is not touched yet)."""
        if not isinstance(storage, StorageRef):
            raise ModelFileError(f"{self.where}: a tensor's storage is {_describe(storage)}")
        element = dtype or storage.element
        size, stride = _index_tuple(size, "size", self.where), _index_tuple(stride, "stride", self.where)
        if len(size) != len(stride) or not _is_count(offset):
            raise ModelFileError(f"{self.where}: storage {storage.key}: a tensor's size {list(size)}, stride "
                                 f"{list(stride)} and offset {_describe(offset)} do not fit together")
        n_elements = storage.nbytes // element_size(element)
        empty = any(n == 0 for n in size)
        last = offset - 1 if empty else offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= n_elements:
            raise ModelFileError(f"{self.where}: storage {storage.key} holds {n_elements} elements, a tensor of "
                                 f"size {list(size)} stride {list(stride)} from offset {offset} needs {last + 1}")
        raw = self.archive.storage(storage, n_elements * element_size(element))  # [n_elements * itemsize] uint8
        return TensorView(raw, element, self.archive.little_endian, offset, size, stride)


@dataclass(frozen=True)
class TensorView:
    """A tensor of the checkpoint, not yet copied out of the file: read ``shape`` and ``dtype`` (what
    ``array()`` will give) to check it, then call ``array()``. Its extent lies inside its storage."""

    raw: np.ndarray      # the storage's bytes, uint8 [n_elements * itemsize]
    element: str         # a NumPy type name, or "bfloat16"
    little_endian: bool
    offset: int
    shape: tuple
    stride: tuple

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("float32" if self.element == "bfloat16" else self.element)

    def array(self) -> np.ndarray:
        """The tensor as a native-order C-contiguous array (a read-only view of the mapped file when
        the stored layout already is one); bfloat16 becomes float32 (exactly)."""
        order = "<" if self.little_endian else ">"
        stored = np.dtype("uint16" if self.element == "bfloat16" else self.element).newbyteorder(order)
        typed = self.raw.view(stored)  # [n_elements]
        array = np.lib.stride_tricks.as_strided(typed[self.offset:], shape=self.shape, writeable=False,
                                                strides=[s * stored.itemsize for s in self.stride])  # [*shape]
        array = np.ascontiguousarray(array)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return bfloat16_to_float32(array) if self.element == "bfloat16" else array


def _index_tuple(value, what: str, where: str) -> tuple:
    if not (isinstance(value, tuple) and len(value) <= 8 and all(_is_count(v) for v in value)):
        raise ModelFileError(f"{where}: a tensor's {what} is {_describe(value)}, not a tuple of counts")
    return tuple(int(v) for v in value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 48


def _describe(value) -> str:
    text = repr(value) if isinstance(value, (str, int, tuple, type(None))) else type(value).__name__
    return printable(text[:60])


# ---------------------------------------------------------------- the file

def load_torch_pickle(path) -> object:
    """The object a ``torch.save`` zip file holds, each tensor a TensorView (ModelFileError when the
    file is not such an archive, is damaged, or its pickle names anything but tensor machinery).
    The views read the file through a memory map, so they stay valid after this returns."""
    path = Path(path)
    where = printable(path)
    if not path.is_file():
        raise ModelFileError(f"{where}: no such file")
    _refuse_non_zip(path, where)
    try:
        with zipfile.ZipFile(path) as zf:
            archive = TorchArchive(path, zf)
            data = archive.read_small(archive.prefix + "data.pkl", MAX_PICKLE_BYTES)
            return CheckpointUnpickler(data, archive).load()
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError) as err:
        raise ModelFileError(f"{where}: a damaged zip archive ({_one_line(err)})") from None
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, OverflowError, RecursionError, MemoryError) as err:
        raise ModelFileError(f"{where}: data.pkl is not a readable checkpoint pickle ({_one_line(err)})") from None


def _refuse_non_zip(path: Path, where: str) -> None:
    """Explain files that are not zip archives: the legacy torch format, or something else."""
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if zipfile.is_zipfile(path):
        return
    if head == LEGACY_MAGIC:
        raise ModelFileError(f"{where}: a legacy (before PyTorch 1.6) torch.save file; re-save it with a current "
                             f"PyTorch (torch.save(torch.load(f), out)) to get the zip format numwhisper reads")
    if head.startswith(LOCAL_HEADER_MAGIC):
        raise ModelFileError(f"{where}: a damaged zip archive (truncated? its central directory is missing)")
    raise ModelFileError(f"{where}: not a PyTorch checkpoint (not a zip archive)")


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return printable(" ".join(text.split())[:200])


# ---------------------------------------------------------------- openai-whisper checkpoint

def read_pt(path, tokenizer=None) -> Checkpoint:
    """A canonical Checkpoint from an openai-whisper ``.pt`` file.

    ``tokenizer`` names a ``.tiktoken`` file; None takes the bundled ``multilingual.tiktoken`` (or
    ``gpt2.tiktoken`` for an English-only model). float16 and float32 weights keep their dtype,
    bfloat16 becomes float32.
    """
    path = Path(path)
    where = printable(path)
    saved = load_torch_pickle(path)
    if not isinstance(saved, dict):
        raise ModelFileError(f"{where}: holds a {type(saved).__name__}, expected openai-whisper's "
                             f"{{'dims', 'model_state_dict'}} dict")
    for key in ("dims", "model_state_dict"):
        if key not in saved:
            raise ModelFileError(f"{where}: no {key!r} entry; not an openai-whisper checkpoint")
    if not isinstance(saved["dims"], dict) or not isinstance(saved["model_state_dict"], dict):
        raise ModelFileError(f"{where}: 'dims' and 'model_state_dict' must be dicts")
    dims = ModelDims.from_dict(saved["dims"], where=f"{where}: dims")
    state = dict(saved["model_state_dict"])
    heads = saved.get("alignment_heads", state.pop("alignment_heads", None))
    views = weight_views(state, where)
    validate_tensors(views, dims, where)  # names, shapes and dtypes, before any data is copied
    tensors = {name: view.array() for name, view in views.items()}
    alignment = (alignment_heads(heads, dims, where) if heads is not None
                 else fallback_alignment_heads(path.name, dims))
    tiktoken = Path(tokenizer) if tokenizer is not None else bundled_tiktoken(dims)
    vocab, merges, added = whisper_vocabulary(tiktoken, dims, where)
    metadata = make_metadata(dims, alignment, vocab, merges, added,
                             source=f"openai-whisper checkpoint {path.name}, vocabulary {tiktoken.name}")
    return Checkpoint(tensors=tensors, dims=dims, metadata=metadata)


def weight_views(state: dict, where: str) -> dict:
    """The state dict's tensors (TensorViews), each float16, float32 or bfloat16 (read as float32)."""
    tensors = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise ModelFileError(f"{where}: model_state_dict has a key {_describe(name)}, not a tensor name")
        if not isinstance(value, TensorView):
            raise ModelFileError(f"{where}: tensor {printable(name)} is a {type(value).__name__}, not a tensor")
        if value.dtype.name not in WEIGHT_DTYPES:
            raise ModelFileError(f"{where}: tensor {printable(name)} has dtype {value.dtype}, "
                                 f"expected float16, float32 or bfloat16")
        tensors[name] = value
    return tensors


def alignment_heads(value, dims: ModelDims, where: str) -> list:
    """[[layer, head], ...] from a bool mask [n_text_layer, n_text_head] (openai-whisper's form, also
    spelled as in its ``_ALIGNMENT_HEADS`` table) or from a list of pairs."""
    if isinstance(value, (bytes, str)):
        value = _mask_from_openai_spelling(value, dims, where)
    if isinstance(value, (TensorView, np.ndarray)) and len(value.shape) == 2:
        if tuple(value.shape) != (dims.n_text_layer, dims.n_text_head):
            raise ModelFileError(f"{where}: alignment_heads mask has shape {list(value.shape)}, "
                                 f"expected {[dims.n_text_layer, dims.n_text_head]}")
        mask = value.array() if isinstance(value, TensorView) else value  # [n_text_layer, n_text_head]
        pairs = np.argwhere(mask != 0).tolist()  # [n_heads, 2]
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        pairs = [list(p) for p in value]
    else:
        raise ModelFileError(f"{where}: alignment_heads is a {type(value).__name__}, "
                             f"expected a bool mask [n_text_layer, n_text_head] or [[layer, head], ...]")
    for layer, head in pairs:
        if not (_is_count(layer) and _is_count(head) and layer < dims.n_text_layer and head < dims.n_text_head):
            raise ModelFileError(f"{where}: alignment head {_describe((layer, head))} is outside the decoder's "
                                 f"{dims.n_text_layer} layers x {dims.n_text_head} heads")
    if not pairs:
        raise ModelFileError(f"{where}: alignment_heads names no head")
    return pairs


def _mask_from_openai_spelling(value, dims: ModelDims, where: str) -> np.ndarray:
    """openai-whisper's ``_ALIGNMENT_HEADS`` spelling: base85 of a gzip of the bool mask's bytes."""
    n = dims.n_text_layer * dims.n_text_head
    try:
        packed = base64.b85decode(value)
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)   # gzip framing
        raw = inflate.decompress(packed, n + 1)
    except (ValueError, zlib.error) as err:
        raise ModelFileError(f"{where}: alignment_heads is not base85 gzip data ({_one_line(err)})") from None
    if len(raw) != n:
        raise ModelFileError(f"{where}: alignment_heads holds {len(raw)} flags, expected {n}")
    return np.frombuffer(raw, dtype=np.bool_).reshape(dims.n_text_layer, dims.n_text_head)


# ---------------------------------------------------------------- the vocabulary

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def bundled_tiktoken(dims: ModelDims) -> Path:
    """OpenAI's vocabulary file for this model, as shipped with numwhisper."""
    return ASSETS / ("multilingual.tiktoken" if dims.is_multilingual else "gpt2.tiktoken")


@functools.lru_cache(maxsize=4)
def _tiktoken_vocabulary(path: str, size: int, mtime_ns: int) -> tuple:
    """(vocab, merges, number of ranks) of one version of a ``.tiktoken`` file (deriving the merges
    takes a second; a process that reads several checkpoints reads their vocabulary once)."""
    ranks = read_tiktoken(path)
    return (*vocab_and_merges_from_ranks(ranks), len(ranks))


def whisper_vocabulary(tiktoken: Path, dims: ModelDims, where: str) -> tuple:
    """(vocab, merges, added tokens) from a ``.tiktoken`` file, checked against the model's n_vocab."""
    if not tiktoken.is_file():
        raise ModelFileError(f"{printable(tiktoken)}: no such file")
    stat = tiktoken.stat()
    vocab, merges, eot = _tiktoken_vocabulary(str(tiktoken.resolve()), stat.st_size, stat.st_mtime_ns)
    try:
        added = whisper_added_tokens(eot, n_languages(dims.n_vocab))
    except ValueError:
        added = None
    if added is None or eot + len(added) + N_TIMESTAMPS != dims.n_vocab:
        raise ModelFileError(f"{where}: the vocabulary {printable(tiktoken)} has {eot} tokens, which does not fit "
                             f"the model's n_vocab {dims.n_vocab} (a multilingual model needs multilingual.tiktoken, "
                             f"an English-only one gpt2.tiktoken)")
    return dict(vocab), list(merges), added
