"""Read and write Paddle ``.pdparams`` files without Paddle.

A ``.pdparams`` file written by ``paddle.save`` is a pickle of a dict whose tensors are NumPy
arrays. Reading goes through an unpickler that only admits the NumPy array machinery, so a
hostile file cannot run code. Writing pickles a plain dict of arrays, which ``paddle.load`` reads.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import ModelFileError

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}
PICKLE_PROTOCOL = 4
# paddle.save adds this bookkeeping entry; it holds no tensor.
_PADDLE_NAME_TABLE = "StructuredToParameterName@@"


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pdparams(path) -> dict:
    """Load a ``.pdparams`` dict; tensors come back as NumPy arrays."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            state = _ArraysOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ModelFileError(f"{path}: not a readable .pdparams pickle ({err or type(err).__name__})") from None
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: holds a {type(state).__name__}, expected a dict of tensors")
    state.pop(_PADDLE_NAME_TABLE, None)
    return {name: _as_array(value) for name, value in state.items()}


def _as_array(value):
    """Older Paddle versions pickle a tensor as (name, ndarray)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
        return value[1]
    return value


def save_pdparams(state: dict, path) -> None:
    """Write a dict of arrays (and plain values such as ``dims``) atomically as a ``.pdparams``."""
    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        pickle.dump(state, buffer, protocol=PICKLE_PROTOCOL)
        tmp.write_bytes(buffer.getbuffer())

    atomic_write(path, write)
