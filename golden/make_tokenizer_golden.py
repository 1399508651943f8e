"""Record PaddleX's Whisper tokenizer on the test corpus: golden/tokenizer/paddlex_tokenizer.json.gz.

Runs in the reference environment only (paddlex 3.7.2 + paddlepaddle), never in CI:

    /work/refenv/bin/python golden/make_tokenizer_golden.py \
        --multilingual /work/models/paddle/whisper_base --english /work/models/paddle/whisper_tiny.en

Each model directory must hold PaddleX's ``assets/multilingual`` or ``assets/gpt2`` tokenizer files.
PaddleX builds its tokenizer with ``get_tokenizer(multilingual, resource_path=model_dir)``; this
script records, per vocabulary: the special ids it reports, ``encode(text).input_ids`` and
``decode(ids)`` for every corpus text, and ``decode`` / ``decode_with_timestamps`` of the seeded
id lists of tests/tokenizer_corpus.py. A call that raises is recorded as null.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import tokenizer_corpus  # noqa: E402

OUT = ROOT / "golden" / "tokenizer" / "paddlex_tokenizer.json.gz"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def call_or_none(fn, *args):
    """fn(*args), or None when PaddleX raises."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - any PaddleX failure is recorded as "no result"
        return None


def record_vocabulary(get_tokenizer, model_dir: Path, multilingual: bool, texts: list) -> dict:
    """Everything the tests compare, for one vocabulary."""
    tok = get_tokenizer(multilingual, resource_path=str(model_dir))
    name = "multilingual" if multilingual else "gpt2"
    assets = model_dir / "assets" / name
    specials = {
        "eot": tok.eot, "sot": tok.sot, "sot_lm": tok.sot_lm, "sot_prev": tok.sot_prev,
        "no_speech": tok.no_speech, "no_timestamps": tok.no_timestamps,
        "timestamp_begin": tok.timestamp_begin, "len": len(tok.tokenizer),
        "sot_sequence": list(tok.sot_sequence),
        "sot_sequence_including_notimestamps": list(tok.sot_sequence_including_notimestamps),
        "non_speech_tokens": list(tok.non_speech_tokens),
        "all_language_tokens": list(tok.all_language_tokens),
        "all_language_codes": list(tok.all_language_codes),
    }
    if multilingual:
        specials["sot_sequence_by_task"] = {
            f"{lang}/{task}": list(get_tokenizer(True, resource_path=str(model_dir), language=lang,
                                                 task=task).sot_sequence)
            for lang in ("en", "de", "zh", "iw", "su", "german") for task in ("transcribe", "translate")
        }
    encoded = [tok.encode(t).input_ids for t in texts]
    sequences = tokenizer_corpus.id_sequences(tok.eot, tok.timestamp_begin, tok.timestamp_begin + 1501)
    return {
        "assets": {f.name: file_sha256(f) for f in sorted(assets.iterdir())},
        "specials": specials,
        "encode": encoded,
        "decode": [call_or_none(tok.decode, ids) for ids in encoded],
        "id_sequences": sequences,
        "id_sequences_decode": [call_or_none(tok.decode, ids) for ids in sequences],
        "id_sequences_decode_with_timestamps": [call_or_none(tok.decode_with_timestamps, ids)
                                                for ids in sequences],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multilingual", type=Path, required=True, help="PaddleX whisper_base model dir")
    parser.add_argument("--english", type=Path, required=True, help="PaddleX whisper_tiny.en model dir")
    args = parser.parse_args(argv)
    from paddlex.inference.models.multilingual_speech_recognition.processors import get_tokenizer

    texts = tokenizer_corpus.corpus()
    golden = {
        "made_by": "golden/make_tokenizer_golden.py",
        "versions": {"python": platform.python_version(), "paddlex": metadata.version("paddlex"),
                     "paddlepaddle": metadata.version("paddlepaddle"), "regex": metadata.version("regex")},
        "corpus_sha256": tokenizer_corpus.corpus_sha256(texts),
        "texts": texts,
        "multilingual": record_vocabulary(get_tokenizer, args.multilingual, True, texts),
        "gpt2": record_vocabulary(get_tokenizer, args.english, False, texts),
    }
    payload = json.dumps(golden, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    OUT.write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(texts)} texts)")


if __name__ == "__main__":
    main()
