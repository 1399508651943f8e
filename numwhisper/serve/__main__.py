"""``python -m numwhisper.serve``: the same command as ``python -m numwhisper serve``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
