"""Write openai-whisper's own transcript files (srt, vtt, txt, tsv, json) for the openai goldens' results.

Reference environment only (openai-whisper 20250625, as for generate_openai.py); never run in CI.
From the repository root, after generate_openai.py:

    /work/benchenv/bin/python golden/generate_openai_writers.py
    /work/benchenv/bin/python golden/generate_openai.py --checksums-only     # list them in manifest.json

It reads every ``golden/openai/<model>/cli/<clip>.json`` (openai-whisper's transcribe result with its
CLI defaults, words included) and hands it to openai-whisper's writers (``whisper.utils.get_writer``)
with each option set of ``OPTION_SETS``, as its command line hands them its four word options. Out:

    golden/openai/writers/option_sets.json                     the source config and every option set
    golden/openai/writers/<model>/<option set>/<clip>.<format>

srt, vtt and txt are written for every option set (openai-whisper's txt ignores the options: the
files show it). tsv and json ignore them too, so they are written for "none" only; the generator checks
that every other option set would give the same bytes. The folder is rewritten from scratch, so a
second run gives the same files.
"""

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

import whisper
from whisper.utils import get_writer

REPO = Path(__file__).resolve().parent.parent
OPENAI = REPO / "golden" / "openai"
OUT = OPENAI / "writers"
MODELS = ("base", "tiny.en")
SOURCE_CONFIG = "cli"
WORD_OPTIONS = {"highlight_words": False, "max_line_width": None, "max_line_count": None, "max_words_per_line": None}
# name -> the word options given (the others keep openai-whisper's CLI defaults, WORD_OPTIONS)
OPTION_SETS = {
    "none": {},
    "highlight": {"highlight_words": True},
    "width42": {"max_line_width": 42},
    "width42_count2": {"max_line_width": 42, "max_line_count": 2},
    "width16_count2_highlight": {"max_line_width": 16, "max_line_count": 2, "highlight_words": True},
    "words4": {"max_words_per_line": 4},
    "width20_words4": {"max_line_width": 20, "max_words_per_line": 4},  # openai-whisper warns "no effect"; it has one
}
LAID_OUT = ("srt", "vtt", "txt")  # written for every option set
PLAIN = ("tsv", "json")           # written for "none" only
BUDGET_BYTES = 1_000_000


def written(fmt: str, result: dict, options: dict) -> str:
    """What openai-whisper's writer of ``fmt`` writes for a result, as text (written into memory)."""
    with io.StringIO() as scratch:
        get_writer(fmt, ".").write_result(result, file=scratch, **options)
        return scratch.getvalue()


def write_set(model: str, name: str, result: dict, clip: str) -> int:
    """The files of one (model, option set, clip) -> bytes written."""
    options = {**WORD_OPTIONS, **OPTION_SETS[name]}
    folder = OUT / model / name
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for fmt in LAID_OUT + PLAIN:
        if fmt in PLAIN and name != "none":
            assert written(fmt, result, options) == written(fmt, result, WORD_OPTIONS), (model, name, clip, fmt)
            continue
        # openai-whisper's own file writing: ResultWriter.__call__ names the file after the audio path
        get_writer(fmt, str(folder))(result, f"{clip}.wav", **options)
        total += (folder / f"{clip}.{fmt}").stat().st_size
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    (OUT / "option_sets.json").write_text(json.dumps({
        "openai-whisper": whisper.__version__, "source_config": SOURCE_CONFIG,
        "option_sets": {name: {**WORD_OPTIONS, **given} for name, given in OPTION_SETS.items()},
        "formats": {"every option set": list(LAID_OUT), "none only": list(PLAIN)},
    }, indent=1) + "\n", encoding="utf-8")
    total, files = 0, 0
    for model in MODELS:
        sources = sorted((OPENAI / model / SOURCE_CONFIG).glob("*.json"))
        for source in sources:
            result = json.loads(source.read_text(encoding="utf-8"))
            for name in OPTION_SETS:
                total += write_set(model, name, result, source.stem)
        files += len(sources)
        print(f"{model}: {len(sources)} results x {len(OPTION_SETS)} option sets", file=sys.stderr)
    total += (OUT / "option_sets.json").stat().st_size
    print(f"golden/openai/writers: {files} results, {total:,} bytes", file=sys.stderr)
    assert total <= BUDGET_BYTES, f"{total:,} bytes is over the {BUDGET_BYTES:,} budget"


if __name__ == "__main__":
    main()
