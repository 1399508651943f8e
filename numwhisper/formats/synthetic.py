"""Random-weight checkpoints with the shapes of models whose weights are not at hand.

Only base and tiny.en exist here, so the paths that depend on a model's size are proved on random
weights with the features of the larger models, at a width and depth that run in seconds:
large-v3's 128 mel bins and 51,866-token vocabulary (with <|yue|>), and turbo's decoder that is
shallower than its encoder. The weights are seeded, so a checkpoint is the same everywhere; they are
scaled so that activations and logits stay of order one (no layer saturates and the logits are far
from ties), which is what a parity check between two implementations needs.
"""

from __future__ import annotations

import json

import numpy as np

from ..dims import ModelDims
from ..languages import n_languages, whisper_added_tokens
from .checkpoint import Checkpoint, expected_shapes, make_metadata
from .names import default_alignment_heads

# Small stand-ins for the published shapes: every size-dependent feature kept, width and depth cut.
SHAPES = {
    "large-v3": ModelDims(n_mels=128, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                          n_vocab=51866, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4),
    "large-v3-turbo": ModelDims(n_mels=128, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=8,
                                n_vocab=51866, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4),
}


def random_tensor(rng: np.random.Generator, name: str, shape: tuple) -> np.ndarray:
    """One tensor: layer-norm gains near 1, biases and norms' shifts near 0, weights ~ N(0, 1/fan_in)."""
    if name.endswith("ln.weight") or name.endswith("_ln.weight") or name.endswith("ln_post.weight"):
        return 1.0 + 0.1 * rng.standard_normal(shape)  # [d]
    if len(shape) == 1:
        return 0.1 * rng.standard_normal(shape)  # [d]
    fan_in = int(np.prod(shape[1:]))
    return rng.standard_normal(shape) / np.sqrt(fan_in)  # [out, in(, k)] or [rows, d]


def random_checkpoint(dims: ModelDims, vocabulary: Checkpoint, seed: int = 0, label: str = "random") -> Checkpoint:
    """A float16 checkpoint of ``dims`` with seeded random weights and the text vocabulary (tokens and
    merges) of ``vocabulary``, a model of the same family (multilingual or English-only); its special
    tokens follow ``dims.n_vocab`` (100 languages for 51,866 entries)."""
    rng = np.random.default_rng(seed)
    tensors = {name: random_tensor(rng, name, shape).astype(np.float16)
               for name, shape in expected_shapes(dims).items()}
    meta = vocabulary.metadata
    vocab, merges = json.loads(meta["tokenizer.vocab"]), json.loads(meta["tokenizer.merges"])
    eot = int(json.loads(meta["tokenizer.added_tokens"])["<|endoftext|>"])
    added = whisper_added_tokens(eot, n_languages(dims.n_vocab))
    source = f"random weights (seed {seed}) shaped as {label}; vocabulary of {meta['source']}"
    metadata = make_metadata(dims, default_alignment_heads(dims), vocab, merges, added, source)
    return Checkpoint(tensors=tensors, dims=dims, metadata=metadata)
