"""The start of a process that numwhisper owns (the command line, its local workers, the HTTP service):
Numba's compiler started without the parts that no numwhisper kernel uses, and Ctrl-C that reaches
the program even while Numba compiles.

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

Ctrl-C: Python raises KeyboardInterrupt in whatever Python code runs when the signal arrives. While
Numba compiles (the first run after an install, some 30 s), that can be code an exception cannot
leave: a function llvmlite has handed to LLVM as a C callback, or a weak reference's callback that
Numba's typing tables run when the garbage collector frees an entry. Python then prints "Exception
ignored ..." with a traceback, and the compile, and the job, go on; or the callback that the
exception cut short leaves Numba without the compiled code, and the input fails with "no compiled
object yet". ``deliver_interrupts`` therefore holds a Ctrl-C that arrives in llvmlite's code, and
catches one lost elsewhere, and sends the signal again a moment later, where it propagates.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading

import llvmlite
import numpy as np

from . import kernels

HIDDEN_MODULE = "scipy.linalg"
LLVMLITE_DIR = os.path.dirname(llvmlite.__file__) + os.sep  # code whose callbacks swallow exceptions
INTERRUPT_RETRY_SECONDS = 0.05  # how soon a Ctrl-C that could not be raised where it landed is sent again


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


def _inside_llvmlite(frame) -> bool:
    """Whether frame, or any frame that called it, is llvmlite's (where an exception may be swallowed
    by a C callback's boundary)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(LLVMLITE_DIR):
            return True
        frame = frame.f_back
    return False


class _InterruptDelivery:
    """Ctrl-C raised where it can propagate. As SIGINT's handler: KeyboardInterrupt, except inside
    llvmlite's code, where LLVM may be calling Python back. As ``sys.unraisablehook``: a
    KeyboardInterrupt that Python could not raise (it arose in a weak reference's callback, a
    ``__del__``, a C callback) is not printed. Either way the signal is sent again shortly, and again
    until it lands where it propagates; one at a time, as a Ctrl-C meanwhile is the same request."""

    def __init__(self, previous_hook) -> None:
        self.previous_hook = previous_hook
        self.retry_pending = False

    def on_signal(self, signum: int, frame) -> None:
        if not _inside_llvmlite(frame):
            raise KeyboardInterrupt
        self._send_again_shortly()

    def on_unraisable(self, unraisable) -> None:
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            self._send_again_shortly()
        else:
            self.previous_hook(unraisable)

    def _send_again_shortly(self) -> None:
        if not self.retry_pending:
            self.retry_pending = True
            timer = threading.Timer(INTERRUPT_RETRY_SECONDS, self._send_again)
            timer.daemon = True
            timer.start()

    def _send_again(self) -> None:
        self.retry_pending = False
        os.kill(os.getpid(), signal.SIGINT)


def deliver_interrupts() -> None:
    """Make Ctrl-C raise KeyboardInterrupt even when it arrives while Numba compiles (see the module's
    docstring). Only where SIGINT has Python's default handler: a shell that started the process with
    SIGINT ignored, or a caller's own handler, is left alone; so is a thread other than the main one,
    which may not set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        delivery = _InterruptDelivery(sys.unraisablehook)
        signal.signal(signal.SIGINT, delivery.on_signal)
        sys.unraisablehook = delivery.on_unraisable
