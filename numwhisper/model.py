"""Whisper's transformer (audio encoder and text decoder) as plain functions over the weights.

Weights are held in a frozen ``Weights`` whose tensor names are the checkpoint's (OpenAI's). The
decoder keeps its keys and values in an explicit ``KVCache`` that ``decode`` takes and returns:
self-attention rows grow by the tokens of each call; cross-attention keys and values are made once
per audio window by ``cross_kv`` and shared by every sequence (beam) of the batch.

How each product runs (few-row kernel or BLAS, float16 weights widened) is ``ops``' business; this
module is the network. The arithmetic mirrors PaddleX's Whisper network in float32: queries and keys
are each scaled by ``dims.attention_scale`` after their bias; exact (erf) GELU; layer norm with
``dims.LAYER_NORM_EPS``; the output projection is
the transposed token embedding; language probabilities are a softmax over the language tokens' logits
after one decoder step on <|startoftranscript|>. The encoder's convolutions and the projections of
its first ``EXACT_LAYERS`` blocks are summed in float64 and rounded to float32 where Paddle rounds
(see ``encode``); everything else, the decoder included, is float32. The decoder's weight matrices
stay in the checkpoint's float16 (``keeps_float16``): widened exactly as they are read, they give the
same float32 products from half the memory traffic, which is what bounds a decoder step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import kernels, ops
from .dims import ModelDims, attention_scale, checked_mel, checked_tokens
from .formats.checkpoint import Checkpoint, load

EXACT_LAYERS = 2  # encoder blocks whose projections sum in float64 (see encode)


@dataclass(frozen=True)
class Weights:
    """A model's tensors, named and laid out as in the checkpoint, C-contiguous and read-only.

    Float32, except the decoder's weight matrices (its Linear weights and the token embedding) when
    the checkpoint stores them in float16: those stay float16, memory-mapped from the file (see
    ``keeps_float16``), and are widened exactly as products read them.
    """

    dims: ModelDims
    tensors: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        """The tensor of that checkpoint name, e.g. w["decoder.ln.weight"]."""
        return self.tensors[name]


@dataclass(frozen=True)
class CrossKV:
    """Cross-attention keys and values of one audio window, per decoder layer.

    keys[i] [n_head, d_head, n_audio_ctx] (already scaled by d_head**-0.25),
    values[i] [n_head, n_audio_ctx, d_head].
    """

    keys: tuple
    values: tuple


@dataclass(frozen=True)
class KVCache:
    """Decoder state for a batch of sequences: self-attention keys and values plus the window's CrossKV.

    keys[i], values[i] [batch, n_text_ctx, d] per layer, of which rows [:length] are filled (keys
    scaled by d_head**-0.25). ``decode`` and ``reorder`` write into these buffers and return the
    cache to use next: a cache that was passed to them must not be used again.
    """

    keys: tuple
    values: tuple
    cross: CrossKV
    length: int

    @property
    def batch(self) -> int:
        """Number of sequences (beams) in the cache."""
        return self.keys[0].shape[0]


def keeps_float16(name: str, tensor: np.ndarray) -> bool:
    """Whether a checkpoint tensor stays float16 in Weights: a decoder weight matrix stored in float16.

    The decoder reads every such matrix once per token, so memory traffic sets its speed; 16-bit
    storage halves it, and widening each element as it is read gives the same float32 products.
    """
    return (tensor.dtype == np.float16 and tensor.ndim == 2 and name.startswith("decoder.")
            and name != "decoder.positional_embedding")


def _as_float32(tensor: np.ndarray) -> np.ndarray:
    """A checkpoint tensor as a new C-contiguous float32 array (exact for float16 sources)."""
    if tensor.dtype == np.float16 and tensor.ndim == 2:
        return kernels.half_to_float32(np.ascontiguousarray(tensor).view(np.uint16))  # [N, D]
    return np.array(tensor, dtype=np.float32, order="C")


def weights_from_checkpoint(checkpoint: Checkpoint) -> Weights:
    """Weights of a checkpoint: float32 copies, and views of the float16 matrices ``keeps_float16`` names."""
    tensors = {}
    for name, tensor in checkpoint.tensors.items():
        array = np.asarray(tensor) if keeps_float16(name, tensor) else _as_float32(tensor)
        array.flags.writeable = False
        tensors[name] = array
    return Weights(dims=checkpoint.dims, tensors=MappingProxyType(tensors))


def load_weights(path) -> Weights:
    """Read a numwhisper model file into float32 Weights."""
    return weights_from_checkpoint(load(path))


def _norm(w: Weights, name: str, x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Layer norm ``name`` (e.g. 'encoder.ln_post') over the rows of x [N, d] -> [N, d] of dtype."""
    return ops.layer_norm(x, w[f"{name}.weight"], w[f"{name}.bias"], dtype)


def _add_residual(w: Weights, name: str, x: np.ndarray, y: np.ndarray) -> None:
    """x += y + bias of Linear ``name``, in place: x [N, d] float32, y [N, d] (the product, unbiased)."""
    ops.add_bias_residual(x, y, w[f"{name}.bias"])


def _qkv(w: Weights, name: str, h: np.ndarray, scale: np.float32):
    """Query, key and value projections of attention ``name`` on h [N, d]; q and k scaled -> 3x [N, d].

    The products run in h's dtype.
    """
    q = ops.linear(h, w[f"{name}.query.weight"])  # [N, d]
    kernels.bias_scale(q, w[f"{name}.query.bias"], scale)
    k = ops.linear(h, w[f"{name}.key.weight"])  # [N, d]
    kernels.scale_(k, scale)
    v = ops.linear(h, w[f"{name}.value.weight"])  # [N, d]
    kernels.add_bias(v, w[f"{name}.value.bias"])
    return q, k, v


def _scale(d: int, n_head: int) -> np.float32:
    """``dims.attention_scale`` in float32, as the kernels multiply by it."""
    return np.float32(attention_scale(d, n_head))


def _encoder_self_attention(w: Weights, name: str, h: np.ndarray, n_head: int) -> np.ndarray:
    """Unmasked multi-head self-attention ``name`` over h [T, d] (float32 or float64 holding float32
    values), before the out projection -> float32 [T, d].

    The projections run in h's dtype; the attention products in float32 BLAS, one head at a time
    into one reused [T, T] buffer.
    """
    n_ctx, d = h.shape
    d_head = d // n_head
    q, k, v = (a.astype(np.float32, copy=False) for a in _qkv(w, name, h, _scale(d, n_head)))  # 3x [T, d]
    out = np.empty((n_ctx, d), np.float32)  # [T, d]
    scores = np.empty((n_ctx, n_ctx), np.float32)  # [T, T]
    for head in range(n_head):
        cols = slice(head * d_head, (head + 1) * d_head)
        np.matmul(q[:, cols], k[:, cols].T, out=scores)  # [T, T]
        kernels.softmax_parallel(scores)
        out[:, cols] = scores @ v[:, cols]  # [T, d_head]
    return out  # [T, d]


def _encoder_block(w: Weights, prefix: str, x: np.ndarray, n_head: int, dtype) -> None:
    """One residual attention block of the encoder, updating x [T, d] (float32) in place; its four
    projections sum in ``dtype`` (float64 or float32)."""
    h = _norm(w, f"{prefix}.attn_ln", x, dtype)  # [T, d]
    o = _encoder_self_attention(w, f"{prefix}.attn", h, n_head).astype(dtype, copy=False)  # [T, d]
    _add_residual(w, f"{prefix}.attn.out", x, ops.linear(o, w[f"{prefix}.attn.out.weight"]))  # [T, d]
    h = _norm(w, f"{prefix}.mlp_ln", x, dtype)  # [T, d]
    m = ops.linear(h, w[f"{prefix}.mlp.0.weight"])  # [T, 4d]
    kernels.bias_gelu_parallel(m, w[f"{prefix}.mlp.0.bias"])
    _add_residual(w, f"{prefix}.mlp.2", x, ops.linear(m, w[f"{prefix}.mlp.2.weight"]))  # [T, d]


def encode(w: Weights, mel: np.ndarray) -> np.ndarray:
    """Audio features of one 30 s window: mel [n_mels, 2 n_audio_ctx] -> float32 [n_audio_ctx, n_audio_state].

    Float32 throughout, except the convolutions and the projections of the first ``EXACT_LAYERS``
    blocks, which sum in float64 and round to float32 where Paddle's float32 result would be. Rounding there is what
    the later blocks amplify: with every product in float32 BLAS the output differs from Paddle's by
    up to 8.7e-4 on the golden clips; with those first projections summed exactly, by 4.5e-4, as
    with every product in float64 (4.4e-4, which is Paddle's own float32 error).
    """
    dims = w.dims
    mel = checked_mel(dims, mel)  # [n_mels, 3000]
    x = kernels.conv1d_gelu(mel.T, w["encoder.conv1.weight"], w["encoder.conv1.bias"], stride=1)  # [3000, d]
    x = kernels.conv1d_gelu(x, w["encoder.conv2.weight"], w["encoder.conv2.bias"], stride=2)  # [1500, d]
    x += w["encoder.positional_embedding"]  # [1500, d]
    for i in range(dims.n_audio_layer):
        dtype = np.float64 if i < EXACT_LAYERS else np.float32
        _encoder_block(w, f"encoder.blocks.{i}", x, dims.n_audio_head, dtype)
    return _norm(w, "encoder.ln_post", x)  # [1500, d]


def cross_kv(w: Weights, audio_features: np.ndarray) -> CrossKV:
    """Every decoder layer's cross-attention keys and values for one window's audio_features [S, d].

    Keys come from the transposed product (weight times xa transposed) and values one head at a time,
    so both land in the kernels' layouts without a transposing copy. Invariant: each holds the bits of
    the plain product ``ops.linear(xa, weight)``, rearranged
    (``tests/test_model_parity.py::test_cross_kv_layouts_hold_the_plain_products_bits``).
    """
    dims = w.dims
    xa = np.asarray(audio_features, dtype=np.float32)  # [S, d]
    n_ctx, d = xa.shape
    n_head = dims.n_text_head
    d_head = d // n_head
    scale = _scale(d, n_head)
    keys, values = [], []
    for i in range(dims.n_text_layer):
        name = f"decoder.blocks.{i}.cross_attn"
        k = ops.widened(w[f"{name}.key.weight"], np.float32) @ xa.T  # [d, S], i.e. [H, d_head, S]
        kernels.scale_(k, scale)
        keys.append(k.reshape(n_head, d_head, n_ctx))  # [H, d_head, S]
        values.append(_head_major_values(xa, w[f"{name}.value.weight"], w[f"{name}.value.bias"], n_head))
    return CrossKV(keys=tuple(keys), values=tuple(values))


def _head_major_values(xa: np.ndarray, weight: np.ndarray, bias: np.ndarray, n_head: int) -> np.ndarray:
    """Value projection of xa [S, d] plus bias, laid out head by head -> [H, S, d_head]; one BLAS
    product per head."""
    n_ctx, d = xa.shape
    d_head = d // n_head
    weight = ops.widened(weight, np.float32)  # [d, d]
    values = np.empty((n_head, n_ctx, d_head), np.float32)  # [H, S, d_head]
    for head in range(n_head):
        rows = slice(head * d_head, (head + 1) * d_head)
        np.matmul(xa, weight[rows].T, out=values[head])  # [S, d_head]
        kernels.add_bias(values[head], bias[rows])
    return values


def new_cache(w: Weights, cross: CrossKV, batch: int = 1) -> KVCache:
    """An empty decoder cache for ``batch`` sequences attending to one window (``cross``)."""
    dims = w.dims
    shape = (batch, dims.n_text_ctx, dims.n_text_state)
    keys = tuple(np.empty(shape, np.float32) for _ in range(dims.n_text_layer))  # each [B, n_text_ctx, d]
    values = tuple(np.empty(shape, np.float32) for _ in range(dims.n_text_layer))  # each [B, n_text_ctx, d]
    return KVCache(keys=keys, values=values, cross=cross, length=0)


def reorder(cache: KVCache, indices: Sequence[int]) -> KVCache:
    """The cache whose sequence b continues old sequence indices[b] (beam search); the batch may change."""
    index = np.asarray(indices, dtype=np.intp)  # [B']
    n = cache.length
    if index.shape[0] == cache.batch:
        moved = np.flatnonzero(index != np.arange(index.shape[0]))  # [M] sequences that change
        if moved.shape[0]:
            for buffer in cache.keys + cache.values:
                buffer[moved, :n] = buffer[index[moved], :n]  # [M, n, d] (the right side is a copy)
        return cache
    keys, values = [], []
    for src, dst in ((cache.keys, keys), (cache.values, values)):
        for buffer in src:
            new = np.empty((index.shape[0],) + buffer.shape[1:], np.float32)  # [B', n_text_ctx, d]
            new[:, :n] = buffer[index, :n]  # [B', n, d]
            dst.append(new)
    return dataclasses.replace(cache, keys=tuple(keys), values=tuple(values))


CrossProbe = Callable[[int, np.ndarray], None]  # (decoder layer, its scaled cross-attention queries [B T, d])


def _decoder_block(w: Weights, i: int, x: np.ndarray, cache: KVCache, n_batch: int, n_new: int,
                   probe: Optional[CrossProbe] = None) -> None:
    """Decoder block i on x [B * T_new, d] in place; appends this call's keys/values to the cache.

    ``probe(i, q)``, when given, sees the block's cross-attention queries (scaled, [B T, d]) before
    they attend (``alignment``)."""
    prefix = f"decoder.blocks.{i}"
    n_head = w.dims.n_text_head
    d = x.shape[1]
    start, stop = cache.length, cache.length + n_new
    h = _norm(w, f"{prefix}.attn_ln", x)  # [B T, d]
    q, k, v = _qkv(w, f"{prefix}.attn", h, _scale(d, n_head))  # 3x [B T, d]
    cache.keys[i][:, start:stop] = k.reshape(n_batch, n_new, d)  # [B, T_new, d]
    cache.values[i][:, start:stop] = v.reshape(n_batch, n_new, d)  # [B, T_new, d]
    o = kernels.causal_self_attention(q.reshape(n_batch, n_new, d), cache.keys[i], cache.values[i],
                                      n_head, start)  # [B, T_new, d]
    o = ops.linear(o.reshape(n_batch * n_new, d), w[f"{prefix}.attn.out.weight"])  # [B T, d]
    _add_residual(w, f"{prefix}.attn.out", x, o)
    h = _norm(w, f"{prefix}.cross_attn_ln", x)  # [B T, d]
    q = ops.linear(h, w[f"{prefix}.cross_attn.query.weight"])  # [B T, d]
    kernels.bias_scale(q, w[f"{prefix}.cross_attn.query.bias"], _scale(d, n_head))
    if probe is not None:
        probe(i, q)
    o = ops.cross_attention(q, cache.cross.keys[i], cache.cross.values[i])  # [B T, d]
    o = ops.linear(o, w[f"{prefix}.cross_attn.out.weight"])  # [B T, d]
    _add_residual(w, f"{prefix}.cross_attn.out", x, o)
    h = _norm(w, f"{prefix}.mlp_ln", x)  # [B T, d]
    m = ops.linear(h, w[f"{prefix}.mlp.0.weight"])  # [B T, 4d]
    kernels.bias_gelu(m, w[f"{prefix}.mlp.0.bias"])
    _add_residual(w, f"{prefix}.mlp.2", x, ops.linear(m, w[f"{prefix}.mlp.2.weight"]))  # [B T, d]


def decode(w: Weights, tokens, cache: KVCache, logits_at: Optional[Sequence[int]] = None,
           probe: Optional[CrossProbe] = None):
    """Run the decoder on new tokens [B, T_new] after the cache's ``length`` tokens.

    Returns (logits [B, T_new, n_vocab] float32, the cache holding the new tokens too). Positions
    continue from cache.length; token t of the call sees every earlier token and itself.
    ``logits_at``: indices into the new tokens (-1 the last) whose logits alone are computed and
    returned, [B, len(logits_at), n_vocab], each equal bit for bit to its row of the full call.
    ``probe``: called with each layer's scaled cross-attention queries (see ``_decoder_block``).
    """
    dims = w.dims
    tokens = checked_tokens(dims, tokens, cache.batch, cache.length)  # [B, T_new]
    n_batch, n_new = tokens.shape
    start = cache.length
    embedding = w["decoder.token_embedding.weight"]  # [n_vocab, d] float32 or float16
    x = embedding[tokens].astype(np.float32) + w["decoder.positional_embedding"][start:start + n_new]  # [B, T_new, d]
    x = x.reshape(n_batch * n_new, dims.n_text_state)  # [B T, d]
    for i in range(dims.n_text_layer):
        _decoder_block(w, i, x, cache, n_batch, n_new, probe)
    x = _norm(w, "decoder.ln", x)  # [B T, d]
    cache = dataclasses.replace(cache, length=start + n_new)
    if logits_at is None:
        logits = ops.linear(x, embedding)  # [B T, n_vocab] (tied output projection)
        return logits.reshape(n_batch, n_new, dims.n_vocab), cache
    at = np.arange(n_new)[np.asarray(logits_at, dtype=np.intp)]  # [P] in [0, T_new)
    rows = (np.arange(n_batch)[:, None] * n_new + at).reshape(-1)  # [B P] rows of x
    logits = ops.linear_at(x, rows, embedding)  # [B P, n_vocab]
    return logits.reshape(n_batch, at.shape[0], dims.n_vocab), cache


def check_heads(dims: ModelDims, heads: Sequence[Tuple[int, int]]) -> None:
    """ValueError unless ``heads`` names at least one (decoder layer, head) and each exists in a model of ``dims``."""
    if len(heads) == 0:
        raise ValueError("no alignment heads given: word timing needs at least one (decoder layer, head)")
    for layer, head in heads:
        if not (0 <= layer < dims.n_text_layer and 0 <= head < dims.n_text_head):
            raise ValueError(f"alignment head ({layer}, {head}) is outside the decoder's "
                             f"{dims.n_text_layer} layers x {dims.n_text_head} heads")


def alignment(w: Weights, cross: CrossKV, tokens, heads: Sequence[Tuple[int, int]]):
    """A forced decoder pass over one sequence ``tokens`` [T] (from an empty cache) for word timing.

    Returns (qk, logits): qk float32 [len(heads), T, n_audio_ctx] the pre-softmax cross-attention
    scores of each (decoder layer, head) in ``heads`` (queries and keys each scaled by
    d_head**-0.25, as the attention itself uses them), and logits float32 [T, n_vocab].
    """
    tokens = np.asarray(tokens, dtype=np.int64).reshape(1, -1)  # [1, T]
    check_heads(w.dims, heads)
    n_head = w.dims.n_text_head
    d_head = w.dims.n_text_state // n_head
    n_ctx = cross.keys[0].shape[-1]
    qk = np.empty((len(heads), tokens.shape[1], n_ctx), np.float32)  # [A, T, S]

    def collect(layer: int, q: np.ndarray) -> None:
        for n, (wanted, head) in enumerate(heads):
            if wanted == layer:
                np.matmul(q[:, head * d_head:(head + 1) * d_head], cross.keys[layer][head], out=qk[n])  # [T, S]

    logits, _ = decode(w, tokens, new_cache(w, cross, batch=1), probe=collect)  # [1, T, n_vocab]
    return qk, logits[0]


def language_probs(w: Weights, audio_features: np.ndarray, sot_id: int, language_token_ids: Sequence[int],
                   cross: Optional[CrossKV] = None) -> np.ndarray:
    """Probabilities of the language tokens [n_languages] (float32, in the order given), as PaddleX's
    detect_language: one decoder step on [sot_id], every other logit masked out, softmax.

    Pass ``cross`` (from cross_kv on the same audio_features) to reuse it.
    """
    if cross is None:
        cross = cross_kv(w, audio_features)
    logits, _ = decode(w, [[sot_id]], new_cache(w, cross, batch=1))  # [1, 1, n_vocab]
    probs = logits[0, 0][np.asarray(language_token_ids, dtype=np.intp)][None, :]  # [1, n_languages]
    kernels.softmax(probs)
    return probs[0]  # [n_languages]
