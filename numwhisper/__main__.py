"""``python -m numwhisper`` and the ``numwhisper`` script: see numwhisper.cli."""

import gc
import sys

from .cli import main


def run() -> None:
    """Run the command line and exit with its status.

    Everything is written by then; freezing the heap spares the interpreter's final collection a walk
    over the objects Numba's compiler leaves behind (about 0.17 s of every run's exit).
    """
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
