"""How command-line entry points report errors: one line naming the input and the cause."""

from __future__ import annotations

import sys

from .checkpoint import ModelFileError

EXIT_BAD_INPUT = 2


def one_line(message: str) -> str:
    """Fold a multi-line message (some library errors span lines) into one line."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def run_reporting_errors(main, argv=None) -> int:
    """Run ``main(argv)``; a bad input prints ``error: <cause>`` on stderr and returns exit code 2."""
    try:
        main(argv)
    except ModelFileError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: {one_line(where + str(err.strerror or err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
