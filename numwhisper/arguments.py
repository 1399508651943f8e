"""Value types for argparse that the command lines share (``numwhisper`` and ``numwhisper serve``).

They read values as openai-whisper's command line reads them: "True"/"False" for switches, "None"
for an option turned off.
"""

from __future__ import annotations

import argparse
from typing import Optional

NONE_WORDS = ("none", "null")


def str2bool(text: str) -> bool:
    """"True"/"False" (any case, also yes/no/1/0) -> bool."""
    value = text.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def optional_float(text: str) -> Optional[float]:
    """A float, or None for "None"/"null"."""
    return None if text.strip().lower() in NONE_WORDS else float(text)


def optional_int(text: str) -> Optional[int]:
    """An int, or None for "None"/"null"."""
    return None if text.strip().lower() in NONE_WORDS else int(text)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
