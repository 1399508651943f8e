"""The transcription result as PaddleX hands it out: a dict that prints and saves itself.

Shape: {"input_path": str or None, "result": {"text", "segments": [...], "language"}}. It behaves as
PaddleX's Whisper result does:

- ``res.json`` is ``{"res": <a plain-JSON copy of the dict>}`` (numpy numbers -> Python numbers,
  arrays and tuples -> lists, paths -> strings).
- ``res.print(json_format=True, indent=4, ensure_ascii=False)`` prints ``json.dumps({"res": ...})``;
  without ``json_format`` it prints the dict ``{'res': {...}}`` as Python shows it. (PaddleX sends this
  through its logger to stderr in green; here it goes to ``file``, stdout by default, uncoloured.)
- ``res.save_to_json(path)`` writes the dict itself (no "res" wrapper) with ``json.dump``, no final
  newline. A path ending in ``.json`` is the file; anything else is a directory that receives
  ``{stem}_res.json``, ``stem`` being the input file name without its suffix (for a list of inputs,
  the first one's). Without an input path the stem is ``{unix time}_{4 random digits}``, drawn once
  per result.
"""

from __future__ import annotations

import json
import random
import sys
import time
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Optional

import numpy as np

from .atomic import atomic_write

JSON_SUFFIX = ".json"
SAVED_KEY = "res"  # PaddleX's one key in .json and the suffix of the saved file name


def plain(obj: Any) -> Any:
    """A JSON-ready copy: numpy scalars -> Python numbers, arrays/tuples -> lists, paths -> strings."""
    if isinstance(obj, Mapping):
        return {key: plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(item) for item in obj]
    if isinstance(obj, np.ndarray):
        return [plain(item) for item in obj.tolist()]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return obj.as_posix()
    return obj


def transcript_of(result: Mapping) -> Mapping:
    """The inner {"text", "segments", "language"} of a PaddleX-shaped result (or the inner dict itself)."""
    return result["result"] if "result" in result else result


def input_name(input_path: Any) -> Optional[str]:
    """The file name of an input path (a URL's last path part; a list's first item), or None."""
    if isinstance(input_path, (list, tuple)):
        input_path = input_path[0] if input_path else None
    if input_path is None:
        return None
    text = str(input_path)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return PurePosixPath(urllib.parse.unquote(parts.path)).name or parts.netloc
    return Path(text).name


class Result(dict):
    """One transcription, PaddleX-shaped: {"input_path", "result": {"text", "segments", "language"}}."""

    def __init__(self, data: Mapping = (), **fields):
        super().__init__(data, **fields)
        self._fallback_stem = None

    @property
    def text(self) -> str:
        """The whole transcript."""
        return self["result"]["text"]

    @property
    def segments(self) -> list:
        """The segment dicts (id, seek, start, end, text, tokens, temperature, avg_logprob, ...)."""
        return self["result"]["segments"]

    @property
    def language(self) -> str:
        """The language code (detected or given)."""
        return self["result"]["language"]

    @property
    def json(self) -> dict:
        """``{"res": plain copy of this result}``, as PaddleX's ``.json``."""
        return {SAVED_KEY: plain(self)}

    @property
    def str(self) -> dict:
        """``{"res": self}``, as PaddleX's ``.str``."""
        return {SAVED_KEY: self}

    def stem(self) -> str:
        """The base name of saved files: the input's file name without suffix, else time_random (fixed per result)."""
        name = input_name(self.get("input_path"))
        if name is not None:
            return Path(name).stem
        if self._fallback_stem is None:
            self._fallback_stem = f"{int(time.time())}_{random.randint(1000, 9999)}"
        return self._fallback_stem

    def to_str(self, json_format: bool = False, indent: int = 4, ensure_ascii: bool = False) -> str:
        """What ``print`` shows: JSON text of {"res": ...}, or the Python form of {'res': {...}}."""
        if json_format:
            return json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii)
        return str({SAVED_KEY: dict(self)})

    def print(self, json_format: bool = False, indent: int = 4, ensure_ascii: bool = False, file=None,
              format_json: Optional[bool] = None) -> None:
        """Print the result (to ``file``, default stdout); see ``to_str``. ``format_json`` is an alias of
        ``json_format`` (PaddleX's keyword)."""
        as_json = json_format if format_json is None else format_json
        print(self.to_str(as_json, indent, ensure_ascii), file=file if file is not None else sys.stdout)

    def save_to_json(self, save_path, indent: int = 4, ensure_ascii: bool = False) -> Path:
        """Write JSON to ``save_path`` (a .json file) or to ``save_path/{stem}_res.json``, whole or not at all
        (``atomic``); returns the file."""
        target = Path(save_path)
        if target.suffix.lower() != JSON_SUFFIX:
            target = target / f"{self.stem()}_{SAVED_KEY}{JSON_SUFFIX}"
        text = json.dumps(plain(self), indent=indent, ensure_ascii=ensure_ascii)
        atomic_write(target, lambda temporary: temporary.write_text(text, encoding="utf-8"))
        return target

    def save_all(self, save_path) -> None:
        """Every save this result supports (for Whisper, PaddleX has only JSON)."""
        self.save_to_json(save_path)
