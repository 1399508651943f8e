"""CTranslate2 folders made by CTranslate2 itself, read by numwhisper: every quantisation of base and tiny.en.

    /work/benchenv/bin/python bench/formats_ct2.py [--models base tiny.en] [--transcribe] [--out FILE.md]

1. Build: each model's canonical weights (``numwhisper.formats.hub.resolve``) go into CTranslate2's own
   ``specs.WhisperSpec``, q/k/v fused by its ``converters.utils.fuse_linear``, then its
   ``optimize(quantization=Q)`` and ``save`` write the folder (config.json and vocabulary.txt copied
   from the packaged CTranslate2 model, plus tokenizer.json), for every Q CTranslate2 accepts.
2. Read: ``numwhisper.formats.ct2`` reads each folder. Per Q: the largest |difference| from the source
   weights, over the CTranslate2 variables (each against its own bound: half a quantisation step,
   see tests/test_format_ct2.py) and over the canonical tensors.
3. Runtime: CTranslate2 with compute_type="float32" dequantises the folder itself when it loads it;
   its encoder output on one window of en_jfk.wav is compared with numwhisper's NumPy encoder on the
   checkpoint our reader made, next to the same comparison for the unquantised float32 folder.
4. ``--transcribe``: base int8 and float16 converted by converters/ct2_to_safetensors.py, then
   ``python -m numwhisper`` (the test env) transcribes golden/audio; text differences and word error
   rate of int8 against float16.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"
QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16")
INT8_SLACK, INT16_SLACK = 2.0 ** -15, 2.0 ** -12  # the bounds derived in tests/test_format_ct2.py


# ---------------------------------------------------------------- building with CTranslate2

def linear(weight, bias=None):
    """A CTranslate2 LinearSpec holding one OpenAI projection."""
    from ctranslate2.specs import common_spec

    spec = common_spec.LinearSpec()
    spec.weight = weight
    if bias is not None:
        spec.bias = bias
    return spec


def set_attention(spec, t: dict, prefix: str, self_attention: bool) -> None:
    """q/k/v fused by CTranslate2 (self-attention: one [3d, d]; cross: q apart, k/v fused), out last."""
    from ctranslate2.converters.utils import fuse_linear

    q = linear(t[f"{prefix}.query.weight"], t[f"{prefix}.query.bias"])
    k = linear(t[f"{prefix}.key.weight"])
    v = linear(t[f"{prefix}.value.weight"], t[f"{prefix}.value.bias"])
    if self_attention:
        fuse_linear(spec.linear[0], [q, k, v])
    else:
        fuse_linear(spec.linear[0], [q])
        fuse_linear(spec.linear[1], [k, v])
    spec.linear[-1].weight, spec.linear[-1].bias = t[f"{prefix}.out.weight"], t[f"{prefix}.out.bias"]


def set_norm(spec, t: dict, prefix: str) -> None:
    spec.gamma, spec.beta = t[f"{prefix}.weight"], t[f"{prefix}.bias"]


def set_block(spec, t: dict, prefix: str, cross: bool) -> None:
    set_attention(spec.self_attention, t, f"{prefix}.attn", self_attention=True)
    set_norm(spec.self_attention.layer_norm, t, f"{prefix}.attn_ln")
    if cross:
        set_attention(spec.attention, t, f"{prefix}.cross_attn", self_attention=False)
        set_norm(spec.attention.layer_norm, t, f"{prefix}.cross_attn_ln")
    spec.ffn.linear_0.weight, spec.ffn.linear_0.bias = t[f"{prefix}.mlp.0.weight"], t[f"{prefix}.mlp.0.bias"]
    spec.ffn.linear_1.weight, spec.ffn.linear_1.bias = t[f"{prefix}.mlp.2.weight"], t[f"{prefix}.mlp.2.bias"]
    set_norm(spec.ffn.layer_norm, t, f"{prefix}.mlp_ln")


def whisper_spec(ckpt, packaged_dir: Path):
    """CTranslate2's WhisperSpec of a canonical checkpoint (tensors as stored, float16 for base/tiny.en)."""
    from ctranslate2.specs import WhisperSpec

    d, t = ckpt.dims, {k: np.array(v) for k, v in ckpt.tensors.items()}
    spec = WhisperSpec(d.n_audio_layer, d.n_audio_head, d.n_text_layer, d.n_text_head)
    enc, dec = spec.encoder, spec.decoder
    for conv in ("conv1", "conv2"):
        getattr(enc, conv).weight, getattr(enc, conv).bias = t[f"encoder.{conv}.weight"], t[f"encoder.{conv}.bias"]
    enc.position_encodings.encodings = t["encoder.positional_embedding"]
    set_norm(enc.layer_norm, t, "encoder.ln_post")
    for i, layer in enumerate(enc.layer):
        set_block(layer, t, f"encoder.blocks.{i}", cross=False)
    dec.embeddings.weight = t["decoder.token_embedding.weight"]
    dec.projection.weight = t["decoder.token_embedding.weight"]  # tied; CTranslate2 stores it as an alias
    dec.position_encodings.encodings = t["decoder.positional_embedding"]
    set_norm(dec.layer_norm, t, "decoder.ln")
    for i, layer in enumerate(dec.layer):
        set_block(layer, t, f"decoder.blocks.{i}", cross=True)
    config = json.loads((packaged_dir / "config.json").read_text())
    for key in ("suppress_ids", "suppress_ids_begin", "lang_ids", "alignment_heads"):
        setattr(spec.config, key, config[key])
    spec.register_vocabulary((packaged_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines())
    spec.register_file(str(packaged_dir / "tokenizer.json"))
    return spec


def build_folder(ckpt, packaged_dir: Path, quantization: str, out: Path) -> dict:
    """Save a CTranslate2 folder of ``ckpt`` under ``quantization``; return its float32 variables before quantising."""
    spec = whisper_spec(ckpt, packaged_dir)
    spec.validate()
    floats = {name: value.numpy().astype(np.float32) for name, value in spec.variables().items()
              if not isinstance(value, str) and value.dtype in ("float16", "float32") and not value.is_scalar()}
    spec.optimize(quantization=quantization)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec.save(str(out))
    return floats


# ---------------------------------------------------------------- comparing

def variable_check(name: str, source: np.ndarray, got: np.ndarray, stored: dict, aliases: dict) -> tuple:
    """(max |diff|, ratio to its bound) of one CTranslate2 variable read back (an alias by its target's storage)."""
    err = np.abs(source.astype(np.float64) - got.astype(np.float64))  # [*shape]
    name = aliases.get(name, name)
    kind = stored[name].dtype
    if kind == "int8":
        step = 1.0 / stored[name + "_scale"].array.astype(np.float64)  # [rows]
        bound = ((0.5 + INT8_SLACK) * step)[:, None]  # [rows, 1]
        return float(err.max()), float((err.reshape(err.shape[0], -1) / bound).max())
    if kind == "int16":
        bound = (0.5 + INT16_SLACK) / float(stored[name + "_scale"].array)
        return float(err.max()), float(err.max() / bound)
    if kind == "bfloat16":
        bound = 2.0 ** -8 * np.abs(source.astype(np.float64))  # [*shape]
        return float(err.max()), float(np.max(np.where(err > 0, err / np.maximum(bound, 1e-300), 0)))
    exact = np.array_equal(got, source.astype(kind))
    return float(err.max()), 0.0 if exact else float("inf")


def compare_folder(folder: Path, floats: dict, ckpt) -> dict:
    """Read ``folder`` with numwhisper; the worst variable (against its bound) and tensor differences."""
    from numwhisper.formats.ct2 import describe_storage, parse_model_bin, read_ct2_dir, read_model_bin

    data = (folder / "model.bin").read_bytes()
    stored, aliases = parse_model_bin(data, str(folder))
    variables = read_model_bin(data, str(folder))
    checks = {name: variable_check(name, floats[name], variables[name], stored, aliases) for name in floats}
    worst = max(checks, key=lambda n: checks[n][1])
    ours = read_ct2_dir(folder)
    diffs = {k: float(np.abs(ours.tensors[k].astype(np.float64) - np.asarray(v, np.float64)).max())
             for k, v in ckpt.tensors.items()}
    worst_tensor = max(diffs, key=diffs.get)
    return {"storage": describe_storage(stored), "aliases": sorted(aliases), "bytes": len(data),
            "dtypes": sorted({t.dtype.name for t in ours.tensors.values()}),
            "worst_variable": worst, "variable_max_diff": max(c[0] for c in checks.values()),
            "worst_ratio_to_bound": checks[worst][1], "within_bound": all(c[1] <= 1 for c in checks.values()),
            "tensor_max_diff": diffs[worst_tensor], "worst_tensor": worst_tensor, "checkpoint": ours}


def encoder_gap(folder: Path, ckpt) -> float:
    """max |CTranslate2's encoder (compute_type float32, its own dequantisation) - numwhisper's
    encoder on ``ckpt``| over one 30 s window of en_jfk.wav."""
    import ctranslate2
    import soundfile

    from numwhisper.backend import NumpyBackend
    from numwhisper.mel import log_mel_spectrogram, pad_or_trim

    audio, _ = soundfile.read(REPO / "golden" / "audio" / "en_jfk.wav", dtype="float32")
    mel = pad_or_trim(log_mel_spectrogram(audio, ckpt.dims.n_mels))  # [n_mels, 3000]
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=2)
    theirs = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]  # [1500, d]
    ours = NumpyBackend.from_checkpoint(ckpt).encode(mel)  # [1500, d]
    return float(np.abs(theirs - ours).max())


# ---------------------------------------------------------------- transcribing

def words(text: str) -> list:
    """Lower-case words without punctuation (CJK text: one word per character)."""
    text = re.sub(r"[^\w\s']", " ", text.lower())
    out = []
    for token in text.split():
        out.extend(list(token) if re.search(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", token) else [token])
    return out


def word_errors(ref: list, hyp: list) -> int:
    """Levenshtein distance over words."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def transcribe(model: Path, clips: list, out_dir: Path) -> dict:
    """{clip name: text} from ``python -m numwhisper`` on all clips in one process."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(MAIN_PYTHON), "-m", "numwhisper", *map(str, clips), "--model", str(model), "--threads", "2",
           "--output_dir", str(out_dir), "--output_format", "txt", "--verbose", "False"]
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"numwhisper failed: {done.stderr[-2000:]}")
    print(f"  transcribed {len(clips)} clips with {model.name} in {time.time() - start:.0f} s", flush=True)
    return {clip.stem: (out_dir / f"{clip.stem}.txt").read_text(encoding="utf-8").strip() for clip in clips}


def transcribe_int8_vs_float16(work: Path, folders: dict) -> list:
    """Lines of the report: base int8 against base float16 on every golden clip."""
    clips = sorted((REPO / "golden" / "audio").glob("*.wav"))
    models = {}
    for q in ("float16", "int8"):
        models[q] = work / f"base-{q}.safetensors"
        done = subprocess.run([str(MAIN_PYTHON), str(REPO / "converters" / "ct2_to_safetensors.py"), str(folders[q]),
                               "-o", str(models[q])], capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            raise SystemExit(f"converter failed on {folders[q]}: {done.stderr}")
        print("  " + done.stdout.strip()[:160], flush=True)
    texts = {q: transcribe(models[q], clips, work / f"txt-{q}") for q in models}
    return wer_table(texts, [clip.stem for clip in clips])


def wer_table(texts: dict, names: list) -> list:
    """Report lines: per clip the word edits of int8 against float16, then the rates with and
    without the clip of most edits (one runaway repetition can outweigh all the rest)."""
    lines = ["| clip | words (float16) | word edits int8 vs float16 | int8 text where it differs |", "|---|---|---|---|"]
    counts = {}
    for name in names:
        ref, hyp = words(texts["float16"][name]), words(texts["int8"][name])
        counts[name] = (len(ref), word_errors(ref, hyp))
        shown = "" if counts[name][1] == 0 else texts["int8"][name].replace("|", "/").replace("\n", " ")[:200]
        lines.append(f"| {name} | {counts[name][0]} | {counts[name][1]} | {shown} |")
    worst = max(counts, key=lambda n: counts[n][1])
    for label, kept in (("all clips", names), (f"without {worst}", [n for n in names if n != worst])):
        n_ref, n_err = sum(counts[n][0] for n in kept), sum(counts[n][1] for n in kept)
        lines.append(f"\nWord error rate of base int8 against base float16, {label}: {n_err}/{n_ref} = "
                     f"{100 * n_err / max(n_ref, 1):.2f}% ({len(kept)} clips).")
    return lines


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["base", "tiny.en"])
    parser.add_argument("--quantizations", nargs="+", default=list(QUANTIZATIONS))
    parser.add_argument("--work", default=None, help="folder for the CTranslate2 folders (default: a temporary one)")
    parser.add_argument("--transcribe", action="store_true", help="also transcribe golden/audio with base int8 and float16")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "formats_ct2.md"))
    args = parser.parse_args()

    import ctranslate2

    from numwhisper.formats import checkpoint, hub

    work = Path(args.work or tempfile.mkdtemp(prefix="numwhisper-ct2-bench-"))
    lines = [f"# CTranslate2 folders made by ctranslate2 {ctranslate2.__version__}, read by numwhisper\n",
             "| model | quantization | stored as | model.bin MB | variables: max diff | worst/bound | within step |"
             " tensors: max diff (tensor) | numwhisper dtype | CT2 vs numwhisper encoder |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    folders = {}
    for name in args.models:
        ckpt = checkpoint.load(hub.resolve(name))
        packaged_dir, _ = hub.packaged_source(name)
        for q in args.quantizations:
            folder = work / f"{name}-{q}"
            start = time.time()
            floats = build_folder(ckpt, packaged_dir, q, folder)
            result = compare_folder(folder, floats, ckpt)
            gap = encoder_gap(folder, result.pop("checkpoint"))
            folders[(name, q)] = folder
            row = (f"| {name} | {q} | {result['storage']} | {result['bytes'] / 1e6:.1f} | {result['variable_max_diff']:.3g} "
                   f"| {result['worst_ratio_to_bound']:.6f} | {'yes' if result['within_bound'] else 'NO'} "
                   f"| {result['tensor_max_diff']:.3g} ({result['worst_tensor']}) | {'/'.join(result['dtypes'])} | {gap:.3g} |")
            lines.append(row)
            print(row, f"[{time.time() - start:.0f} s; aliases {result['aliases']}]", flush=True)
    lines.append("\nworst/bound: the largest ratio of a variable's |difference| to its bound (int8: (0.5 + 2^-15) / "
                 "scale of the row; int16: (0.5 + 2^-12) / scale; bfloat16: 2^-8 |w|; float16/float32: 0 = bit-exact).")
    if args.transcribe and "base" in args.models:
        lines += ["\n## base int8 against base float16, `python -m numwhisper` on golden/audio\n"]
        lines += transcribe_int8_vs_float16(work, {q: folders[("base", q)] for q in ("float16", "int8")})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out} (folders in {work})")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sys.exit(main())
