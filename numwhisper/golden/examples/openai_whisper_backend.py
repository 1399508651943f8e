"""openai-whisper's PyTorch model behind the backend contract (``pip install 'numwhisper[openai-whisper]'``).

The model is openai-whisper's own ``Whisper`` module, loaded with the numwhisper file's tensors
(OpenAI's names already) in float32 on the CPU. The decoder cache is openai-whisper's own: the
forward hooks of ``install_kv_cache_hooks`` fill a dict of per-module keys and values, and a
reorder indexes every entry, as openai-whisper's beam search does. The contract's ValueError rules
are checked here, before torch sees the call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from safetensors import safe_open
from whisper.audio import log_mel_spectrogram
from whisper.model import ModelDimensions, Whisper


@dataclass(frozen=True)
class Cache:
    """openai-whisper's kv_cache dict (module -> tensor), the window's features, the token count."""

    kv: dict
    features: torch.Tensor  # [1, n_audio_ctx, d]
    length: int
    batch: int


class OpenAIWhisperBackend:
    name = "openai-whisper"

    def __init__(self, path: str):
        with safe_open(path, framework="pt") as f:
            self.dims = ModelDimensions(**json.loads(f.metadata()["dims"]))
            state = {name: f.get_tensor(name).float() for name in f.keys()}
        self.model = Whisper(self.dims)
        self.model.load_state_dict(state)
        self.model.eval()

    @torch.inference_mode()
    def log_mel(self, audio):
        return log_mel_spectrogram(torch.from_numpy(np.asarray(audio, np.float32)), self.dims.n_mels).numpy()

    @torch.inference_mode()
    def encode(self, mel):
        mel = np.asarray(mel, np.float32)
        if mel.shape != (self.dims.n_mels, 2 * self.dims.n_audio_ctx):
            raise ValueError(f"encode: mel must be [{self.dims.n_mels}, {2 * self.dims.n_audio_ctx}], got {mel.shape}")
        return self.model.encoder(torch.from_numpy(mel)[None])[0].numpy()

    def cross_kv(self, features):
        return torch.from_numpy(np.ascontiguousarray(features, np.float32))[None]

    def new_cache(self, cross):
        return Cache({}, cross, 0, 1)

    @torch.inference_mode()
    def decode(self, tokens, cache: Cache, logits_at: Optional[Sequence[int]] = None):
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != cache.batch:
            raise ValueError(f"decode: tokens must be [{cache.batch}, t], got {tokens.shape}")
        if cache.length + tokens.shape[1] > self.dims.n_text_ctx:
            raise ValueError(f"decode: more than n_text_ctx = {self.dims.n_text_ctx} tokens")
        if tokens.min() < 0 or tokens.max() >= self.dims.n_vocab:
            raise ValueError(f"decode: token ids must lie in [0, {self.dims.n_vocab})")
        kv, hooks = self.model.install_kv_cache_hooks(cache.kv)  # a copy of cache.kv that the hooks extend
        try:
            logits = self.model.decoder(torch.from_numpy(tokens.astype(np.int64)), cache.features, kv_cache=kv)
        finally:
            for hook in hooks:
                hook.remove()
        if logits_at is not None:
            logits = logits[:, list(logits_at)]
        return logits.numpy(), Cache(kv, cache.features, cache.length + tokens.shape[1], cache.batch)

    def reorder(self, cache: Cache, indices):
        index = torch.tensor(list(indices), dtype=torch.long)
        return Cache({module: value[index] for module, value in cache.kv.items()}, cache.features, cache.length,
                     len(index))

    def language_probs(self, audio_features, sot_id, language_token_ids, cross=None):
        cross = self.cross_kv(audio_features) if cross is None else cross
        logits, _ = self.decode([[sot_id]], self.new_cache(cross))  # [1, 1, V]
        picked = torch.from_numpy(logits[0, -1, list(language_token_ids)])
        return torch.softmax(picked, dim=-1).numpy()


def backend(path) -> OpenAIWhisperBackend:
    """Factory for the parity command."""
    return OpenAIWhisperBackend(str(path))
