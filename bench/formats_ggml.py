"""Prove that numwhisper's ggml files are real whisper.cpp files, with whisper.cpp and ggml themselves.

    /work/benchenv/bin/pip install pywhispercpp           # whisper.cpp + ggml, a manylinux wheel
    /work/benchenv/bin/python bench/formats_ggml.py [--model /path/base.safetensors] [--out DIR]

1. ggml's own quantisers: every matrix of the model is quantised by ggml's ``ggml_quantize_chunk``
   (from the libggml-base that pywhispercpp bundles, called through ctypes) and by
   ``numwhisper.formats.ggml.quantize``; the bytes must be identical. ggml's ``dequantize_row_*``
   and ours must agree bit for bit on those blocks.
2. whisper.cpp transcribes golden clips with the f16, q8_0 and q5_0 files ``write_ggml`` wrote.
3. numwhisper reads the same files back (``read_ggml``) and transcribes the same clips; the table
   puts both texts side by side, with numwhisper on the original safetensors model as reference.

Greedy decoding, no timestamps-driven prompt, two threads. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from numwhisper.formats import checkpoint  # noqa: E402
from numwhisper.formats.ggml import TYPE_BY_NAME, dequantize, quantize, read_ggml, write_ggml  # noqa: E402

CLIPS = (("en_jfk.wav", "en"), ("de_picovoice_test_de.wav", "de"))
FILE_TYPES = ("f16", "q8_0", "q5_0")
QUANT_TYPES = ("q8_0", "q5_0", "q5_1", "q4_0", "q4_1")
THREADS = 2


# ---------------------------------------------------------------- ggml's own quantisers

def ggml_library():
    """libggml-base as pywhispercpp ships it, with the prototypes used here."""
    import pywhispercpp

    libs = Path(pywhispercpp.__file__).resolve().parent.parent / "pywhispercpp.libs"
    found = sorted(glob.glob(str(libs / "libggml-base-*.so*")))
    if not found:
        raise SystemExit(f"no libggml-base in {libs}")
    lib = ctypes.CDLL(found[0])
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_type_name.restype = ctypes.c_char_p
    lib.ggml_type_size.restype = ctypes.c_size_t
    lib.ggml_blck_size.restype = ctypes.c_int64
    return lib, found[0]


def ggml_quantize(lib, values: np.ndarray, type_name: str) -> bytes:
    """ggml_quantize_chunk over rows of a float32 matrix [rows, n_per_row]."""
    code = TYPE_BY_NAME[type_name].code
    x = np.ascontiguousarray(values, dtype=np.float32)  # [rows, n]
    out = np.zeros(x.size // 32 * TYPE_BY_NAME[type_name].type_size, np.uint8)
    n = lib.ggml_quantize_chunk(code, x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
    assert n == out.size, (n, out.size)
    return out.tobytes()


def ggml_dequantize(lib, raw: bytes, type_name: str, n_values: int) -> np.ndarray:
    fn = getattr(lib, f"dequantize_row_{type_name}")
    src = np.frombuffer(raw, np.uint8).copy()
    y = np.zeros(n_values, np.float32)
    fn(ctypes.c_void_p(src.ctypes.data), ctypes.c_void_p(y.ctypes.data), ctypes.c_int64(n_values))
    return y


def compare_quantisers(lib, ckpt) -> list:
    """Rows (type, matrices, blocks, differing blocks, dequant bit-equal) over every 2-D weight."""
    matrices = {k: np.asarray(v, dtype=np.float32) for k, v in ckpt.tensors.items()
                if v.ndim == 2 and not k.endswith("positional_embedding")}
    rows = []
    for type_name in QUANT_TYPES:
        t = TYPE_BY_NAME[type_name]
        assert lib.ggml_type_name(t.code).decode() == type_name and lib.ggml_type_size(t.code) == t.type_size
        blocks = differing = 0
        dequant_equal = True
        for values in matrices.values():
            theirs, ours = ggml_quantize(lib, values, type_name), quantize(values, type_name)
            a = np.frombuffer(theirs, np.uint8).reshape(-1, t.type_size)
            b = np.frombuffer(ours, np.uint8).reshape(-1, t.type_size)
            blocks += len(a)
            differing += int(np.any(a != b, axis=1).sum())
            y_theirs = ggml_dequantize(lib, theirs, type_name, values.size)
            dequant_equal &= bool(np.array_equal(y_theirs.view(np.uint32), dequantize(theirs, type_name).view(np.uint32)))
        rows.append((type_name, len(matrices), blocks, differing, dequant_equal))
    return rows


# ---------------------------------------------------------------- transcriptions

def whisper_cpp_texts(model_path: Path) -> tuple:
    """(texts per clip, load+run seconds) from whisper.cpp on one ggml file."""
    from pywhispercpp.model import Model

    start = time.perf_counter()
    model = Model(str(model_path), n_threads=THREADS, print_progress=False, print_realtime=False,
                  redirect_whispercpp_logs_to=None)
    texts = []
    for clip, language in CLIPS:
        segments = model.transcribe(str(REPO / "golden" / "audio" / clip), language=language)
        texts.append("".join(s.text for s in segments).strip())
    del model
    return texts, time.perf_counter() - start


def numwhisper_texts(ckpt) -> tuple:
    """(texts per clip, seconds) from numwhisper's NumPy backend on a checkpoint, greedy."""
    from numwhisper.devices import resolve_device
    from numwhisper.transcription import WhisperModel

    start = time.perf_counter()
    model = WhisperModel.from_checkpoint(ckpt, resolve_device("cpu"))
    texts = []
    for clip, language in CLIPS:
        result = model.transcribe(str(REPO / "golden" / "audio" / clip), language=language, beam_size=None)
        texts.append(result["result"]["text"].strip())
    return texts, time.perf_counter() - start


def max_difference(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(a.tensors[k], np.float32) - np.asarray(b.tensors[k], np.float32))))
               for k in a.tensors)


# ---------------------------------------------------------------- report

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(Path.home() / ".cache/numwhisper/base.safetensors"))
    parser.add_argument("--out", default="/tmp/numwhisper-ggml-bench", help="where the ggml files go")
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint.load(args.model)
    lines = [f"# ggml files of {args.model}", ""]

    lib, lib_path = ggml_library()
    lines += [f"## Quantised bytes: numwhisper vs ggml_quantize_chunk ({Path(lib_path).name})", "",
              "| type | matrices | blocks | blocks that differ | ggml and numwhisper dequantise bit-equal |",
              "|---|---|---|---|---|"]
    for row in compare_quantisers(lib, ckpt):
        lines.append("| " + " | ".join(map(str, row)) + " |")
    print("\n".join(lines), flush=True)

    reference, seconds = numwhisper_texts(ckpt)
    table = ["", "## Transcriptions (greedy; language given)", "",
             "| model | clip | whisper.cpp | numwhisper on the same file | max abs weight diff |", "|---|---|---|---|---|"]
    for (clip, _), text in zip(CLIPS, reference):
        table.append(f"| safetensors (original) | {clip} | | {text} | 0 |")
    for file_type in FILE_TYPES:
        path = out / f"ggml-base-{file_type}.bin"
        write_ggml(ckpt, path, file_type)
        cpp, cpp_seconds = whisper_cpp_texts(path)
        back = read_ggml(path)
        ours, our_seconds = numwhisper_texts(back)
        diff = max_difference(back, ckpt)
        for (clip, _), a, b in zip(CLIPS, cpp, ours):
            table.append(f"| ggml {file_type} ({path.stat().st_size / 1e6:.1f} MB) | {clip} | {a} | {b} | {diff:.3g} |")
        print(f"{file_type}: whisper.cpp {cpp_seconds:.1f} s, numwhisper {our_seconds:.1f} s", flush=True)
    print("\n".join(table))


if __name__ == "__main__":
    main()
