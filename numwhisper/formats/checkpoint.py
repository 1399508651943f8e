"""The canonical numwhisper model file: one safetensors file that is a complete Whisper model.

Tensors carry OpenAI's state-dict names and layouts (Linear weight ``[out, in]``, Conv1d weight
``[out, in, k]``) in the dtype of their source (the CTranslate2 packages give float16). The
safetensors metadata carries everything else a model needs:

    numwhisper.format_version  "1"
    dims                       JSON object, the ten ``ModelDims`` fields
    alignment_heads            JSON list of [layer, head]
    tokenizer.vocab            JSON object, byte-level BPE token -> id
    tokenizer.merges           JSON list of "left right" merge rules, in rank order
    tokenizer.added_tokens     JSON object, special token text -> id
    source                     free text: where the weights came from
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..dims import ModelDims
from ..errors import ModelFileError

FORMAT_VERSION = "1"
MAX_JSON_BYTES = 64_000_000  # the JSON files of a model folder (config, shard index, tokenizer) are a few MB
METADATA_KEYS = (
    "numwhisper.format_version",
    "dims",
    "alignment_heads",
    "tokenizer.vocab",
    "tokenizer.merges",
    "tokenizer.added_tokens",
    "source",
)


def _attention_shapes(prefix: str, d: int) -> dict:
    return {
        f"{prefix}.query.weight": (d, d),
        f"{prefix}.query.bias": (d,),
        f"{prefix}.key.weight": (d, d),
        f"{prefix}.value.weight": (d, d),
        f"{prefix}.value.bias": (d,),
        f"{prefix}.out.weight": (d, d),
        f"{prefix}.out.bias": (d,),
    }


def _layer_norm_shapes(prefix: str, d: int) -> dict:
    return {f"{prefix}.weight": (d,), f"{prefix}.bias": (d,)}


def _block_shapes(prefix: str, d: int, cross_attention: bool) -> dict:
    shapes = {**_attention_shapes(f"{prefix}.attn", d), **_layer_norm_shapes(f"{prefix}.attn_ln", d)}
    if cross_attention:
        shapes.update(_attention_shapes(f"{prefix}.cross_attn", d))
        shapes.update(_layer_norm_shapes(f"{prefix}.cross_attn_ln", d))
    shapes.update({
        f"{prefix}.mlp.0.weight": (4 * d, d),
        f"{prefix}.mlp.0.bias": (4 * d,),
        f"{prefix}.mlp.2.weight": (d, 4 * d),
        f"{prefix}.mlp.2.bias": (d,),
    })
    shapes.update(_layer_norm_shapes(f"{prefix}.mlp_ln", d))
    return shapes


def expected_shapes(dims: ModelDims) -> dict:
    """Every tensor of a Whisper model with its shape, in OpenAI's state-dict order."""
    da, dt = dims.n_audio_state, dims.n_text_state
    shapes = {
        "encoder.conv1.weight": (da, dims.n_mels, 3),
        "encoder.conv1.bias": (da,),
        "encoder.conv2.weight": (da, da, 3),
        "encoder.conv2.bias": (da,),
        "encoder.positional_embedding": (dims.n_audio_ctx, da),
    }
    for i in range(dims.n_audio_layer):
        shapes.update(_block_shapes(f"encoder.blocks.{i}", da, cross_attention=False))
    shapes.update(_layer_norm_shapes("encoder.ln_post", da))
    shapes["decoder.token_embedding.weight"] = (dims.n_vocab, dt)
    shapes["decoder.positional_embedding"] = (dims.n_text_ctx, dt)
    for i in range(dims.n_text_layer):
        shapes.update(_block_shapes(f"decoder.blocks.{i}", dt, cross_attention=True))
    shapes.update(_layer_norm_shapes("decoder.ln", dt))
    return shapes


@dataclass(frozen=True)
class Checkpoint:
    """A complete Whisper model: tensors by OpenAI name, dims, and the metadata strings."""

    tensors: dict
    dims: ModelDims
    metadata: dict

    @property
    def alignment_heads(self) -> list:
        """[[layer, head], ...] of the cross-attention heads used for word alignment."""
        return json.loads(self.metadata["alignment_heads"])


def validate_tensors(tensors: dict, dims: ModelDims, where: str) -> None:
    """Raise ModelFileError naming the first missing, unexpected or misshapen tensor."""
    shapes = expected_shapes(dims)
    for name, shape in shapes.items():
        if name not in tensors:
            raise ModelFileError(f"{where}: tensor {name} is missing")
        got = tuple(tensors[name].shape)
        if got != shape:
            raise ModelFileError(f"{where}: tensor {name} has shape {list(got)}, expected {list(shape)}")
        if tensors[name].dtype.kind != "f":
            raise ModelFileError(f"{where}: tensor {name} has dtype {tensors[name].dtype}, expected a float")
    extra = sorted(set(tensors) - set(shapes))
    if extra:
        raise ModelFileError(f"{where}: unexpected tensor {extra[0]} ({len(extra)} unexpected in all)")


def make_metadata(dims: ModelDims, alignment_heads: list, vocab: dict, merges: list,
                  added_tokens: dict, source: str) -> dict:
    """The metadata strings of a model file, in a fixed key order."""
    return {
        "numwhisper.format_version": FORMAT_VERSION,
        "dims": json.dumps(dims.to_dict()),
        "alignment_heads": json.dumps([[int(layer), int(head)] for layer, head in alignment_heads]),
        "tokenizer.vocab": json.dumps(vocab, ensure_ascii=False),
        "tokenizer.merges": json.dumps(merges, ensure_ascii=False),
        "tokenizer.added_tokens": json.dumps(added_tokens, ensure_ascii=False),
        "source": source,
    }


def validate_metadata(metadata: dict, where: str) -> ModelDims:
    """Check the metadata keys and JSON payloads; return the dims."""
    if metadata is None:
        raise ModelFileError(f"{where}: no metadata; not a numwhisper model file")
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise ModelFileError(f"{where}: metadata key {missing[0]} is missing; not a numwhisper model file")
    version = metadata["numwhisper.format_version"]
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{where}: format version {version!r}, this numwhisper reads {FORMAT_VERSION!r}")
    for key in METADATA_KEYS[1:-1]:
        try:
            json.loads(metadata[key])
        except json.JSONDecodeError as err:
            raise ModelFileError(f"{where}: metadata {key} is not valid JSON ({err})") from None
    return ModelDims.from_dict(json.loads(metadata["dims"]), where=f"{where}: dims")


SAFETENSORS_DTYPES = {"float16": "F16", "float32": "F32", "float64": "F64", "int32": "I32", "int64": "I64",
                      "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def write_safetensors(path, tensors: dict, metadata: dict) -> None:
    """Write a safetensors file byte-for-byte deterministically, atomically.

    The header lists metadata and tensors in the order given (the ``safetensors`` package orders
    its header by hash, so the same content could give different bytes); data follows in that order.
    """
    header, offset = {"__metadata__": dict(metadata)}, 0
    arrays = []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        if array.dtype.name not in SAFETENSORS_DTYPES:
            raise ModelFileError(f"{path}: tensor {name} has dtype {array.dtype}, which safetensors cannot hold")
        header[name] = {"dtype": SAFETENSORS_DTYPES[array.dtype.name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array.astype(array.dtype.newbyteorder("<"), copy=False))
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(len(text).to_bytes(8, "little"))
            f.write(text)
            for array in arrays:
                f.write(memoryview(array).cast("B"))

    atomic_write(path, write)


def save(checkpoint: Checkpoint, path) -> None:
    """Write a model file atomically (a crash never leaves a half-written file at ``path``)."""
    validate_tensors(checkpoint.tensors, checkpoint.dims, str(path))
    order = list(expected_shapes(checkpoint.dims))
    write_safetensors(path, {name: checkpoint.tensors[name] for name in order}, checkpoint.metadata)


def _mapped_tensors(path: Path) -> dict:
    """Every tensor of a safetensors file as a read-only view of the file mapped into memory (no copy).

    Pages are read from disk (or the page cache) only when a tensor is used; the caller has
    already checked the file with ``safe_open``.
    """
    with open(path, "rb") as f:
        n_header = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n_header))
    header.pop("__metadata__", None)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n_header)  # [n_bytes]
    dtypes = {code: np.dtype(name).newbyteorder("<") for name, code in SAFETENSORS_DTYPES.items()}
    tensors = {}
    for name, entry in header.items():
        start, stop = entry["data_offsets"]
        tensors[name] = data[start:stop].view(dtypes[entry["dtype"]]).reshape(entry["shape"])
    return tensors


def load(path) -> Checkpoint:
    """Read and validate a model file; tensors keep their stored dtype and are memory-mapped (read-only)."""
    from safetensors import safe_open
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata()
            dims = validate_metadata(metadata, str(path))
            names = list(f.keys())
    except SafetensorError as err:
        raise ModelFileError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        tensors = _mapped_tensors(path)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: not a readable safetensors file ({err})") from None
    tensors = {name: tensors[name] for name in names}
    validate_tensors(tensors, dims, str(path))
    return Checkpoint(tensors=tensors, dims=dims, metadata=dict(metadata))


# ---------------------------------------------------------------- helpers of the readers

def read_json(path, kind=dict):
    """A JSON file's value, which must be a ``kind``; ModelFileError if missing, huge or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{path}: {path.stat().st_size} bytes, too large for a JSON file of a model")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, kind):
        json_kind = {dict: "object", list: "array"}.get(kind, kind.__name__)
        raise ModelFileError(f"{path}: expected a JSON {json_kind}, got {type(value).__name__}")
    return value


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values (their 16 bits as uint16) as float32, exactly: a bfloat16 is a float32's top half."""
    return (bits.astype(np.uint32) << 16).view(np.float32)  # [*shape]


def with_source(ckpt: Checkpoint, source) -> Checkpoint:
    """The checkpoint with its provenance text replaced (converters' --source); unchanged for None."""
    return ckpt if source is None else Checkpoint(ckpt.tensors, ckpt.dims, {**ckpt.metadata, "source": source})


def save_converted(ckpt: Checkpoint, output, source=None) -> str:
    """Write a converted model (atomically) and say what was written, for the converter scripts."""
    ckpt = with_source(ckpt, source)
    save(ckpt, output)
    return f"wrote {output}: {len(ckpt.tensors)} tensors, dims {ckpt.dims.to_dict()}"
