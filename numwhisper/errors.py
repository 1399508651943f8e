"""What can go wrong, and how numwhisper's commands say so.

The rule for exception classes: every error a caller of the library may want to catch is defined
here, at the bottom of the package, so that any layer can raise it without importing another. All
are ValueErrors whose message is one line naming the input and the cause. (The HTTP service's
refusals, which carry a status code, belong to ``serve``.)

Every command (``numwhisper``, ``numwhisper serve``, ``numwhisper.golden check``, the converters)
reports a failure as one ``error: <cause>`` line on stderr through ``print_error`` and exits with
``EXIT_ERROR``.
"""

from __future__ import annotations

import sys

EXIT_ERROR = 2  # the command could not do (all of) what it was asked: bad arguments, input or model
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a command ended by SIGINT


class ModelFileError(ValueError):
    """A model file (or a source being converted) is missing, malformed or inconsistent."""


class InputError(ValueError):
    """An input that cannot become audio (missing, unreadable, empty, misshapen); names the input."""


class OutputError(ValueError):
    """An output file that cannot be written (a full disk, a directory in the way, no permission)."""


class GoldenFilesMissing(ValueError):
    """The golden parity files are not where numwhisper looks for them; says how to get them."""


class PaddleXFailure(ValueError):
    """Raised in compat="paddlex" mode where PaddleX itself would fail (e.g. decoding no tokens)."""


def one_line(message: str) -> str:
    """Fold a multi-line message (some library errors span lines) into one line."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def printable(name: str) -> str:
    """A name as messages show it: control characters (a newline in a file name) escaped, so it stays one line."""
    name = str(name)
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def print_error(message) -> int:
    """Print ``error: <message>`` as one line on stderr; returns EXIT_ERROR for the caller to exit with."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def run_reporting_errors(main, argv=None) -> int:
    """Run ``main(argv)``; a bad model file or an OS error prints one error line and returns EXIT_ERROR."""
    try:
        main(argv)
    except ModelFileError as err:
        return print_error(err)
    except OSError as err:
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        return print_error(where + str(err.strerror or err))
    return 0
