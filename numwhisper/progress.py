"""A one-line progress bar on stderr: seconds of audio transcribed out of the clip's duration."""

from __future__ import annotations

import sys
from typing import Optional, TextIO

from .mel import HOP_LENGTH, SAMPLE_RATE

BAR_WIDTH = 30


class ProgressBar:
    """Redrawn in place with a carriage return; ``close`` ends the line."""

    def __init__(self, label: str, stream: Optional[TextIO] = None, width: int = BAR_WIDTH):
        self.label, self.stream, self.width = label, stream or sys.stderr, width

    def __call__(self, done_frames: int, total_frames: int) -> None:
        """Draw the bar for ``done_frames`` of ``total_frames`` mel frames (the transcribe callback)."""
        filled = self.width * done_frames // max(total_frames, 1)
        done_s, total_s = (f * HOP_LENGTH / SAMPLE_RATE for f in (done_frames, total_frames))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done_s:6.1f}/{total_s:.1f} s")
        self.stream.flush()

    def close(self) -> None:
        """Finish the line the bar was drawn on."""
        self.stream.write("\n")
        self.stream.flush()
