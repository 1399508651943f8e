"""Golden tensors made on the spot by a reference backend, for models that have no golden files.

The golden files cover the two models whose weights exist (base, tiny.en). Size-dependent paths
(128 mel bins, large-v3's 51,866-token vocabulary with <|yue|>, decoders shallower than their
encoders) are proved on other checkpoints, random-weight ones included, by running a reference
implementation (the Paddle backend, or openai-whisper's PyTorch model behind the backend contract)
on the golden clips and checking the backend under test against it with the very stage checks and
tolerances of ``check``. Everything is held in full: every mel frame of window 0, every encoder row,
every logit of ``LOGIT_STEPS`` greedy decoder steps, every language probability.
"""

from __future__ import annotations

import numpy as np

from ..backend import Backend
from ..mel import N_FRAMES, pad_or_trim
from ..tokenizer import Tokenizer
from . import files

LOGIT_STEPS = 8  # decoder steps checked per clip: the prompt's last position, then 7 greedy tokens
LOGITS_TOP_K = 10


def greedy_logits(reference: Backend, prefix: tuple, cross, n_steps: int) -> np.ndarray:
    """The reference's last-position logits after ``prefix``, then after each of its own argmax
    tokens in turn -> [n_steps, V]."""
    logits, cache = reference.decode(np.array([prefix]), reference.new_cache(cross))  # [1, P, V]
    steps = [logits[0, -1]]
    while len(steps) < n_steps:
        logits, cache = reference.decode(np.array([[int(np.argmax(steps[-1]))]]), cache)  # [1, 1, V]
        steps.append(logits[0, -1])
    return np.stack(steps).astype(np.float32)  # [n_steps, V]


def full_step(row: np.ndarray) -> files.LogitsStep:
    """One step's logits held in full, with its top ids in the golden files' order."""
    ids = np.arange(row.shape[0])  # [V]
    return files.LogitsStep(ids, row, np.lexsort((ids, -row))[:LOGITS_TOP_K], True)


def reference_case(reference: Backend, tokenizer: Tokenizer, label: str, clip: str, audio: np.ndarray,
                   n_steps: int = LOGIT_STEPS) -> files.CaseTensors:
    """The tensors of one clip as the reference computes them, shaped like a golden case."""
    mel = np.asarray(reference.log_mel(audio), np.float32)  # [n_mels, T]
    features = np.asarray(reference.encode(pad_or_trim(mel, N_FRAMES)), np.float32)  # [n_audio_ctx, d]
    codes, probs, language = None, None, None
    if tokenizer.is_multilingual:
        codes = tokenizer.all_language_codes
        ids = [tokenizer.language_token(code) for code in codes]
        probs = np.asarray(reference.language_probs(features, tokenizer.sot, ids, None), np.float32)  # [n_languages]
        language = codes[int(np.argmax(probs))]
    prefix = tokenizer.sot_sequence(language)
    logits = greedy_logits(reference, prefix, reference.cross_kv(features), n_steps)  # [n_steps, V]
    argmax = tuple(int(i) for i in logits.argmax(axis=-1))
    return files.CaseTensors(
        model=label, clip=clip, n_frames=mel.shape[-1], mel=mel[:, :N_FRAMES],
        encoder_rows=np.arange(features.shape[0]), encoder_output=features,
        prefix=prefix, appended=argmax[:-1], argmax=argmax, logits=tuple(full_step(row) for row in logits),
        language_codes=codes, language_probs=probs, detected_language=language or "en",
        metadata={"reference": getattr(reference, "name", type(reference).__name__)})
