"""Transcript files in the formats users know from openai-whisper: json, txt, srt, vtt, tsv.

- txt: one segment per line, text stripped.
- srt: numbered cues from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the text, a blank line.
- vtt: a ``WEBVTT`` header, then cues ``MM:SS.mmm --> MM:SS.mmm`` (hours appear once a time reaches
  one hour), the text, a blank line.
- tsv: a ``start\\tend\\ttext`` header, then times in whole milliseconds; tabs in text become spaces.
- json: the PaddleX-shaped result ({"input_path", "result"}), indent 4, non-ASCII kept.

In subtitles (srt, vtt) a "-->" inside the text would end the cue's timing line, so it becomes "->".
Times are written as they are, including ends past the end of the audio (PaddleX produces those).
Files are named ``{stem}.{format}``, the stem being the input's file name without its suffix.
Each is written under a temporary name in the same directory (``atomic``) and renamed into place once every
format of the input is written; on any failure none of them is left behind (``OutputError``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from .atomic import staged
from .errors import OutputError
from .result import Result, plain, transcript_of

FORMATS = ("txt", "vtt", "srt", "tsv", "json")
ALL = "all"


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """Seconds -> ``[HH:]MM:SS<marker>mmm`` rounded to the millisecond; hours shown if asked or non-zero."""
    if seconds < 0:
        raise ValueError(f"timestamps must be non-negative, got {seconds}")
    milliseconds = round(seconds * 1000.0)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1_000)
    hours_part = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_part}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def cues(result: Mapping) -> Iterator[Tuple[float, float, str]]:
    """(start, end, subtitle text) per segment: text stripped, "-->" made "->"."""
    for segment in transcript_of(result)["segments"]:
        yield segment["start"], segment["end"], segment["text"].strip().replace("-->", "->")


def to_txt(result: Mapping) -> str:
    """One stripped segment text per line."""
    return "".join(segment["text"].strip() + "\n" for segment in transcript_of(result)["segments"])


def to_srt(result: Mapping) -> str:
    """SubRip: counter from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text, blank line."""
    blocks = []
    for number, (start, end, text) in enumerate(cues(result), start=1):
        timing = f"{format_timestamp(start, True, ',')} --> {format_timestamp(end, True, ',')}"
        blocks.append(f"{number}\n{timing}\n{text}\n\n")
    return "".join(blocks)


def to_vtt(result: Mapping) -> str:
    """WebVTT: ``WEBVTT`` header, then ``[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm``, text, blank line per cue."""
    blocks = ["WEBVTT\n\n"]
    for start, end, text in cues(result):
        blocks.append(f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n\n")
    return "".join(blocks)


def to_tsv(result: Mapping) -> str:
    """Tab-separated ``start end text`` with integer milliseconds under a header row."""
    rows = ["start\tend\ttext\n"]
    for segment in transcript_of(result)["segments"]:
        text = segment["text"].strip().replace("\t", " ")
        rows.append(f"{round(1000 * segment['start'])}\t{round(1000 * segment['end'])}\t{text}\n")
    return "".join(rows)


def to_json(result: Mapping) -> str:
    """The result dict as JSON (indent 4, non-ASCII kept), as PaddleX's save_to_json writes it."""
    return json.dumps(plain(result), indent=4, ensure_ascii=False)


WRITERS: Dict[str, Callable[[Mapping], str]] = {
    "txt": to_txt, "vtt": to_vtt, "srt": to_srt, "tsv": to_tsv, "json": to_json,
}


def resolve_formats(formats: Union[str, Iterable[str]]) -> List[str]:
    """"all", one name, or names (also comma-separated) -> the distinct format names, in order."""
    names = [formats] if isinstance(formats, str) else list(formats)
    chosen = []
    for name in (part.strip().lower() for item in names for part in item.split(",")):
        if name == ALL:
            chosen.extend(FORMATS)
        elif name in WRITERS:
            chosen.append(name)
        else:
            raise ValueError(f"unknown output format {name!r}; choose from {', '.join(FORMATS)} or {ALL}")
    return list(dict.fromkeys(chosen))


def write_result(result: Mapping, output_dir: Union[str, Path], formats: Union[str, Iterable[str]] = ALL,
                 stem: Optional[str] = None) -> List[Path]:
    """Write ``output_dir/{stem}.{format}`` for each format, all or none; returns the files written.

    ``stem`` defaults to the input's file name without suffix (``Result.stem``: time_random when the
    result has no input path). Raises OutputError (one line naming the file) when a file cannot be
    written or put in place; then none of this call's files exists, temporary or final.
    """
    chosen = resolve_formats(formats)
    if stem is None:
        stem = (result if isinstance(result, Result) else Result(result)).stem()
    texts = {name: WRITERS[name](result) for name in chosen}
    output_dir = Path(output_dir)
    make_output_dir(output_dir)
    staged: List[Tuple[Path, Path]] = []  # (temporary, final)
    placed: List[Path] = []
    try:
        for name, text in texts.items():
            final = output_dir / f"{stem}.{name}"
            staged.append((write_temporary(final, text), final))
        for temporary, final in staged:
            replace(temporary, final)
            placed.append(final)
    except BaseException:
        for path in [temporary for temporary, _ in staged] + placed:
            path.unlink(missing_ok=True)
        raise
    return placed


def make_output_dir(output_dir: Path) -> None:
    """Create ``output_dir`` (and its parents) if needed; OutputError if it cannot be a directory."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write into {output_dir}: it exists and is not a directory") from None
    except OSError as err:
        raise OutputError(f"cannot create {output_dir}: {err.strerror or err}") from None


def write_temporary(final: Path, text: str) -> Path:
    """``text`` as UTF-8 in a new hidden file beside ``final`` -> its path (``atomic.staged``); OutputError if not."""
    try:
        return staged(final, lambda temporary: temporary.write_text(text, encoding="utf-8", newline="\n"))
    except OSError as err:
        raise OutputError(f"cannot write {final}: {err.strerror or err}") from None


def replace(temporary: Path, final: Path) -> None:
    """Rename ``temporary`` onto ``final`` (atomic on one file system); OutputError if something is in the way."""
    try:
        os.replace(temporary, final)
    except IsADirectoryError:
        raise OutputError(f"cannot write {final}: a directory of that name is in the way") from None
    except OSError as err:
        raise OutputError(f"cannot write {final}: {err.strerror or err}") from None
