"""numwhisper: Whisper speech recognition in plain NumPy + Numba, result-for-result with PaddleX.

The data path, one module per stage: audio -> mel -> model (encoder, decoder) -> decoding ->
transcribe -> result/writers. Model files: ``hub`` (names and the cache), ``checkpoint`` (the
canonical safetensors file), ``convert`` (the one rename/transpose table), ``ct2``, ``pdparams``
and ``paddle_dir`` (the foreign formats).
"""

__version__ = "0.1.0"
