"""The model boundary: what decoding and transcription need from a Whisper implementation.

A ``Backend`` computes the log-mel, encodes a 30 s window, runs one decoder call over an explicit
cache and gives language probabilities. Everything above it (decoding, the long-form loop, results,
writers) is shared NumPy code, so a backend (NumPy/Numba here, Paddle in ``paddle_backend``) never
changes the algorithm, only where the arithmetic runs.

Arrays cross the boundary as NumPy float32; ``cross_kv`` and the decoder cache are opaque to the
caller and owned by the backend. The cache is passed in and handed back (the returned one is the one
to use next): a backend may update it in place, so a cache passed to ``decode`` or ``reorder`` is
never used again. README "Backends" states the same contract for other implementations.

A backend may also offer ``log_mel_windows(pieces)`` (both here do): the log-mel a window at a time,
with ``log_mel``'s values, from a signal read again on each pass, so long files never sit in memory
whole. Without it the long-form loop takes the whole clip's ``log_mel``.

A backend may also offer ``alignment(cross, tokens, heads) -> (qk, logits)`` (both here do), which
word timestamps need (``timing``): a forced decoder pass over one sequence ``tokens`` [T] from an
empty cache, returning the pre-softmax cross-attention scores of the alignment heads ``heads``
((decoder layer, head), ...) as float32 [len(heads), T, n_audio_ctx] (queries and keys each scaled
by d_head**-0.25, then q @ k^T) and the logits float32 [T, n_vocab]. Without it, word timestamps
are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

from . import model as whisper_model
from .devices import NUMPY, Device
from .dims import ModelDims
from .formats.checkpoint import Checkpoint, load
from .mel import StreamedLogMel, log_mel_spectrogram


@runtime_checkable
class Backend(Protocol):
    """What a Whisper implementation provides; shapes are for one model of ``dims``.

    An optional ``name`` attribute (e.g. "numpy", "paddle:gpu:0") is shown in reports.
    """

    dims: ModelDims

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Whole-clip log-mel of 16 kHz mono audio [N] -> float32 [n_mels, N // 160]."""

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """One window's mel [n_mels, 3000] -> audio features float32 [n_audio_ctx, n_audio_state]."""

    def cross_kv(self, audio_features: np.ndarray) -> Any:
        """Cross-attention state of one window's features [n_audio_ctx, d] (opaque)."""

    def new_cache(self, cross: Any) -> Any:
        """An empty decoder cache for one sequence attending to ``cross`` (opaque); ``reorder`` makes batches."""

    def decode(self, tokens: np.ndarray, cache: Any,
               logits_at: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, Any]:
        """New tokens [batch, t] after the cache's tokens -> (logits float32 [batch, t, n_vocab], next cache).

        ``t`` may exceed 1 only on an empty cache (the prompt pass); after it, one token per call.
        ``logits_at`` (indices into the t new tokens, -1 the last) asks for those positions' logits
        only: [batch, len(logits_at), n_vocab], the same values as those positions of a full call.
        """

    def reorder(self, cache: Any, indices: Sequence[int]) -> Any:
        """The cache whose sequence b continues sequence indices[b]; the batch may grow (1 -> n beams)."""

    def language_probs(self, audio_features: np.ndarray, sot_id: int, language_token_ids: Sequence[int],
                       cross: Any = None) -> np.ndarray:
        """Softmax over the language tokens' logits after one step on [sot_id] -> float32 [n_languages]."""


def backend_members() -> tuple:
    """The names a Backend must have (its attributes and methods), read from the protocol itself."""
    methods = [name for name, value in vars(Backend).items() if callable(value) and not name.startswith("_")]
    return (*Backend.__annotations__, *methods)


@dataclass(frozen=True)
class NumpyBackend:
    """The NumPy + Numba backend: ``numwhisper.model`` over its Weights, on the CPU."""

    weights: whisper_model.Weights
    name: str = "numpy"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> "NumpyBackend":
        """The Weights of a checkpoint (``model.weights_from_checkpoint``)."""
        return cls(whisper_model.weights_from_checkpoint(checkpoint))

    @property
    def dims(self) -> ModelDims:
        """The model's hyper-parameters."""
        return self.weights.dims

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Whole-clip log-mel [n_mels, T] (``mel.log_mel_spectrogram``)."""
        return log_mel_spectrogram(audio, self.dims.n_mels)

    def log_mel_windows(self, pieces) -> StreamedLogMel:
        """The log-mel, window by window, of the signal ``pieces()`` gives on each pass (``mel.StreamedLogMel``)."""
        return StreamedLogMel(pieces, self.dims.n_mels)

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """Audio features [n_audio_ctx, d] of one window's mel [n_mels, 3000]."""
        return whisper_model.encode(self.weights, mel)

    def cross_kv(self, audio_features: np.ndarray) -> whisper_model.CrossKV:
        """Every decoder layer's cross-attention keys and values."""
        return whisper_model.cross_kv(self.weights, audio_features)

    def new_cache(self, cross: whisper_model.CrossKV, batch: int = 1) -> whisper_model.KVCache:
        """An empty KVCache for ``batch`` sequences."""
        return whisper_model.new_cache(self.weights, cross, batch)

    def decode(self, tokens, cache: whisper_model.KVCache, logits_at: Optional[Sequence[int]] = None):
        """(logits [B, t, V] or [B, len(logits_at), V], next cache) of the new tokens [B, t]."""
        return whisper_model.decode(self.weights, tokens, cache, logits_at)

    def reorder(self, cache: whisper_model.KVCache, indices: Sequence[int]) -> whisper_model.KVCache:
        """The cache with its sequences picked by ``indices``."""
        return whisper_model.reorder(cache, indices)

    def language_probs(self, audio_features: np.ndarray, sot_id: int, language_token_ids: Sequence[int],
                       cross: Optional[whisper_model.CrossKV] = None) -> np.ndarray:
        """Language probabilities [n_languages]."""
        return whisper_model.language_probs(self.weights, audio_features, sot_id, language_token_ids, cross=cross)

    def alignment(self, cross: whisper_model.CrossKV, tokens, heads: Sequence[Tuple[int, int]]):
        """(qk [len(heads), T, n_audio_ctx], logits [T, V]) of a forced pass over tokens [T] (``model.alignment``)."""
        return whisper_model.alignment(self.weights, cross, tokens, heads)


def numpy_backend(path) -> NumpyBackend:
    """Factory for the parity command: the NumPy backend of a model file (``.safetensors``)."""
    return NumpyBackend.from_checkpoint(load(path))


def load_backend(checkpoint: Checkpoint, device: Device) -> Backend:
    """The backend that runs ``checkpoint`` on a resolved ``device`` (``devices.resolve_device``):
    NumPy for "cpu", else Paddle."""
    if device.backend == NUMPY:
        return NumpyBackend.from_checkpoint(checkpoint)
    from .paddle_backend import PaddleBackend

    return PaddleBackend.from_checkpoint(checkpoint, device)

