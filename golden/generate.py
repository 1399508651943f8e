"""Write the golden outputs: PaddleX's own Whisper code run on paddle (CPU) over the golden clips.

Reference environment only (paddlepaddle 3.3.1 + paddlex 3.7.2 + safetensors + soundfile + regex);
never run in CI. From the repository root:

    /work/refenv/bin/python golden/generate.py                       # every clip, both models
    /work/refenv/bin/python golden/generate.py --clips en_jfk        # regenerate a subset

It writes golden/tensors/<model>/<clip>.safetensors, golden/results/<model>/<config>/<clip>.json
(PaddleX's result JSON, written by PaddleX's own writer), a per-window trace next to each result,
and merges its cases into golden/manifest.json. golden/README.md describes the layout.
"""

import os

# Paddle's CPU math is single-threaded by default; pin it, since another thread count changes the bits.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
# MKL picks its kernels by CPU; its conditional numerical reproducibility mode fixes one code path, so
# another machine gives the same bits (golden/README.md, "Another machine, other bits").
os.environ["MKL_CBWR"] = "COMPATIBLE"

import argparse
import contextlib
import fcntl
import hashlib
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
import paddlex  # noqa: E402
from paddlex import create_model  # noqa: E402
from paddlex.inference.models.multilingual_speech_recognition import processors as P  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stable_safetensors import write_safetensors  # noqa: E402

GOLDEN_FORMAT_VERSION = "1"
REPO = Path(__file__).resolve().parent.parent
N_FRAMES = 3000  # mel frames in a 30 s window


@dataclass(frozen=True)
class ModelSpec:
    """One model: our name, PaddleX's model name, its folder and its canonical safetensors file."""

    name: str
    paddlex_name: str
    dirname: str
    english_only: bool


MODEL_SPECS = {
    "base": ModelSpec("base", "whisper_base", "whisper_base", english_only=False),
    "tiny.en": ModelSpec("tiny.en", "whisper_tiny", "whisper_tiny.en", english_only=True),
}

# Decoding configs: overrides of the model dir's inference.yml (beam 5, T=0, language detection).
CONFIGS = {"beam5": {}, "greedy": {"beam_size": None, "patience": None}}


@dataclass(frozen=True)
class Layout:
    """Which tensors are stored in full and how the others are subset."""

    full_logits: tuple  # ((model, clip), ...) with full-vocabulary logits
    full_encoder: tuple  # ((model, clip), ...) with all 1500 encoder rows
    encoder_stride: int  # other cases: encoder rows 0, s, 2s, ... plus the last row
    top_k: int  # other cases: the top_k logits (descending) ...
    vocab_stride: int  # ... plus every vocab_stride-th vocabulary id
    n_steps: int  # decoder steps: step 0 at the prefix, then one per appended argmax
    mel_model: str  # the model whose tensors files carry the (model-independent) log-mel


@dataclass(frozen=True)
class Case:
    """One (model, clip) pair and the clip's audio file."""

    model: str
    clip: str
    audio: Path


# ---------------------------------------------------------------- files


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: Path, obj) -> None:
    """Write our own JSON files (traces, manifest): indented, UTF-8, floats as Python repr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_audio_manifest(audio_dir: Path) -> list:
    """Rows of audio_dir/manifest.tsv as dicts (columns as in the corpus manifest)."""
    lines = (audio_dir / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, line.split("\t"))) for line in lines[1:] if line.strip()]


# ---------------------------------------------------------------- log_softmax


def clamped_log_softmax(x, axis=-1, dtype=None, name=None):
    """Paddle's CPU log_softmax kernel as a formula: s = max(x - rowmax, -64); s - log(sum(exp(s)))."""
    if dtype is not None:
        x = x.astype(dtype)
    s = paddle.clip(x - x.max(axis=axis, keepdim=True), min=-64.0)
    return s - paddle.log(paddle.exp(s).sum(axis=axis, keepdim=True))


class CheckedLogSoftmax:
    """Stands in for F.log_softmax; the first `check_calls` calls of each run are also run through
    paddle's own kernel and must agree bit for bit (otherwise the run aborts)."""

    def __init__(self, original, check_calls: int):
        self.original, self.check_calls = original, check_calls
        self.calls = self.rows = 0

    def reset(self) -> dict:
        """Start a new run; return the previous run's check counts."""
        done = {"calls_checked": self.calls, "rows_checked": self.rows, "bit_identical": True}
        self.calls = self.rows = 0
        return done

    def __call__(self, x, axis=-1, dtype=None, name=None):
        y = clamped_log_softmax(x, axis=axis, dtype=dtype)
        if self.calls < self.check_calls:
            assert_bit_identical(self.original(x, axis=axis, dtype=dtype), y, "log_softmax")
            self.calls += 1
            self.rows += int(np.prod(x.shape[:-1]))
        return y


def assert_bit_identical(a, b, what: str) -> None:
    """Raise unless two float32 tensors hold exactly the same bits."""
    a, b = np.asarray(a.numpy() if hasattr(a, "numpy") else a), np.asarray(b.numpy() if hasattr(b, "numpy") else b)
    if a.shape != b.shape or not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
        raise RuntimeError(f"{what}: not bit-identical (max |diff| {np.nanmax(np.abs(a - b)) if a.shape == b.shape else 'shape'})")


def bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two float32 arrays hold exactly the same bits."""
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


# ---------------------------------------------------------------- PaddleX pieces


def load_model(spec: ModelSpec, models_dir: Path):
    """PaddleX's predictor for a model dir, with its WhisperRunnerPredictor and Whisper layer."""
    wrapper = create_model(model_name=spec.paddlex_name, model_dir=str(models_dir / spec.dirname), device="cpu")
    predictor = wrapper._predictor
    return wrapper, predictor, predictor.runner._model


def tokenizer_facts(model, resource_path: str) -> dict:
    """The token ids and suppression lists PaddleX's decoding uses for this model (language 'en')."""
    task = P.DecodingTask(model, P.DecodingOptions(language="en"), resource_path)
    tok = task.tokenizer
    facts = {
        "len_tokenizer": len(tok.tokenizer),
        "eot": tok.eot,
        "sot": tok.sot,
        "sot_prev": tok.sot_prev,
        "sot_lm": tok.sot_lm,
        "no_speech": tok.no_speech,
        "no_timestamps": tok.no_timestamps,
        "timestamp_begin": tok.timestamp_begin,
        "sot_sequence_en": list(tok.sot_sequence),
        "blank_suppress": tok.encode(" ").input_ids + [tok.eot],
        "non_speech_tokens": list(tok.non_speech_tokens),
        "suppress_tokens": list(task._get_suppress_tokens()),
        "sample_len": task.sample_len,
        "n_ctx": task.n_ctx,
    }
    if model.is_multilingual:
        facts["language_tokens"] = list(tok.all_language_tokens)
        facts["language_codes"] = list(tok.all_language_codes)
    return facts


def decoder_steps(model, resource_path: str, audio_features, language: str, n_steps: int):
    """Logits rows for PaddleX's initial tokens, then each raw argmax appended (kv cache as PaddleX's)."""
    task = P.DecodingTask(model, P.DecodingOptions(language=language), resource_path)
    tokens = paddle.to_tensor([list(task.initial_tokens)])  # [1, P]
    rows, picks = [], []
    try:
        for _ in range(n_steps):
            logits = task.inference.logits(tokens, audio_features)[:, -1]  # [1, V]
            nxt = paddle.argmax(logits, axis=-1)  # [1]
            rows.append(logits.numpy()[0])
            picks.append(int(nxt.item()))
            tokens = paddle.concat([tokens, nxt[:, None]], axis=-1)  # [1, P + 1]
    finally:
        task.inference.cleanup_caching()
    return list(task.initial_tokens), np.stack(rows).astype(np.float32), picks  # rows [n_steps, V]


def top_ids(row: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest values, descending (ties by ascending id)."""
    return np.lexsort((np.arange(row.shape[0]), -row))[:k].astype(np.int32)


def encoder_rows(n_ctx: int, stride: int) -> np.ndarray:
    """Row indices kept for a subset encoder output: every stride-th row plus the last."""
    return np.unique(np.r_[np.arange(0, n_ctx, stride), n_ctx - 1]).astype(np.int32)


def compute_tensors(case: Case, predictor, model, layout: Layout, lsm: CheckedLogSoftmax) -> tuple:
    """The case's tensors (mel, encoder output, decoder logits, language probs) and their metadata."""
    rp = str(predictor.model_dir)
    full_logits = (case.model, case.clip) in layout.full_logits
    full_encoder = (case.model, case.clip) in layout.full_encoder
    with paddle.no_grad():
        mel = predictor._build_mel(str(case.audio))  # [80, T] exactly as the predictor builds it
        window = P.pad_or_trim(mel, N_FRAMES)  # [80, 3000]
        features = model.encoder(window.unsqueeze(0))  # [1, 1500, d]
        language, codes, probs = "en", None, None
        if model.is_multilingual:
            _, found = model.detect_language(features, rp)  # already-encoded input: no second encode
            codes, probs = list(found[0]), found[0]
            language = max(probs, key=probs.get)
        prefix, logits, picks = decoder_steps(model, rp, features, language, layout.n_steps)
    mel_np = mel.numpy()  # [80, T]
    feats = features.numpy()[0]  # [1500, d]
    rows = np.arange(feats.shape[0], dtype=np.int32) if full_encoder else encoder_rows(feats.shape[0], layout.encoder_stride)
    tensors = {"encoder_output": feats[rows], "encoder_output.rows": rows,
               "decoder.prefix": np.array(prefix, np.int32), "decoder.argmax": np.array(picks, np.int32)}
    if full_logits:
        tensors["logits"] = logits  # [n_steps, V]
    else:
        top = np.stack([top_ids(r, layout.top_k) for r in logits])  # [n_steps, k]
        strided = np.arange(0, logits.shape[1], layout.vocab_stride, dtype=np.int32)  # [ceil(V / s)]
        tensors["logits.top_ids"] = top
        tensors["logits.top_values"] = np.take_along_axis(logits, top, axis=1)  # [n_steps, k]
        tensors["logits.stride_ids"] = strided
        tensors["logits.stride_values"] = logits[:, strided]  # [n_steps, ceil(V / s)]
    if case.model == layout.mel_model:
        tensors["mel"] = mel_np[:, :N_FRAMES]  # [80, min(T, 3000)]
    if probs is not None:
        tensors["language_probs"] = np.array([probs[c] for c in codes], np.float32)  # [99]
    # the replacement formula against paddle's kernel on these real rows (raw, and masked with -inf)
    raw = paddle.to_tensor(logits)
    masked = raw.clone()
    masked[:, : logits.shape[1] // 2] = -np.inf
    for x in (raw, masked):
        assert_bit_identical(lsm.original(x, axis=-1, dtype="float32"), clamped_log_softmax(x, dtype="float32"), "log_softmax")
    meta = {
        "golden.format_version": GOLDEN_FORMAT_VERSION,
        "model": case.model,
        "clip": case.clip,
        "n_samples": str(predictor.audio_reader.read(str(case.audio))[0].shape[0]),
        "n_frames": str(mel_np.shape[1]),
        "encoder_output.layout": "full" if full_encoder else f"rows 0::{layout.encoder_stride} plus the last",
        "encoder_output.stride": "1" if full_encoder else str(layout.encoder_stride),
        "logits.layout": "full" if full_logits else f"top{layout.top_k}+stride{layout.vocab_stride}",
        "logits.n_steps": str(layout.n_steps),
        "logits.top_k": str(layout.top_k),
        "logits.vocab_stride": str(layout.vocab_stride),
        "decoder.prefix": json.dumps(prefix),
        "decoder.appended": json.dumps(picks[:-1]),
        "detected_language": language,
        "mel.stored": "yes" if "mel" in tensors else f"no (in tensors/{layout.mel_model}/{case.clip}.safetensors)",
    }
    if codes is not None:
        meta["language_codes"] = json.dumps(codes)
    reference = {"mel": mel_np, "encoder_output": feats, "logits_step0": logits[0], "language_probs": tensors.get("language_probs")}
    return tensors, meta, reference


@contextlib.contextmanager
def observe(predictor, model):
    """Record, during one PaddleX predict call, what the pipeline itself computes: the mel, encoder
    outputs, language probabilities, the first decoder call's last-position logits and every window's
    DecodingResult. Only wraps and hooks; PaddleX's code runs unchanged."""
    seen = {"mel": [], "encoder": [], "language_probs": [], "decoder_first": [], "windows": []}
    build_mel, cls = predictor._build_mel, type(model)

    def record_mel(input_data):
        mel = build_mel(input_data)
        seen["mel"].append(mel.numpy())
        return mel

    def record_language(mel, resource_path, tokenizer=None):
        tokens, probs = cls.detect_language(model, mel, resource_path, tokenizer)
        seen["language_probs"].append(probs)
        return tokens, probs

    def record_decode(segment, options, resource_path):
        result = cls.decode(model, segment, options, resource_path)
        seen["windows"].append({
            "window": len(seen["windows"]),
            "prompt_tokens": len(options.prompt or []),
            "temperature": result.temperature,
            "tokens": list(result.tokens),
            "text": result.text,
            "avg_logprob": result.avg_logprob,
            "no_speech_prob": result.no_speech_prob,
            "compression_ratio": result.compression_ratio,
        })
        return result

    def record_encoder(layer, inputs, output):
        seen["encoder"].append(output.numpy()[0])

    def record_decoder(layer, inputs, output):
        if not seen["decoder_first"]:
            seen["decoder_first"].append(output.numpy()[:, -1])  # [B, V]

    predictor._build_mel, model.detect_language, model.decode = record_mel, record_language, record_decode
    hooks = [model.encoder.register_forward_post_hook(record_encoder),
             model.decoder.register_forward_post_hook(record_decoder)]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()
        del predictor._build_mel, model.detect_language, model.decode


def run_config(case: Case, wrapper, predictor, model, config: str, result_path: Path):
    """Run PaddleX's predictor with one config; write its result JSON with PaddleX's own writer."""
    saved = {k: predictor.config[k] for k in CONFIGS[config]}
    predictor.config.update(CONFIGS[config])
    try:
        kwargs = predictor._build_decode_kwargs()
        with observe(predictor, model) as seen:
            start = time.perf_counter()
            (result,) = list(wrapper.predict(str(case.audio)))
            wall = time.perf_counter() - start
    finally:
        predictor.config.update(saved)
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result.save_to_json(str(result_path))
    return result, seen, wall, kwargs


def pipeline_checks(seen: dict, reference: dict) -> dict:
    """Compare what the pipeline computed with the stored tensors (bit for bit where that must hold)."""
    window0 = seen["encoder"][: 2 if reference["language_probs"] is not None else 1]  # detect + decode, or decode
    checks = {"mel_bit_identical": bit_equal(seen["mel"][0], reference["mel"]),
              "encoder_window0_bit_identical": all(bit_equal(e, reference["encoder_output"]) for e in window0)}
    if reference["language_probs"] is not None:
        codes_probs = np.array(list(seen["language_probs"][0].values()), np.float32)
        checks["language_probs_bit_identical"] = bit_equal(codes_probs, reference["language_probs"])
    first = seen["decoder_first"][0]  # [B, V]: B = 1 (greedy) or 5 (beam)
    diff = np.abs(first - reference["logits_step0"][None]).max()
    checks[f"decoder_step0_batch{first.shape[0]}_max_abs_diff"] = float(diff)
    return checks


# ---------------------------------------------------------------- manifest


@contextlib.contextmanager
def locked(out: Path):
    """Serialize manifest updates between generator processes writing the same directory."""
    lock = Path("/tmp") / f"numwhisper-golden-{hashlib.sha1(str(out).encode()).hexdigest()[:12]}.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def environment() -> dict:
    """Versions and settings the outputs depend on."""
    import safetensors
    import soundfile

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "paddlepaddle": paddle.__version__,
        "paddlex": paddlex.__version__,
        "safetensors": safetensors.__version__,
        "soundfile": soundfile.__version__,
        "machine": platform.machine(),
        "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"],
        "MKL_NUM_THREADS": os.environ["MKL_NUM_THREADS"],
        "MKL_CBWR": os.environ["MKL_CBWR"],
    }


LOG_SOFTMAX_NOTE = (
    "paddle's CPU log_softmax kernel takes ~1.5-3.5 s per [*, 51865] call here. For the duration of the "
    "run, paddle.nn.functional.log_softmax is replaced by the same clamped formula written with paddle "
    "ops: s = clip(x - max(x), min=-64); out = s - log(sum(exp(s))). Verified bit-identical to paddle's "
    "kernel on every case's raw decoder rows and on those rows masked with -inf, and on the first "
    "check_calls real calls of every PaddleX run (filtered logits, [5, V] beam batches); any mismatch "
    "aborts the run. Everything else (beam search, no-speech, timestamp rules) is PaddleX's code."
)


def model_entry(spec: ModelSpec, predictor, model, models_dir: Path, sources_dir: Path) -> dict:
    """Provenance and tokenizer facts of one model."""
    mdir = models_dir / spec.dirname
    source = sources_dir / f"{spec.name}.safetensors"
    return {
        "paddlex_model_name": spec.paddlex_name,
        "model_dir": spec.dirname,
        "inference_pdparams_sha256": sha256_file(mdir / "inference.pdparams"),
        "inference_yml_sha256": sha256_file(mdir / "inference.yml"),
        "mel_filters_sha256": sha256_file(mdir / "assets" / "mel_filters.npz"),
        "source_safetensors": source.name,
        "source_safetensors_sha256": sha256_file(source),
        "dims": dict(vars(model.dims)),
        "multilingual": bool(model.is_multilingual),
        "inference_yml": dict(predictor.config),
        "tokenizer": tokenizer_facts(model, str(predictor.model_dir)),
    }


def merged_case(old: dict | None, new: dict) -> dict:
    """A case's manifest entry after a run: the new fields, plus the old entry's files, wall times and
    checks of what this run did not redo (a --tensors-only run keeps the results it did not rerun)."""
    if old is None:
        return new
    files = old["files"] + [f for f in new["files"] if f not in old["files"]]
    return {**old, **new, "files": files, "wall_time_s": {**old["wall_time_s"], **new["wall_time_s"]},
            "checks": {**old["checks"], **new["checks"]}}


def merge_manifest(out: Path, audio_dir: Path, layout: Layout, check_calls: int, models: dict, configs: dict,
                   cases: list) -> None:
    """Merge this run's models and cases into out/manifest.json and refresh the file checksums."""
    path = out / "manifest.json"
    with locked(out):
        old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        keep = {(c["model"], c["clip"]): c for c in old.get("cases", [])}
        keep.update({(c["model"], c["clip"]): merged_case(keep.get((c["model"], c["clip"])), c) for c in cases})
        rows = {r["file"]: r for r in read_audio_manifest(audio_dir)}
        audio = {Path(name).stem: {"file": os.path.relpath(audio_dir / name, out), "language": r["language"],
                                   "duration_s": r["duration_s"], "sha256": sha256_file(audio_dir / name)}
                 for name, r in sorted(rows.items())}
        files = {os.path.relpath(audio_dir / "manifest.tsv", out): sha256_file(audio_dir / "manifest.tsv")}
        files.update({a["file"]: a["sha256"] for a in audio.values()})
        for c in sorted(keep.values(), key=lambda c: (c["model"], c["clip"])):
            files.update({f: sha256_file(out / f) for f in c["files"]})
        manifest = {
            "golden_format_version": GOLDEN_FORMAT_VERSION,
            "generator": "golden/generate.py",
            "environment": environment(),
            "log_softmax_replacement": {"note": LOG_SOFTMAX_NOTE, "check_calls_per_run": check_calls},
            "models": {**old.get("models", {}), **models},
            "configs": {**old.get("configs", {}), **configs},
            "layout": {
                "full_logits": [list(x) for x in layout.full_logits],
                "full_encoder": [list(x) for x in layout.full_encoder],
                "encoder_stride": layout.encoder_stride,
                "top_k": layout.top_k,
                "vocab_stride": layout.vocab_stride,
                "n_steps": layout.n_steps,
                "mel_model": layout.mel_model,
                "mel_frames": "min(T, 3000): window 0 of the whole-file log-mel",
            },
            "audio": audio,
            "cases": sorted(keep.values(), key=lambda c: (c["model"], c["clip"])),
            "files": dict(sorted(files.items())),
        }
        write_json(path, manifest)


# ---------------------------------------------------------------- driver


def run_case(case: Case, loaded: tuple, layout: Layout, lsm: CheckedLogSoftmax, out: Path, configs: list) -> tuple:
    """Tensors, then each config's PaddleX result, for one case; returns its manifest entry and the
    decode kwargs PaddleX built for each config."""
    wrapper, predictor, model = loaded
    files, times, checks, configs_used = [], {}, {}, {}
    start = time.perf_counter()
    tensors, meta, reference = compute_tensors(case, predictor, model, layout, lsm)
    tpath = out / "tensors" / case.model / f"{case.clip}.safetensors"
    write_safetensors(tpath, tensors, meta)
    files.append(tpath)
    times["tensors"] = round(time.perf_counter() - start, 1)
    if case.model != layout.mel_model:
        mel_file = out / "tensors" / layout.mel_model / f"{case.clip}.safetensors"
        if mel_file.is_file():
            from safetensors.numpy import load_file

            checks["mel_equal_to_" + layout.mel_model] = bit_equal(load_file(str(mel_file))["mel"], reference["mel"][:, :N_FRAMES])
    for config in configs:
        rpath = out / "results" / case.model / config / f"{case.clip}.json"
        lsm.reset()
        result, seen, wall, kwargs = run_config(case, wrapper, predictor, model, config, rpath)
        checks[config] = {**pipeline_checks(seen, reference), "log_softmax": lsm.reset()}
        wpath = out / "results" / case.model / config / "windows" / f"{case.clip}.json"
        write_json(wpath, {"model": case.model, "clip": case.clip, "config": config, "windows": seen["windows"]})
        files += [rpath, wpath]
        times[config] = round(wall, 1)
        configs_used[config] = kwargs
        language = result["result"]["language"]
        if language != meta["detected_language"]:
            raise RuntimeError(f"{case.model}/{case.clip}: pipeline language {language} != {meta['detected_language']}")
        print(f"  {config}: {wall:.1f} s, {len(result['result']['segments'])} segments, {len(seen['windows'])} windows", flush=True)
    entry = {
        "model": case.model,
        "clip": case.clip,
        "audio": os.path.relpath(case.audio, out),
        "n_frames": int(meta["n_frames"]),
        "detected_language": meta["detected_language"],
        "encoder_output": "full" if (case.model, case.clip) in layout.full_encoder else "subset",
        "logits": "full" if (case.model, case.clip) in layout.full_logits else "subset",
        "files": [os.path.relpath(f, out) for f in files],
        "wall_time_s": times,
        "checks": checks,
    }
    return entry, configs_used


def select_cases(audio_dir: Path, models: list, clips: list) -> list:
    """Cases for the chosen models and clips; English-only models get the clips whose language is 'en'."""
    rows = read_audio_manifest(audio_dir)
    known = {Path(r["file"]).stem for r in rows}
    unknown = set(clips) - known - {"all"}
    if unknown:
        raise SystemExit(f"unknown clips: {sorted(unknown)}")
    cases = []
    for name in models:
        for r in rows:
            clip = Path(r["file"]).stem
            if ("all" in clips or clip in clips) and (not MODEL_SPECS[name].english_only or r["language"] == "en"):
                cases.append(Case(name, clip, audio_dir / r["file"]))
    return cases


def parse_pairs(items: list) -> tuple:
    """'model:clip' strings to a tuple of pairs."""
    return tuple(tuple(x.split(":", 1)) for x in items)


def main(argv=None) -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", default="/work/models/paddle", help="folder holding the PaddleX model dirs")
    ap.add_argument("--sources-dir", default="/work/models", help="folder holding <model>.safetensors (provenance)")
    ap.add_argument("--audio-dir", default="golden/audio")
    ap.add_argument("--out", default="golden")
    ap.add_argument("--models", nargs="+", default=["base", "tiny.en"], choices=sorted(MODEL_SPECS))
    ap.add_argument("--clips", nargs="+", default=["all"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--tensors-only", action="store_true",
                    help="rewrite the cases' tensors files only; their results, times and checks stay as they are")
    ap.add_argument("--full-logits", nargs="*", default=["base:en_jfk", "tiny.en:en_jfk"])
    ap.add_argument("--full-encoder", nargs="*", default=["base:en_jfk"])
    ap.add_argument("--encoder-stride", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--vocab-stride", type=int, default=16)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--check-calls", type=int, default=2, help="log_softmax calls per run checked against paddle's kernel")
    args = ap.parse_args(argv)

    layout = Layout(parse_pairs(args.full_logits), parse_pairs(args.full_encoder), args.encoder_stride,
                    args.top_k, args.vocab_stride, args.steps, "base")
    out, audio_dir = Path(args.out).resolve(), Path(args.audio_dir).resolve()
    models_dir, sources_dir = Path(args.models_dir), Path(args.sources_dir)
    cases = select_cases(audio_dir, args.models, args.clips)
    lsm = CheckedLogSoftmax(F.log_softmax, args.check_calls)
    F.log_softmax = lsm
    print(f"{len(cases)} cases -> {out}", flush=True)
    loaded, model_entries = {}, {}
    for case in cases:
        if case.model not in loaded:
            spec = MODEL_SPECS[case.model]
            loaded[case.model] = load_model(spec, models_dir)
            model_entries[case.model] = model_entry(spec, loaded[case.model][1], loaded[case.model][2], models_dir, sources_dir)
        print(f"{case.model}/{case.clip}", flush=True)
        entry, configs_used = run_case(case, loaded[case.model], layout, lsm, out,
                                       [] if args.tensors_only else args.configs)
        merge_manifest(out, audio_dir, layout, args.check_calls, model_entries, configs_used, [entry])
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
