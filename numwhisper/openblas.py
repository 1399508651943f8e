"""The OpenBLAS bundled with NumPy's wheels, reached through ctypes: its thread count, and its
thread timeout when NumPy was imported before numwhisper.

OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, when it loads with NumPy; its worker threads then
spin that long (2^28 cycles by default) after every product before they sleep, and on two cores
they take the core from the Numba kernel that runs next: an encoder window took 0.82-0.95 s instead
of 0.70-0.75 s. ``reread_environment`` has a loaded OpenBLAS read the environment again and stops
its worker threads; the next product starts them with the new timeout. Nothing here imports NumPy.
"""

from __future__ import annotations

import ctypes
import glob
import os
from types import ModuleType
from typing import Optional


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
