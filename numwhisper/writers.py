"""Transcript files in the formats users know from openai-whisper: json, txt, srt, vtt, tsv.

- txt: one segment per line, text stripped.
- srt: numbered cues from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the text, a blank line.
- vtt: a ``WEBVTT`` header, then cues ``MM:SS.mmm --> MM:SS.mmm`` (hours appear once a time reaches
  one hour), the text, a blank line.
- tsv: a ``start\\tend\\ttext`` header, then times in whole milliseconds; tabs in text become spaces.
- json: a PaddleX-shaped result ({"input_path", "result"}) as PaddleX saves it (indent 4, non-ASCII
  kept); openai-whisper's result dict ({"text", "segments", "language"}, as compat="openai" gives it) as
  openai-whisper's json writer writes it (one line, non-ASCII escaped).

Subtitle cues (srt, vtt) are the segments, unless the segments carry "words" (word timestamps): then
they are laid out from the words as openai-whisper lays them out, with its options (``WriterOptions``:
highlight_words, max_line_width, max_line_count, max_words_per_line). Without options that is one cue
per segment running from its first word's start to its last word's end. txt, tsv and json ignore the
options, as openai-whisper's writers do.

In subtitles a "-->" inside the text would end the cue's timing line, so it becomes "->" (openai-whisper
does this for segment cues only; its word cues would keep it and break the file).
Times are written as they are, including ends past the end of the audio (PaddleX produces those).
Files are named ``{stem}.{format}``, the stem being the input's file name without its suffix.
Each is written under a temporary name in the same directory (``atomic``) and renamed into place once every
format of the input is written; on any failure none of them is left behind (``OutputError``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .atomic import staged
from .errors import OutputError
from .result import Result, plain, transcript_of

FORMATS = ("txt", "vtt", "srt", "tsv", "json")
ALL = "all"
SUBTITLE_ARROW = "-->"  # separates a cue's start and end; never left in a cue's text
PAUSE_SECONDS = 3.0  # when subtitles run across segments, a longer gap between word starts opens a new one
UNLIMITED = 1000  # openai-whisper's line width and words per subtitle when no limit is given
UNDERLINE = re.compile(r"^(\s*)(.*)$")  # a word's leading whitespace (kept outside <u>) and the rest of its line


# ---------------------------------------------------------------------------------- options

@dataclass(frozen=True)
class WriterOptions:
    """How srt and vtt lay out words: openai-whisper's writer options, with its names and meaning.

    They act only on results whose segments carry "words". highlight_words: one cue per word, that
    word underlined (``<u>word</u>``) in its subtitle's text, and a plain cue over any gap between
    words. max_line_width: a line breaks before a word that would take it past this many characters.
    max_line_count (needs max_line_width): lines per subtitle; subtitles then run across segment
    boundaries, a new one starting after a pause of more than 3 s; without it every segment starts a
    subtitle. max_words_per_line: every segment is cut into subtitles of at most this many words.
    ValueError for a limit below 1 and for the combinations openai-whisper accepts with no effect:
    max_line_count without max_line_width, and max_words_per_line with both line limits. (Its warning
    says max_words_per_line has no effect with max_line_width; with max_line_width alone it does
    have one, so that combination is allowed.)
    """

    highlight_words: bool = False
    max_line_width: Optional[int] = None
    max_line_count: Optional[int] = None
    max_words_per_line: Optional[int] = None

    def __post_init__(self):
        for name in ("max_line_width", "max_line_count", "max_words_per_line"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (or None), got {value}")
        if self.max_line_count is not None and self.max_line_width is None:
            raise ValueError("max_line_count needs max_line_width: lines are only broken by width")
        if self.max_words_per_line is not None and self.spans_segments:
            raise ValueError("max_words_per_line has no effect with max_line_width and max_line_count: "
                             "subtitles are then filled line by line across segments")

    @property
    def spans_segments(self) -> bool:
        """True when subtitles are filled across segment boundaries (both line limits given)."""
        return self.max_line_width is not None and self.max_line_count is not None


NO_OPTIONS = WriterOptions()


# ---------------------------------------------------------------------------------- timestamps

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


def same_millisecond(a: float, b: float) -> bool:
    """True when two times are written alike (subtitles show whole milliseconds)."""
    return round(a * 1000.0) == round(b * 1000.0)


# ---------------------------------------------------------------------------------- cues

def cues(result: Mapping, options: WriterOptions = NO_OPTIONS) -> Iterator[Tuple[float, float, str]]:
    """(start, end, subtitle text) of every cue: the segments' (text stripped), or the words' laid out
    by ``options`` when the segments carry words; "-->" made "->" in either."""
    segments = transcript_of(result)["segments"]
    if has_words(segments):
        laid_out = word_cues(segments, options)
    else:
        laid_out = ((segment["start"], segment["end"], segment["text"].strip()) for segment in segments)
    for start, end, text in laid_out:
        yield start, end, text.replace(SUBTITLE_ARROW, "->")


def has_words(segments: Sequence[Mapping]) -> bool:
    """True when the result has word timestamps (openai-whisper looks at the first segment)."""
    return len(segments) > 0 and "words" in segments[0]


def word_cues(segments: Sequence[Mapping], options: WriterOptions) -> Iterator[Tuple[float, float, str]]:
    """The cues of word subtitles: one per subtitle, or with highlight_words one per word (its subtitle's
    text with that word underlined) and a plain one over each gap between words."""
    for subtitle in word_subtitles(segments, options):
        texts = [text for text, _, _ in subtitle]  # each word as placed: leading space or "\n" included
        whole = "".join(texts)
        if not options.highlight_words:
            yield subtitle[0][1], subtitle[-1][2], whole
            continue
        shown_until = subtitle[0][1]
        for index, (_, start, end) in enumerate(subtitle):
            if not same_millisecond(shown_until, start):
                yield shown_until, start, whole
            yield start, end, "".join(underlined(text) if i == index else text for i, text in enumerate(texts))
            shown_until = end


def underlined(text: str) -> str:
    """A placed word wrapped in <u>...</u>, its leading whitespace (or line break) left outside."""
    return UNDERLINE.sub(r"\1<u>\2</u>", text, count=1)


def word_subtitles(segments: Sequence[Mapping], options: WriterOptions) -> Iterator[List[Tuple[str, float, float]]]:
    """The words grouped into subtitles, each a list of (text as placed, start, end).

    A word continues its line (with its leading space) while the line stays within max_line_width;
    otherwise it starts a new line (stripped, after a "\\n") or, once max_line_count lines are full
    or after a long pause, a new subtitle. Unless subtitles span segments, each segment, and each run
    of max_words_per_line words in it, starts a new subtitle.
    """
    spans = options.spans_segments
    width = options.max_line_width or UNLIMITED
    run_length = options.max_words_per_line or UNLIMITED
    subtitle: List[Tuple[str, float, float]] = []
    line_length, line_count = 0, 1
    previous_start = first_word_start(segments) or 0.0
    for segment in segments:
        words = segment.get("words", [])
        for run_start in range(0, len(words), run_length):
            for position, word in enumerate(words[run_start:run_start + run_length]):
                text = word["word"]
                paused = spans and word["start"] - previous_start > PAUSE_SECONDS
                new_run = position == 0 and len(subtitle) > 0 and not spans
                if line_length > 0 and line_length + len(text) <= width and not paused and not new_run:
                    line_length += len(text)
                else:
                    text = text.strip()
                    lines_full = options.max_line_count is not None and (paused or line_count >= options.max_line_count)
                    if new_run or (len(subtitle) > 0 and lines_full):
                        yield subtitle
                        subtitle, line_count = [], 1
                    elif line_length > 0:
                        line_count += 1
                        text = "\n" + text
                    line_length = len(text.strip())
                subtitle.append((text, word["start"], word["end"]))
                previous_start = word["start"]
    if subtitle:
        yield subtitle


def first_word_start(segments: Sequence[Mapping]) -> Optional[float]:
    """The first word's start, else the first segment's start (None without segments)."""
    for segment in segments:
        for word in segment.get("words", []):
            return word["start"]
    return segments[0]["start"] if segments else None


# ---------------------------------------------------------------------------------- formats

def to_txt(result: Mapping, options: WriterOptions = NO_OPTIONS) -> str:
    """One stripped segment text per line (the word options do not apply)."""
    return "".join(segment["text"].strip() + "\n" for segment in transcript_of(result)["segments"])


def to_srt(result: Mapping, options: WriterOptions = NO_OPTIONS) -> str:
    """SubRip: counter from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text, blank line."""
    blocks = []
    for number, (start, end, text) in enumerate(cues(result, options), start=1):
        timing = f"{format_timestamp(start, True, ',')} --> {format_timestamp(end, True, ',')}"
        blocks.append(f"{number}\n{timing}\n{text}\n\n")
    return "".join(blocks)


def to_vtt(result: Mapping, options: WriterOptions = NO_OPTIONS) -> str:
    """WebVTT: ``WEBVTT`` header, then ``[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm``, text, blank line per cue."""
    blocks = ["WEBVTT\n\n"]
    for start, end, text in cues(result, options):
        blocks.append(f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n\n")
    return "".join(blocks)


def to_tsv(result: Mapping, options: WriterOptions = NO_OPTIONS) -> str:
    """Tab-separated ``start end text`` with integer milliseconds under a header row (segments; no options)."""
    rows = ["start\tend\ttext\n"]
    for segment in transcript_of(result)["segments"]:
        text = segment["text"].strip().replace("\t", " ")
        rows.append(f"{round(1000 * segment['start'])}\t{round(1000 * segment['end'])}\t{text}\n")
    return "".join(rows)


def to_json(result: Mapping, options: WriterOptions = NO_OPTIONS) -> str:
    """A PaddleX-shaped result as PaddleX's save_to_json writes it (indent 4, non-ASCII kept); openai-whisper's
    result dict (no "result" key) as its json writer does (``json.dumps`` defaults: one line, ASCII escapes)."""
    if is_paddlex_shaped(result):
        return json.dumps(plain(result), indent=4, ensure_ascii=False)
    return json.dumps(plain(result))


def is_paddlex_shaped(result: Mapping) -> bool:
    """True for {"input_path", "result": {...}}; False for a bare {"text", "segments", "language"}."""
    return "result" in result


WRITERS: Dict[str, Callable[[Mapping, WriterOptions], str]] = {
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
                 stem: Optional[str] = None, options: WriterOptions = NO_OPTIONS) -> List[Path]:
    """Write ``output_dir/{stem}.{format}`` for each format, all or none; returns the files written.

    ``options`` lay out the words of srt and vtt (``WriterOptions``). ``stem`` defaults to the input's
    file name without suffix (``Result.stem``: time_random when the result has no input path). Raises OutputError (one line naming the file) when a file cannot be
    written or put in place; then none of this call's files exists, temporary or final.
    """
    chosen = resolve_formats(formats)
    if stem is None:
        stem = (result if isinstance(result, Result) else Result(result)).stem()
    texts = {name: WRITERS[name](result, options) for name in chosen}
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
