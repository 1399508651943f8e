"""numwhisper: Whisper speech recognition in plain NumPy + Numba, result-for-result with PaddleX.

The data path, one module per stage: audio -> mel -> model (encoder, decoder) -> decoding ->
transcribe -> result/writers. Model files: ``hub`` (names and the cache), ``checkpoint`` (the
canonical safetensors file), ``convert`` (the one rename/transpose table), ``ct2``, ``pdparams``
and ``paddle_dir`` (the foreign formats).
"""

__version__ = "0.1.0"


def load_model(name_or_path: str = "base", cache=None, device=None):
    """Load a model by name ("base", "tiny.en") or path onto ``device`` ("cpu", "paddle:cpu", "gpu:0", ...;
    None: gpu:0 when Paddle sees a GPU, else cpu); it has ``transcribe`` and ``detect_language``."""
    from .transcribe import load_model as _load

    return _load(name_or_path, cache, device)


def create_pipeline(pipeline: str = "multilingual_speech_recognition", device=None, **options):
    """PaddleX's facade: ``create_pipeline(...).predict(input=...)`` yields printable, savable results."""
    from .pipeline import create_pipeline as _create

    return _create(pipeline, device, **options)
