"""``python -m numwhisper``: see numwhisper.cli."""

import sys

from .cli import main

sys.exit(main())
