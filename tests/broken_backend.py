"""Deliberately broken backends for the parity command's own tests.

``python -m numwhisper.golden check --backend broken_backend:FACTORY`` (with tests/ on PYTHONPATH)
must fail at the stage the breakage first affects, and pass the stages before it. Two kinds: the
NumPy backend with one wrong weight (or a decoder that raises), and the plain NumPy backend of
``plain_backend`` with one of the flaws a real port could have (``FLAWS``: name -> flaws, stage).
"""

import dataclasses

import numpy as np

from numwhisper.backend import NumpyBackend
from numwhisper.formats.checkpoint import load
from plain_backend import Flaws, PlainBackend


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


# ---------------------------------------------------------------------------------- flawed ports
# The plain NumPy backend (tests/plain_backend.py) with one flaw each, and the stage that must catch it.

FLAWS = {
    "natural_log_mel": (Flaws(natural_log_mel=True), "mel"),
    "hop_161": (Flaws(hop=161), "mel"),
    "tanh_gelu": (Flaws(tanh_gelu=True), "encoder"),
    "layer_norm_eps_1e-6": (Flaws(layer_norm_eps=1e-6), "encoder"),
    "bfloat16_encoder": (Flaws(bfloat16_encoder=True), "encoder"),
    "no_query_scaling": (Flaws(no_query_scaling=True), "encoder"),
    "position_off_by_one": (Flaws(position_offset=1), "logits"),
    "cache_drops_oldest": (Flaws(cache_drops_oldest=True), "logits"),
    "reorder_ignores_indices": (Flaws(reorder_ignores_indices=True), "contract"),
    "logits_at_ignored": (Flaws(logits_at_ignored=True), "contract"),
    "language_probs_without_cross": (Flaws(language_probs_without_cross=True), "contract"),
    "unchecked_ids": (Flaws(unchecked_ids=True), "contract"),
    "positions_wrap": (Flaws(positions_wrap=True), "contract"),
    "unchecked_mel": (Flaws(unchecked_mel=True), "contract"),
}


def flawed(name: str):
    """A parity-command factory for the plain backend with the named flaw; the module's __getattr__ makes
    every name of FLAWS such a factory, so ``--backend broken_backend:tanh_gelu`` works."""
    flaws = FLAWS[name][0]
    return lambda path: PlainBackend(path, flaws)


def __getattr__(name: str):
    if name in FLAWS:
        return flawed(name)
    raise AttributeError(name)
