"""Progress on stderr: one clip's seconds transcribed out of its duration (``ProgressBar``), and a
job's inputs and audio done out of its total (``JobBar``)."""

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


class JobBar:
    """A job's line on stderr: ``[12/20 files] 1.3/4.0 h of audio``, redrawn in place as inputs finish.

    The total audio is what the inputs' headers declare; when it is unknown (URLs, streams without
    a length) only the audio done is shown. Short jobs count minutes rather than hours.
    """

    def __init__(self, files: int, total_seconds: Optional[float], stream: Optional[TextIO] = None):
        self.files, self.total_seconds, self.stream = files, total_seconds, stream or sys.stderr
        self.finished, self.failed, self.done_seconds, self.current_seconds = 0, 0, 0.0, 0.0

    def advance(self, seconds: Optional[float], failed: bool = False) -> None:
        """One more input finished, holding ``seconds`` of audio (None: not known)."""
        self.finished += 1
        self.failed += failed
        self.done_seconds += seconds or 0.0
        self.current_seconds = 0.0
        self.draw()

    def working(self, done_frames: int, total_frames: int) -> None:
        """The input being transcribed in this process has ``done_frames`` mel frames done (the transcribe callback)."""
        self.current_seconds = done_frames * HOP_LENGTH / SAMPLE_RATE
        self.draw()

    def text(self) -> str:
        """The line as it is drawn now."""
        done = self.done_seconds + self.current_seconds
        scale, unit = (3600.0, "h") if (self.total_seconds or done) >= 360 else (60.0, "min")
        audio = f"{done / scale:.1f}" + ("" if self.total_seconds is None else f"/{self.total_seconds / scale:.1f}")
        failed = f", {self.failed} failed" if self.failed else ""
        return f"[{self.finished}/{self.files} files] {audio} {unit} of audio{failed}"

    def draw(self) -> None:
        """Redraw the line in place (clearing what a longer line left)."""
        self.stream.write(f"\r{self.text()}\033[K")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the line, so that a message can be printed; the next ``draw`` puts it back."""
        self.stream.write("\r\033[K")
        self.stream.flush()

    def close(self) -> None:
        """End the line as last drawn."""
        self.stream.write("\n")
        self.stream.flush()
