"""Thread behaviour of the two runtimes numwhisper's work runs on: Numba's OpenMP threads (the
kernels) and the OpenBLAS bundled with NumPy's wheels (the large products), reached through ctypes.

What numwhisper changes in the process: when its kernels are first imported (by anything on the
decoding path: ``load_model``, ``transcribe``, ``DecodingOptions``, ...; a bare ``import numwhisper``
does not), ``tune`` gives three environment variables numwhisper's values unless the environment
already sets them, and has an OpenBLAS that NumPy already loaded read them again:

    GOMP_SPINCOUNT=10000        an idle OpenMP thread (GNU libgomp) spins briefly before it sleeps
    KMP_BLOCKTIME=0             Intel's and LLVM's OpenMP runtimes, which ignore the above, sleep at once
    OPENBLAS_THREAD_TIMEOUT=4   an idle OpenBLAS thread spins 2^4 cycles instead of 2^28

Why: on few cores the two libraries take turns. A thread of one that spins long after its work
takes the core from the other's threads, which run right after (the encoder alternates BLAS products
and Numba kernels); a thread that sleeps at once is slow to wake, which the decoder's many short
kernels pay at every step. ``bench/README.md`` has the measurements. The values only take effect in
runtimes not yet started: an application that set the variables, or started OpenMP before, keeps its
own behaviour.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from types import ModuleType
from typing import Optional

TUNED_ENVIRONMENT = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}


def tune() -> None:
    """Give the environment variables of ``TUNED_ENVIRONMENT`` numwhisper's values where the
    environment has none, and have an OpenBLAS that NumPy already loaded read its value again."""
    blas_unset = "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    for name, value in TUNED_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if blas_unset and "numpy" in sys.modules:
        reread_environment(sys.modules["numpy"])


def library(numpy_module: ModuleType) -> Optional[ctypes.CDLL]:
    """The OpenBLAS shared library in ``numpy.libs`` next to this NumPy, or None (another BLAS)."""
    libs_dir = os.path.join(os.path.dirname(os.path.dirname(numpy_module.__file__)), "numpy.libs")
    paths = sorted(glob.glob(os.path.join(libs_dir, "lib*openblas*.so*")))
    return ctypes.CDLL(paths[0]) if paths else None


def _function(lib: Optional[ctypes.CDLL], *names: str):
    """The first of ``names`` that lib exports, or None."""
    for name in names:
        found = getattr(lib, name, None) if lib is not None else None
        if found is not None:
            return found
    return None


def thread_setter(numpy_module: ModuleType):
    """OpenBLAS's set-num-threads function (takes an int), or None."""
    setter = _function(library(numpy_module), "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                       "openblas_set_num_threads64_", "openblas_set_num_threads")
    if setter is not None:
        setter.argtypes = [ctypes.c_int]
        setter.restype = None
    return setter


def thread_timeout(numpy_module: ModuleType) -> Optional[int]:
    """The thread timeout OpenBLAS holds from the environment (0: its default, 2^28 cycles), or None."""
    getter = _function(library(numpy_module), "openblas_thread_timeout")
    if getter is None:
        return None
    getter.restype = ctypes.c_int
    return int(getter())


def reread_environment(numpy_module: ModuleType) -> bool:
    """Have a loaded OpenBLAS read OPENBLAS_* from the environment again and stop its worker threads
    (its own fork handler does the same), so that the next product starts them with the current
    OPENBLAS_THREAD_TIMEOUT. Call it while no other thread runs a BLAS product. Returns whether it could."""
    lib = library(numpy_module)
    read_env, shutdown = _function(lib, "openblas_read_env"), _function(lib, "blas_thread_shutdown_")
    if read_env is None or shutdown is None:
        return False
    read_env()
    shutdown()
    return True


def set_num_threads(n: Optional[int] = None) -> int:
    """Use n threads (default: every core Numba sees) in the Numba kernels and in NumPy's BLAS.

    BLAS threads are set through threadpoolctl when it is installed, otherwise through the OpenBLAS
    bundled with NumPy's wheels; with any other BLAS its own environment variables
    (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS) decide. Returns the count used.
    """
    import numba
    import numpy

    tune()  # before Numba starts its threads: the OpenMP runtime reads its settings once
    n = numba.config.NUMBA_NUM_THREADS if n is None else max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    try:
        import threadpoolctl
    except ImportError:
        setter = thread_setter(numpy)
        if setter is not None:
            setter(n)
    else:
        threadpoolctl.threadpool_limits(n, user_api="blas")
    return n
