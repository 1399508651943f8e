"""Run the seeded hostile corpus (``hostile.fuzz_cases``) through the library, one loaded model, under
an address-space limit; print one JSON line per case, then a summary line.

    python tests/fuzz_inputs.py MODEL [--seed N] [--address-space-gib G]

Each case is written to a file and transcribed with ``numwhisper.transcribe`` (greedy, English, no
temperature fallback: damaged audio is what makes decoding retry, and retries test nothing here).
Cases whose damage leaves the same audio share the encoder's work (``transcribe``'s ``encode`` hook,
memoised by the window's log-mel), which keeps a few hundred cases to about a minute.
A case's outcome is "result", "InputError" (its message) or "other" (any other exception: a bug).
Its memory is the peak RSS while it ran (the kernel's high-water mark, reset before each case). The
address-space limit makes an unbounded allocation fail in this process instead of taking the
machine; the admission rules are meant to refuse such inputs before they allocate anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GIB = 1 << 30


def limit_address_space(gib: float) -> None:
    """Cap this process's virtual memory at ``gib`` GiB: larger allocations raise MemoryError."""
    limit = int(gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS count (VmHWM) for this process."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_bytes() -> int:
    """VmHWM: the most resident memory since the last reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memoised_encoder():
    """An ``encode(model, mel, seek)`` for ``transcribe`` that runs the encoder once per distinct window.

    Only the encoder's output is kept (2.3 MB a window for tiny.en); the cross-attention keys and
    values are recomputed each time, so the memo stays small.
    """
    from numwhisper.transcription import Window

    features = {}

    def encode(model, mel, seek):
        segment = mel.window(seek)  # [n_mels, 3000]
        key = hashlib.sha1(segment.tobytes()).hexdigest()
        if key not in features:
            features[key] = model.backend.encode(segment)  # [n_audio_ctx, d]
        return Window(seek=seek, features=features[key], cross=model.backend.cross_kv(features[key]))

    return encode


def run_case(model, options, path: Path, encode) -> dict:
    """Transcribe one file -> {"outcome", "message", "peak_rss", "seconds"}."""
    from numwhisper import transcribe
    from numwhisper.errors import InputError

    reset_peak_rss()
    started = time.perf_counter()
    try:
        result = transcribe(model, str(path), options, encode=encode)
        outcome, message = "result", result["result"]["text"]
    except InputError as err:
        outcome, message = "InputError", str(err)
    except Exception as err:  # noqa: BLE001 - any other exception is what this run looks for
        outcome, message = "other", f"{type(err).__name__}: {err}"
    return {"outcome": outcome, "message": message, "peak_rss": peak_rss_bytes(),
            "seconds": round(time.perf_counter() - started, 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model", help="a model name or path (tiny.en is quickest)")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--address-space-gib", type=float, default=8.0)
    args = p.parse_args()
    limit_address_space(args.address_space_gib)
    sys.path.insert(0, str(HERE))
    import hostile
    from numwhisper import DecodingOptions, load_model

    model = load_model(args.model)
    options = DecodingOptions(language="en", beam_size=None, temperature_increment_on_fallback=None)
    encode = memoised_encoder()
    started = time.perf_counter()
    counts = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, data in hostile.fuzz_cases(REPO, args.seed):
            path = Path(folder) / name
            path.write_bytes(data)
            case = {"case": name, "path": str(path), **run_case(model, options, path, encode)}
            path.unlink()
            counts[case["outcome"]] = counts.get(case["outcome"], 0) + 1
            print(json.dumps(case), flush=True)
    print(json.dumps({"summary": counts, "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
