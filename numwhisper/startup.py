"""The start of a process that numwhisper owns (the command line and its local workers): Numba's
compiler started without the parts that no numwhisper kernel uses.

Numba builds its typing and lowering tables at the first call of any compiled function, also when
the function comes from the on-disk cache. Doing so it imports ``scipy.linalg`` (through
``scipy.linalg.cython_blas``), only to learn whether a BLAS exists for ``np.dot`` and the like inside
compiled code; numwhisper's kernels use none (its large products run in NumPy). That import is about
half of Numba's start. ``start_compiler`` hides ``scipy.linalg`` while the tables are built, so
that the import fails at once, then puts everything back: a later import of ``scipy.linalg`` (for
resampling, say), or a compiled ``np.dot``, loads it as usual. What stays is Numba's note that no
BLAS was found when the tables were built, which makes its ``np.convolve`` and ``np.correlate`` sum
with a plain loop. That is why only processes numwhisper owns call this, and the library never does.

The cyclic garbage collector is paused meanwhile: the tables are some 60,000 new objects, none of
them garbage, which the collections that their allocation triggers would walk in vain.
"""

from __future__ import annotations

import gc
import sys

import numpy as np

from . import kernels

HIDDEN_MODULE = "scipy.linalg"


def start_compiler() -> None:
    """Build Numba's tables now, by a first kernel call, without importing SciPy's linear algebra
    (when nothing has imported it yet) and without collecting garbage meanwhile."""
    hide = HIDDEN_MODULE not in sys.modules
    collecting = gc.isenabled()
    if hide:
        sys.modules[HIDDEN_MODULE] = None  # an import of it raises ImportError
    gc.disable()
    try:
        kernels.half_to_float32(np.zeros((1, 1), np.uint16))  # any kernel: the first call builds the tables
    finally:
        if collecting:
            gc.enable()
        if hide and sys.modules.get(HIDDEN_MODULE, False) is None:
            del sys.modules[HIDDEN_MODULE]
