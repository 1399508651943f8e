"""The Paddle backend: Whisper's network written in Paddle ops, over the same safetensors weights.

The arithmetic is that of PaddleX's Whisper network in float32 (so on the CPU it reproduces the
goldens closely): Paddle's linear, conv1d, layer_norm (``dims.LAYER_NORM_EPS``), exact GELU and
softmax; queries and keys each scaled by ``dims.attention_scale`` after their projection; the causal
mask added to the scores; logits against the transposed token embedding. Linear weights are
transposed once at load to Paddle's [in, out] layout. The log-mel is Paddle's STFT, as PaddleX
computes it; ``log_mel_windows`` gives the same values window by window from a signal read twice
(``mel.StreamedLogMel`` with this backend's ``BlockSteps``), so a long file's log-mel is never held.

Tensors live on one Paddle place (CPU, a GPU, ...); every tensor is created there explicitly, so
the global Paddle device is never changed. The self-attention cache holds each layer's key and
value projections [batch, length, d] and grows by concatenation: ``decode`` never writes into a
cache it was given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

from .devices import PADDLE, PADDLE_CPU, Device, import_paddle, resolve_device
from .dims import LAYER_NORM_EPS, ModelDims, attention_scale, checked_mel, checked_tokens
from .formats.checkpoint import Checkpoint, load
from .formats.convert import to_paddle_state
from .model import check_heads
from .mel import (DYNAMIC_RANGE, HOP_LENGTH, LOG_MEL_SHIFT, N_FFT, POWER_FLOOR, BlockSteps, MelWindows,
                  StreamedLogMel, WholeLogMel, hann_window, log_mel_spectrogram, mel_filters)

# Frames per streamed log-mel block: a multiple of every width of column panel a BLAS kernel is likely
# to compute the mel product in (8 for MKL's AVX2 sgemm here; 16, 24, 32, 48 elsewhere), so that block
# seams fall on panel seams and each column is rounded as in the product over the whole clip.
MEL_BLOCK_FRAMES = 3072


@dataclass(frozen=True)
class PaddleCross:
    """One window's cross-attention keys [1, H, d_head, S] (scaled) and values [1, H, S, d_head], per layer."""

    keys: tuple
    values: tuple


@dataclass(frozen=True)
class PaddleCache:
    """Self-attention key and value projections [batch, length, d] per layer (empty tuples at length 0);
    every sequence of the batch attends to the one window of ``cross`` (broadcast over the batch)."""

    keys: tuple
    values: tuple
    cross: PaddleCross
    length: int
    batch: int


def place_of(paddle, device: Device):
    """The Paddle place of a resolved device."""
    if device.kind == "cpu":
        return paddle.CPUPlace()
    if device.kind in ("gpu", "dcu"):
        return paddle.CUDAPlace(device.index)
    if device.kind == "xpu":
        return paddle.XPUPlace(device.index)
    return paddle.CustomPlace(device.kind, device.index)


@dataclass(frozen=True)
class PaddleBackend:
    """Whisper in Paddle on one device; implements ``backend.Backend``."""

    dims: ModelDims
    device: Device
    tensors: Mapping[str, object]  # checkpoint name -> paddle.Tensor (Linear weights [in, out])
    paddle: object  # the paddle module
    place: object

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, device: Device) -> "PaddleBackend":
        """Put a checkpoint's tensors (float32, Paddle's layout: ``convert.to_paddle_state``) on a resolved
        Paddle ``device`` (``devices.resolve_device``)."""
        if device.backend != PADDLE:
            raise ValueError(f"device {device.name!r} runs on the NumPy backend; for Paddle on the CPU use "
                             f"{PADDLE_CPU!r}")
        paddle = import_paddle(device.name)
        place = place_of(paddle, device)
        tensors = {name: paddle.to_tensor(array, place=place)
                   for name, array in to_paddle_state(checkpoint, np.float32).items()}
        embedding = np.asarray(checkpoint.tensors["decoder.token_embedding.weight"], dtype=np.float32)
        tensors["decoder.token_embedding.weight.T"] = paddle.to_tensor(np.ascontiguousarray(embedding.T), place=place)
        return cls(dims=checkpoint.dims, device=device, tensors=MappingProxyType(tensors), paddle=paddle,
                   place=place)

    @property
    def name(self) -> str:
        """"paddle:cpu", "paddle:gpu:0", ..."""
        return PADDLE_CPU if self.device.kind == "cpu" else f"paddle:{self.device.name}"

    def _tensor(self, array: np.ndarray, dtype=np.float32):
        """A NumPy array as a tensor on this backend's place."""
        return self.paddle.to_tensor(np.ascontiguousarray(array, dtype=dtype), place=self.place)

    # ------------------------------------------------------------------------------ pieces

    def _linear(self, name: str, x):
        """Linear layer ``name`` (bias if the checkpoint has one) on x [..., d_in] -> [..., d_out]."""
        bias = self.tensors.get(f"{name}.bias")
        return self.paddle.nn.functional.linear(x, self.tensors[f"{name}.weight"], bias)

    def _layer_norm(self, name: str, x):
        """Layer norm ``name`` over the last axis of x [..., d]."""
        d = x.shape[-1]
        return self.paddle.nn.functional.layer_norm(x, [d], self.tensors[f"{name}.weight"],
                                                    self.tensors[f"{name}.bias"], LAYER_NORM_EPS)

    def _heads(self, x, n_head: int, perm: tuple):
        """x [B, T, d] -> per-head view, transposed by ``perm`` from [B, T, H, d_head]."""
        b, t, d = x.shape
        return self.paddle.transpose(x.reshape([b, t, n_head, d // n_head]), perm)

    def _attention(self, q, keys, values, n_head: int, mask=None):
        """Scaled-dot-product attention: q [B, T, d] (unscaled), keys [., H, d_head, S] (scaled),
        values [., H, S, d_head] -> [B, T, d]."""
        scale = attention_scale(q.shape[-1], n_head)
        qh = self._heads(q, n_head, (0, 2, 1, 3)) * scale  # [B, H, T, d_head]
        scores = qh @ keys  # [B, H, T, S]
        if mask is not None:
            scores = scores + mask  # [B, H, T, S]
        weights = self.paddle.nn.functional.softmax(scores, axis=-1)  # [B, H, T, S]
        return self.paddle.transpose(weights @ values, (0, 2, 1, 3)).flatten(start_axis=2)  # [B, T, d]

    def _keys_values(self, k, v, n_head: int):
        """Projections k, v [B, S, d] -> keys [B, H, d_head, S] (scaled), values [B, H, S, d_head]."""
        scale = attention_scale(k.shape[-1], n_head)
        return self._heads(k, n_head, (0, 2, 3, 1)) * scale, self._heads(v, n_head, (0, 2, 1, 3))

    def _mlp(self, prefix: str, x):
        """x + the block's feed-forward of x [B, T, d]."""
        h = self._layer_norm(f"{prefix}.mlp_ln", x)  # [B, T, d]
        h = self.paddle.nn.functional.gelu(self._linear(f"{prefix}.mlp.0", h))  # [B, T, 4d]
        return x + self._linear(f"{prefix}.mlp.2", h)  # [B, T, d]

    # ------------------------------------------------------------------------------ the Backend interface

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Whole-clip log-mel [n_mels, N // 160] with Paddle's STFT (clips under one FFT frame: ``mel``'s)."""
        audio = np.asarray(audio, dtype=np.float32)  # [N]
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio of shape [N], got {audio.shape}")
        if audio.shape[0] < N_FFT:  # Paddle's STFT wants a whole frame of samples before it pads them
            return log_mel_spectrogram(audio, self.dims.n_mels)
        paddle = self.paddle
        stft = self._stft(self._tensor(audio), center=True)  # [F, T + 1]
        log_spec = self._clamped_mel(stft[:, :-1].abs() ** 2).log10()  # [n_mels, T]
        log_spec = paddle.maximum(log_spec, log_spec.max() - DYNAMIC_RANGE)  # [n_mels, T]
        return ((log_spec + LOG_MEL_SHIFT) / LOG_MEL_SHIFT).numpy()  # [n_mels, T]

    def log_mel_windows(self, pieces) -> MelWindows:
        """The log-mel, window by window, of the signal ``pieces()`` gives on each pass: ``log_mel``'s
        values, bit for bit, without holding the clip or its log-mel.

        The blocks run ``log_mel``'s Paddle ops (``block_steps``); the floor and the shift are NumPy's,
        which round as Paddle's elementwise ops do. A clip of at most two frames is read whole and given
        ``log_mel``, so its fallback for clips under one FFT frame holds here too.
        """
        windows = StreamedLogMel(pieces, self.dims.n_mels, self.block_steps())
        if windows.n_frames > N_FFT // HOP_LENGTH:
            return windows
        return WholeLogMel(self.log_mel(np.concatenate([np.zeros(0, np.float32), *pieces()])))  # [n_mels, <= 2]

    def block_steps(self) -> BlockSteps:
        """``log_mel``'s arithmetic for ``mel.mel_power_blocks``: its ops on each block, in blocks of
        MEL_BLOCK_FRAMES whose last one takes in the frames after it, as the whole clip's product has no
        short product at its end."""
        return BlockSteps(power=self._block_mel_power, log=self._log10, block=MEL_BLOCK_FRAMES, join_tail=True)

    def _stft(self, samples, center: bool):
        """Paddle's STFT of a samples tensor [N] (periodic Hann window of N_FFT, hop HOP_LENGTH); ``center``
        reflect-pads N_FFT // 2 samples at both ends first -> complex [F, frames]."""
        return self.paddle.signal.stft(samples, N_FFT, HOP_LENGTH, window=self._tensor(hann_window(N_FFT)),
                                       center=center)

    def _clamped_mel(self, power):
        """Mel power of |STFT|^2 [F, T], clamped at POWER_FLOOR -> [n_mels, T] (a tensor)."""
        return self.paddle.clip(self._tensor(mel_filters(self.dims.n_mels)) @ power, min=POWER_FLOOR)

    def _block_mel_power(self, padded: np.ndarray, n_frames: int) -> np.ndarray:
        """Clamped mel power float32 [n_mels, n_frames] of the first ``n_frames`` frames of reflect-padded
        samples: ``log_mel``'s STFT without its own padding (the block is padded already), |z|^2, mel."""
        samples = self._tensor(padded[:(n_frames - 1) * HOP_LENGTH + N_FFT])  # [(n_frames - 1) * 160 + 400]
        stft = self._stft(samples, center=False)  # [F, n_frames]
        return self._clamped_mel(stft.abs() ** 2).numpy()  # [n_mels, n_frames]

    def _log10(self, power: np.ndarray) -> np.ndarray:
        """Paddle's log10 of clamped mel power [n_mels, n] -> float32 [n_mels, n]."""
        return self._tensor(power).log10().numpy()  # [n_mels, n]

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """Audio features [n_audio_ctx, d] of one window's mel [n_mels, 3000]."""
        dims, F = self.dims, self.paddle.nn.functional
        mel = checked_mel(dims, mel)  # [n_mels, 3000]
        t = self.tensors
        x = F.gelu(F.conv1d(self._tensor(mel[None]), t["encoder.conv1.weight"], t["encoder.conv1.bias"],
                            padding=1))  # [1, d, 3000]
        x = F.gelu(F.conv1d(x, t["encoder.conv2.weight"], t["encoder.conv2.bias"], stride=2, padding=1))  # [1, d, 1500]
        x = self.paddle.transpose(x, (0, 2, 1)) + t["encoder.positional_embedding"]  # [1, 1500, d]
        n_head = dims.n_audio_head
        for i in range(dims.n_audio_layer):
            prefix = f"encoder.blocks.{i}"
            h = self._layer_norm(f"{prefix}.attn_ln", x)  # [1, 1500, d]
            keys, values = self._keys_values(self._linear(f"{prefix}.attn.key", h),
                                             self._linear(f"{prefix}.attn.value", h), n_head)
            o = self._attention(self._linear(f"{prefix}.attn.query", h), keys, values, n_head)  # [1, 1500, d]
            x = x + self._linear(f"{prefix}.attn.out", o)  # [1, 1500, d]
            x = self._mlp(prefix, x)
        return self._layer_norm("encoder.ln_post", x)[0].numpy()  # [1500, d]

    def cross_kv(self, audio_features: np.ndarray) -> PaddleCross:
        """Every decoder layer's cross-attention keys and values for one window's features [S, d]."""
        xa = self._tensor(np.asarray(audio_features, dtype=np.float32)[None])  # [1, S, d]
        keys, values = [], []
        for i in range(self.dims.n_text_layer):
            name = f"decoder.blocks.{i}.cross_attn"
            k, v = self._keys_values(self._linear(f"{name}.key", xa), self._linear(f"{name}.value", xa),
                                     self.dims.n_text_head)
            keys.append(k)  # [1, H, d_head, S]
            values.append(v)  # [1, H, S, d_head]
        return PaddleCross(tuple(keys), tuple(values))

    def new_cache(self, cross: PaddleCross, batch: int = 1) -> PaddleCache:
        """An empty cache for ``batch`` sequences attending to ``cross``."""
        return PaddleCache(keys=(), values=(), cross=cross, length=0, batch=batch)

    def _causal_mask(self, start: int, n_new: int):
        """0 where new token i (at position start + i) may see position j, -inf after it -> [n_new, start + n_new]."""
        j = np.arange(start + n_new)[None, :]  # [1, S]
        i = np.arange(n_new)[:, None] + start  # [T, 1]
        return self._tensor(np.where(j > i, -np.inf, 0.0))  # [T, S]

    def _decoder_pass(self, tokens, cache: PaddleCache, probe: Optional[Callable] = None):
        """The decoder over new tokens [B, t] after the cache's tokens -> (final hidden states
        [B, t, d] after decoder.ln, next cache). ``probe(i, q)``, when given, sees layer i's
        cross-attention query projections q [B, t, d] (unscaled) before they attend."""
        dims = self.dims
        tokens = checked_tokens(dims, tokens, cache.batch, cache.length, np.int64)  # [B, t]
        n_new, start = tokens.shape[1], cache.length
        paddle, t = self.paddle, self.tensors
        ids = self._tensor(tokens, np.int64)  # [B, t]
        x = (paddle.nn.functional.embedding(ids, t["decoder.token_embedding.weight"])
             + t["decoder.positional_embedding"][start:start + n_new])  # [B, t, d]
        mask = self._causal_mask(start, n_new) if n_new > 1 else None  # one new token sees everything
        n_head = dims.n_text_head
        keys, values = [], []
        for i in range(dims.n_text_layer):
            prefix = f"decoder.blocks.{i}"
            h = self._layer_norm(f"{prefix}.attn_ln", x)  # [B, t, d]
            k, v = self._linear(f"{prefix}.attn.key", h), self._linear(f"{prefix}.attn.value", h)  # [B, t, d]
            if start:
                k = paddle.concat([cache.keys[i], k], axis=1)  # [B, start + t, d]
                v = paddle.concat([cache.values[i], v], axis=1)  # [B, start + t, d]
            keys.append(k)
            values.append(v)
            kh, vh = self._keys_values(k, v, n_head)
            x = x + self._linear(f"{prefix}.attn.out", self._attention(self._linear(f"{prefix}.attn.query", h),
                                                                        kh, vh, n_head, mask))  # [B, t, d]
            h = self._layer_norm(f"{prefix}.cross_attn_ln", x)  # [B, t, d]
            q = self._linear(f"{prefix}.cross_attn.query", h)  # [B, t, d]
            if probe is not None:
                probe(i, q)
            o = self._attention(q, cache.cross.keys[i], cache.cross.values[i], n_head)  # [B, t, d]
            x = x + self._linear(f"{prefix}.cross_attn.out", o)  # [B, t, d]
            x = self._mlp(prefix, x)
        x = self._layer_norm("decoder.ln", x)  # [B, t, d]
        return x, dataclasses.replace(cache, keys=tuple(keys), values=tuple(values), length=start + n_new)

    def decode(self, tokens, cache: PaddleCache, logits_at: Optional[Sequence[int]] = None):
        """(logits float32 [B, t, V], next cache) of new tokens [B, t] after the cache's tokens;
        ``logits_at`` picks positions of the new tokens (every one is computed, as PaddleX does)."""
        x, cache = self._decoder_pass(tokens, cache)  # [B, t, d]
        logits = (x @ self.tensors["decoder.token_embedding.weight.T"]).numpy()  # [B, t, V]
        n_new = logits.shape[1]
        if logits_at is not None:
            logits = logits[:, np.arange(n_new)[np.asarray(logits_at, dtype=np.intp)]]  # [B, P, V]
        return logits, cache

    def alignment(self, cross: PaddleCross, tokens, heads: Sequence[Tuple[int, int]]):
        """A forced pass over one sequence tokens [T] from an empty cache -> (qk float32 [len(heads), T, S],
        the alignment heads' pre-softmax cross-attention scores as ``_attention`` forms them; logits
        float32 [T, V])."""
        check_heads(self.dims, heads)
        tokens = np.asarray(tokens, dtype=np.int64).reshape(1, -1)  # [1, T]
        n_head = self.dims.n_text_head
        scores = [None] * len(heads)

        def collect(layer: int, q) -> None:
            qh = self._heads(q, n_head, (0, 2, 1, 3)) * attention_scale(q.shape[-1], n_head)  # [1, H, T, d_head]
            for n, (wanted, head) in enumerate(heads):
                if wanted == layer:
                    scores[n] = qh[0, head] @ cross.keys[layer][0, head]  # [T, S]

        x, _ = self._decoder_pass(tokens, self.new_cache(cross), collect)  # [1, T, d]
        logits = (x[0] @ self.tensors["decoder.token_embedding.weight.T"]).numpy()  # [T, V]
        qk = self.paddle.stack(scores).numpy()  # [A, T, S]
        return qk, logits

    def reorder(self, cache: PaddleCache, indices: Sequence[int]) -> PaddleCache:
        """The cache whose sequence b continues old sequence indices[b]; the batch may change."""
        index = self._tensor(np.asarray(indices, dtype=np.int64), np.int64)  # [B']
        pick = self.paddle.index_select
        return dataclasses.replace(cache, keys=tuple(pick(k, index, axis=0) for k in cache.keys),
                                   values=tuple(pick(v, index, axis=0) for v in cache.values), batch=len(indices))

    def language_probs(self, audio_features: np.ndarray, sot_id: int, language_token_ids: Sequence[int],
                       cross: Optional[PaddleCross] = None) -> np.ndarray:
        """Softmax over the language tokens' logits after one step on [sot_id] -> [n_languages]."""
        if cross is None:
            cross = self.cross_kv(audio_features)
        logits, _ = self.decode([[sot_id]], self.new_cache(cross))  # [1, 1, V]
        picked = self._tensor(logits[0, 0][np.asarray(language_token_ids, dtype=np.intp)][None, :])  # [1, n_languages]
        return self.paddle.nn.functional.softmax(picked, axis=-1)[0].numpy()  # [n_languages]


def paddle_backend(path, device: Optional[str] = PADDLE_CPU) -> PaddleBackend:
    """Factory for the parity command: the Paddle backend of a model file on ``device`` (default the CPU)."""
    return PaddleBackend.from_checkpoint(load(path), resolve_device(device))
