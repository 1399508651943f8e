"""A safetensors writer whose bytes depend only on the tensors and metadata (the generators' one).

The safetensors library writes its header's metadata in no fixed order, so two runs of a generator
would differ; here the header is sorted and compact, tensors follow in name order.
"""

import json
import struct
from pathlib import Path

import numpy as np

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}


def write_safetensors(path: Path, tensors: dict, metadata: dict) -> None:
    """Write ``tensors`` (name -> array) and ``metadata`` (str -> str) to ``path``, atomically."""
    header, blobs, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        blob = arr.tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    tmp.replace(path)
