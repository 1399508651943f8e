"""A second Whisper, written plainly in NumPy (float32 products, no Numba), with switches that break it.

The parity command must pass this backend as it is, and fail each ``Flaws`` switch at the stage
where that flaw first shows. It is written from the contract in README "The backend contract" and
shares nothing with ``numwhisper.model`` but the model file reader and the mel filterbank formula.
Every flaw is one a real port could have; ``tests/broken_backend.py`` names them as factories.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.special import erf

from numwhisper.formats.checkpoint import load
from numwhisper.mel import mel_filters


@dataclass(frozen=True)
class Flaws:
    """What to get wrong (all False: a correct backend)."""

    tanh_gelu: bool = False              # GELU's tanh approximation instead of the erf form
    layer_norm_eps: float = 1e-5         # Whisper's is 1e-5
    bfloat16_encoder: bool = False       # encoder weights and activations rounded to bfloat16
    no_query_scaling: bool = False       # queries left unscaled (keys still scaled by d_head ** -0.25)
    position_offset: int = 0             # the decoder's positional embedding read this many rows late
    natural_log_mel: bool = False        # ln instead of log10 in the log-mel
    hop: int = 160                       # the STFT hop (Whisper's is 160)
    reorder_ignores_indices: bool = False  # reorder keeps rows 0..n-1 (row 0 repeated when too few)
    cache_drops_oldest: bool = False     # a filled cache keeps its length: each new token evicts the oldest
    logits_at_ignored: bool = False      # decode returns every position even when logits_at is given
    language_probs_without_cross: bool = False  # language_probs takes no cross argument
    unchecked_ids: bool = False          # no ValueError for ids outside [0, n_vocab) (NumPy wraps -1)
    positions_wrap: bool = False         # no ValueError past n_text_ctx: positions wrap around
    unchecked_mel: bool = False          # no ValueError for a mel that is not [n_mels, 3000]


def bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


@dataclass(frozen=True)
class Cache:
    """Self-attention keys and values per layer [B, T, d], the window's cross state, the token count."""

    keys: tuple
    values: tuple
    cross: tuple  # per layer (keys [n_audio_ctx, d], values [n_audio_ctx, d])
    length: int
    batch: int


class PlainBackend:
    """Whisper over a numwhisper model file, in plain NumPy; see ``Flaws`` for the switches."""

    def __init__(self, path, flaws: Flaws = Flaws()):
        checkpoint = load(path)
        self.dims, self.flaws, self.name = checkpoint.dims, flaws, "plain-numpy"
        self.w = {name: np.asarray(t, dtype=np.float32) for name, t in checkpoint.tensors.items()}
        if flaws.bfloat16_encoder:
            self.w.update({n: bfloat16(t) for n, t in self.w.items() if n.startswith("encoder.")})

    # ------------------------------------------------------------------------------ pieces

    def gelu(self, x):
        if self.flaws.tanh_gelu:
            return 0.5 * x * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x ** 3)))
        return 0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))

    def layer_norm(self, x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + np.float32(self.flaws.layer_norm_eps)) * self.w[prefix + ".weight"] \
            + self.w[prefix + ".bias"]

    def linear(self, x, prefix):
        y = x @ self.w[prefix + ".weight"].T
        return y + self.w[prefix + ".bias"] if prefix + ".bias" in self.w else y

    def heads(self, x, n_head):  # [..., T, d] -> [..., H, T, d_head]
        return np.swapaxes(x.reshape(*x.shape[:-1], n_head, -1), -2, -3)

    def attention(self, q, k, v, n_head, mask=None):  # q [.., Tq, d], k/v [.., Tk, d] -> [.., Tq, d]
        scale = np.float32((q.shape[-1] // n_head) ** -0.25)
        q = self.heads(q if self.flaws.no_query_scaling else q * scale, n_head)
        scores = q @ np.swapaxes(self.heads(k * scale, n_head), -1, -2)  # [.., H, Tq, Tk]
        if mask is not None:
            scores = scores + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        out = (scores / scores.sum(-1, keepdims=True)) @ self.heads(v, n_head)  # [.., H, Tq, d_head]
        out = np.swapaxes(out, -2, -3)
        return out.reshape(*out.shape[:-2], -1)

    def conv(self, x, prefix, stride):  # x [C, T] -> [d, T // stride], kernel 3, padding 1
        padded = np.pad(x, ((0, 0), (1, 1)))
        n_out = (x.shape[1] - 1) // stride + 1
        cols = np.stack([padded[:, k:k + stride * n_out:stride] for k in range(3)], axis=1)  # [C, 3, T']
        weight = self.w[prefix + ".weight"]  # [d, C, 3]
        return weight.reshape(weight.shape[0], -1) @ cols.reshape(-1, n_out) + self.w[prefix + ".bias"][:, None]

    # ------------------------------------------------------------------------------ the contract

    def log_mel(self, audio):
        audio, hop = np.asarray(audio, dtype=np.float32), self.flaws.hop
        n_frames = audio.shape[0] // hop
        padded = np.pad(audio, 200, mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::hop][:n_frames]  # [T, 400]
        window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)).astype(np.float32)
        power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # [T, 201] float64
        mel = np.maximum(mel_filters(self.dims.n_mels).astype(np.float64) @ power.T, 1e-10)  # [n_mels, T]
        log = np.log(mel) if self.flaws.natural_log_mel else np.log10(mel)
        log = np.maximum(log, log.max() - 8.0) if log.size else log
        return ((log + 4.0) / 4.0).astype(np.float32)

    def encode(self, mel):
        mel = np.asarray(mel, dtype=np.float32)
        if not self.flaws.unchecked_mel and mel.shape != (self.dims.n_mels, 2 * self.dims.n_audio_ctx):
            raise ValueError(f"encode: mel must be [{self.dims.n_mels}, {2 * self.dims.n_audio_ctx}]")
        round_ = bfloat16 if self.flaws.bfloat16_encoder else (lambda a: a)
        x = round_(self.gelu(self.conv(mel.reshape(self.dims.n_mels, -1), "encoder.conv1", 1)))
        x = round_(self.gelu(self.conv(x, "encoder.conv2", 2)).T + self.w["encoder.positional_embedding"])
        for i in range(self.dims.n_audio_layer):
            p = f"encoder.blocks.{i}"
            h = self.layer_norm(x, p + ".attn_ln")
            x = round_(x + self.linear(self.attention(self.linear(h, p + ".attn.query"), self.linear(h, p + ".attn.key"),
                                                      self.linear(h, p + ".attn.value"), self.dims.n_audio_head),
                                       p + ".attn.out"))
            h = self.layer_norm(x, p + ".mlp_ln")
            x = round_(x + self.linear(self.gelu(self.linear(h, p + ".mlp.0")), p + ".mlp.2"))
        return self.layer_norm(x, "encoder.ln_post").astype(np.float32)

    def cross_kv(self, features):
        features = np.asarray(features, dtype=np.float32)
        return tuple((self.linear(features, f"decoder.blocks.{i}.cross_attn.key"),
                      self.linear(features, f"decoder.blocks.{i}.cross_attn.value"))
                     for i in range(self.dims.n_text_layer))

    def new_cache(self, cross, batch: int = 1):
        empty = np.zeros((batch, 0, self.dims.n_text_state), np.float32)
        return Cache((empty,) * self.dims.n_text_layer, (empty,) * self.dims.n_text_layer, cross, 0, batch)

    def check_tokens(self, tokens, cache: Cache):
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != cache.batch:
            raise ValueError(f"decode: tokens must be [{cache.batch}, t]")
        if not self.flaws.positions_wrap and cache.length + tokens.shape[1] > self.dims.n_text_ctx:
            raise ValueError("decode: the text context would overflow")
        if not self.flaws.unchecked_ids and (tokens.min() < 0 or tokens.max() >= self.dims.n_vocab):
            raise ValueError("decode: token id outside the vocabulary")
        return tokens.astype(np.int64)

    def decode(self, tokens, cache: Cache, logits_at: Optional[Sequence[int]] = None):
        tokens = self.check_tokens(tokens, cache)
        start, t = cache.length, tokens.shape[1]
        offset = start + self.flaws.position_offset
        where = np.arange(offset, offset + t) % self.dims.n_text_ctx  # [t] (wraps only when flawed)
        positions = self.w["decoder.positional_embedding"][where]  # [t, d]
        x = self.w["decoder.token_embedding.weight"][tokens] + positions  # [B, t, d]
        keys, values = [], []
        for i in range(self.dims.n_text_layer):
            p = f"decoder.blocks.{i}"
            h = self.layer_norm(x, p + ".attn_ln")
            k = np.concatenate([cache.keys[i], self.linear(h, p + ".attn.key")], axis=1)  # [B, T, d]
            v = np.concatenate([cache.values[i], self.linear(h, p + ".attn.value")], axis=1)
            if self.flaws.cache_drops_oldest and start:
                k, v = k[:, t:], v[:, t:]
            seen = k.shape[1]
            mask = np.where(np.arange(seen)[None, :] > np.arange(t)[:, None] + seen - t, -np.inf, 0).astype(np.float32)
            x = x + self.linear(self.attention(self.linear(h, p + ".attn.query"), k, v, self.dims.n_text_head, mask),
                                p + ".attn.out")
            h = self.layer_norm(x, p + ".cross_attn_ln")
            ck, cv = cache.cross[i]
            x = x + self.linear(self.attention(self.linear(h, p + ".cross_attn.query"), ck, cv, self.dims.n_text_head),
                                p + ".cross_attn.out")
            h = self.layer_norm(x, p + ".mlp_ln")
            x = x + self.linear(self.gelu(self.linear(h, p + ".mlp.0")), p + ".mlp.2")
            keys.append(k)
            values.append(v)
        if logits_at is not None and not self.flaws.logits_at_ignored:
            x = x[:, list(logits_at)]
        logits = self.layer_norm(x, "decoder.ln") @ self.w["decoder.token_embedding.weight"].T  # [B, t', V]
        return logits.astype(np.float32), dataclasses.replace(cache, keys=tuple(keys), values=tuple(values),
                                                              length=start + t)

    def reorder(self, cache: Cache, indices):
        indices = list(indices)
        if self.flaws.reorder_ignores_indices:
            indices = [b if b < cache.batch else 0 for b in range(len(indices))]
        return dataclasses.replace(cache, keys=tuple(k[indices] for k in cache.keys),
                                   values=tuple(v[indices] for v in cache.values), batch=len(indices))

    def language_probs(self, audio_features, sot_id, language_token_ids, cross=None):
        if cross is not None and self.flaws.language_probs_without_cross:
            raise TypeError("language_probs() got an unexpected keyword argument 'cross'")
        cross = self.cross_kv(audio_features) if cross is None else cross
        logits, _ = self.decode([[sot_id]], self.new_cache(cross))
        picked = logits[0, -1, list(language_token_ids)].astype(np.float64)
        picked = np.exp(picked - picked.max())
        return (picked / picked.sum()).astype(np.float32)


def plain_backend(path) -> PlainBackend:
    """Factory for the parity command: the plain NumPy backend without flaws."""
    return PlainBackend(path)
