"""``python -m numwhisper`` and the ``numwhisper`` script: see numwhisper.cli."""

import gc
import os
import sys

from .cli import main


def run() -> None:
    """Run the command line and exit with its status."""
    leave(main())


def leave(status: int) -> None:
    """Exit with ``status`` once the command has returned: every output file is written and closed by
    then, so only the standard streams need flushing.

    The process ends without the interpreter's teardown (``os._exit``): freeing every module and
    object, Numba's compiled code among them, is work at the end of every run that changes nothing
    outside the process (a few percent of a short clip's run; see bench/README.md). Under a tracer or profiler (coverage, ``python -m cProfile``), whose
    reports are written at normal exit, and when a stream cannot be flushed, it exits normally
    instead, after freezing the heap so that the final collection does not walk the objects Numba's
    compiler leaves behind.
    """
    if sys.gettrace() is None and sys.getprofile() is None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe or stream: let the normal exit report it
            pass
        else:
            os._exit(status)
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
