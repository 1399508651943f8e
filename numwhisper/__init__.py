"""numwhisper: Whisper speech recognition in plain NumPy + Numba, result-for-result with PaddleX.

The data path, one module per stage, at the top of the package:

    inputs -> audio -> mel -> model (encoder, decoder; ops, kernels) -> decoding -> transcription
    -> result / writers

``backend`` is the boundary between decoding and a network (``model`` on NumPy/Numba here,
``paddle_backend`` on Paddle for accelerator ``devices``). Subpackages: ``formats`` (the model file
and the foreign formats it is converted from), ``serve`` (the HTTP service), ``golden`` (the parity
suite against PaddleX's outputs). ``cli`` and ``pipeline`` are thin layers over the library.

The public API below is imported on first use, so ``import numwhisper`` stays fast and changes no
process-wide setting (the decoding path does, when it is first imported: see ``threads``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "load_model": "numwhisper.transcription",
    "transcribe": "numwhisper.transcription",
    "WhisperModel": "numwhisper.transcription",
    "DecodingOptions": "numwhisper.decoding",
    "Result": "numwhisper.result",
    "create_pipeline": "numwhisper.pipeline",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    """Import a public name's module the first time the name is used."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'numwhisper' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
