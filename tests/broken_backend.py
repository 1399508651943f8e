"""Deliberately broken backends for the parity command's own test: the NumPy backend with one wrong weight.

``python -m numwhisper.golden check --backend broken_backend:FACTORY`` (with tests/ on PYTHONPATH)
must fail at the stage the broken weight first affects, and pass the stages before it.
"""

import dataclasses

import numpy as np

from numwhisper.backend import NumpyBackend
from numwhisper.formats.checkpoint import load


def _with_row_scaled(path, name: str, row: int, factor: float) -> NumpyBackend:
    """The NumPy backend of a model file whose tensor ``name`` has row ``row`` multiplied by ``factor``."""
    checkpoint = load(path)
    tensors = dict(checkpoint.tensors)
    broken = np.array(tensors[name], dtype=np.float32)  # a copy
    broken[row] *= factor
    tensors[name] = broken
    return NumpyBackend.from_checkpoint(dataclasses.replace(checkpoint, tensors=tensors))


def decoder_weight(path) -> NumpyBackend:
    """One output row of the first decoder block's MLP projection doubled: mel and encoder stay right."""
    return _with_row_scaled(path, "decoder.blocks.0.mlp.2.weight", 7, 2.0)


def encoder_weight(path) -> NumpyBackend:
    """One output row of the last encoder block's MLP projection doubled: the encoder goes wrong first."""
    checkpoint_layers = load(path).dims.n_audio_layer
    return _with_row_scaled(path, f"encoder.blocks.{checkpoint_layers - 1}.mlp.2.weight", 7, 2.0)


@dataclasses.dataclass(frozen=True)
class DecodeRaises(NumpyBackend):
    """A backend whose decoder step raises, as a half-written backend might."""

    def decode(self, tokens, cache):
        raise RuntimeError("decoder not implemented yet")


def decode_raises(path) -> NumpyBackend:
    """The NumPy backend with a decode that raises: the logits stage must fail, not the command."""
    return DecodeRaises(NumpyBackend.from_checkpoint(load(path)).weights)
