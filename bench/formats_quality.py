"""What quantised checkpoints change: base stored lossy, measured against PaddleX's goldens.

For each lossy format (CTranslate2 int8 and int8_float16 made by ctranslate2's own converter API,
whisper.cpp q8_0 / q5_1 / q5_0 / q4_1 / q4_0 made by numwhisper's ggml writer, whose quantised
bytes equal ggml's own: bench/formats_ggml.py), the file is read as ``--model PATH`` reads it and
run through the golden parity stages on base's 16 clips (the largest encoder and logits
difference from PaddleX's float16 base) and transcribed with PaddleX's beam-5 config (word error
rate against PaddleX's text, words lower-cased without punctuation). Float16 base is the first
row: the lossless floor. Run with the bench environment's Python (it needs ctranslate2):

    /work/benchenv/bin/python bench/formats_quality.py > bench/results/formats_quality.md
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from formats_ct2 import build_folder, word_errors, words  # noqa: E402  (bench/ is not a package)

from numwhisper.backend import NumpyBackend  # noqa: E402
from numwhisper.formats import checkpoint, hub  # noqa: E402
from numwhisper.formats.ggml import write_ggml  # noqa: E402
from numwhisper.golden import files  # noqa: E402
from numwhisper.golden.check import check_tensors, options_for  # noqa: E402
from numwhisper.transcription import WhisperModel, transcribe  # noqa: E402

CT2 = ("int8", "int8_float16")
GGML = ("q8_0", "q5_1", "q5_0", "q4_1", "q4_0")


def measure(label: str, path: Path, cache: Path) -> str:
    """One table row: stage differences and word errors of the model at ``path`` on base's goldens."""
    ckpt = hub.load_checkpoint(str(path), cache=cache)
    backend = NumpyBackend.from_checkpoint(ckpt)
    model = WhisperModel.with_backend(backend, ckpt.metadata)
    worst = {"encoder": 0.0, "logits": 0.0}
    argmax_changed, errors, total, changed = 0, 0, 0, []
    for case in [c for c in files.cases() if c.model == "base"]:
        for check in check_tensors(backend, model.tokenizer, case, ("encoder", "logits")):
            worst[check.stage] = max(worst[check.stage], check.max_diff)
            argmax_changed += check.stage == "logits" and "argmax" in check.report
        ours = transcribe(model, str(files.GOLDEN_DIR / "audio" / f"{case.clip}.wav"), options_for("beam5"))
        reference = words(files.load_result("base", case.clip, "beam5")["result"]["text"])
        n = word_errors(reference, words(ours["result"]["text"]))
        errors, total = errors + n, total + len(reference)
        if n:
            changed.append(f"{case.clip} {n}")
    return (f"| {label} | {worst['encoder']:.3g} | {worst['logits']:.3g} | {argmax_changed} | "
            f"{errors}/{total} = {100 * errors / total:.2f}% | {', '.join(changed) or '-'} |")


def main() -> int:
    base = checkpoint.load(hub.resolve("base"))
    packaged_dir, _ = hub.packaged_source("base")
    print("# base in lossy formats against PaddleX's goldens (16 clips, beam 5)\n")
    print("| format | encoder max diff | logits max diff | clips whose greedy step argmax moved | "
          "word errors vs PaddleX | clips with errors |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        print(measure("float16 (as shipped)", hub.resolve("base"), work / "cache"), flush=True)
        for quantization in CT2:
            folder = work / f"faster-whisper-base-{quantization}"
            build_folder(base, packaged_dir, quantization, folder)
            print(measure(f"CTranslate2 {quantization}", folder, work / "cache"), flush=True)
        for ftype in GGML:
            path = work / f"ggml-base-{ftype}.bin"
            write_ggml(base, path, ftype)
            print(measure(f"ggml {ftype}", path, work / "cache"), flush=True)
    print("\nencoder / logits: the parity stages' largest |difference| from PaddleX on window 0 (tolerances "
          "1e-3 / 2e-3 are for float formats; a quantised model is not expected to meet them).")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
