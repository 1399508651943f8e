"""numwhisper: Whisper speech recognition in plain NumPy + Numba, result-for-result with PaddleX.

The data path, one module per stage: audio -> mel -> model (encoder, decoder) -> decoding ->
transcribe -> result/writers. Model files: ``hub`` (names and the cache), ``checkpoint`` (the
canonical safetensors file), ``convert`` (the one rename/transpose table), ``ct2``, ``pdparams``
and ``paddle_dir`` (the foreign formats).
"""

import os as _os
import sys as _sys

# Thread behaviour between parallel regions, read when NumPy's OpenBLAS and Numba's OpenMP start
# (the environment's own values win; an OpenBLAS that NumPy loaded before numwhisper is made to read
# the environment again, see openblas.py). Idle threads that spin long take the core from the other
# library's threads, which run right after: OpenMP's default spin slowed the encoder 1.5x on two
# cores, and OpenBLAS's default spin of 2^28 cycles after each product costs 12% of an encoder
# window (0.86 -> 0.76 s); 2^4 yields at once.
# Threads that sleep at once cost ~45 us to wake, which made the decoder's per-step kernels (tens of
# microseconds each) slower on two threads than on one. A short OpenMP spin (GNU libgomp's
# GOMP_SPINCOUNT; Intel's and LLVM's runtimes, which ignore it, sleep at once with KMP_BLOCKTIME=0)
# keeps the encoder as fast and lets the decoder use both cores: a step 7.2 -> 4.2 ms, 5 beams 14.0 -> 9.5 ms.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")
_os.environ.setdefault("KMP_BLOCKTIME", "0")
if "OPENBLAS_THREAD_TIMEOUT" not in _os.environ:
    _os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    if "numpy" in _sys.modules:  # its OpenBLAS has read the environment already: have it read again
        from .openblas import reread_environment as _reread

        _reread(_sys.modules["numpy"])

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
