"""``python -m numwhisper.golden check --backend MODULE:FACTORY``: see ``numwhisper.golden.cli``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
