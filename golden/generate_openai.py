"""Write openai-whisper's goldens: its own ``transcribe`` and word timing over the golden clips.

Reference environment only (torch CPU + openai-whisper 20250625 + safetensors + soundfile, as in
bench/README.md); never run in CI. From the repository root:

    /work/benchenv/bin/python golden/generate_openai.py                     # everything
    /work/benchenv/bin/python golden/generate_openai.py --clips en_jfk      # a subset

The model is openai-whisper's own: the canonical safetensors file (``--sources-dir``) is saved as the
``.pt`` openai-whisper reads (float32 tensors, ``dims``), loaded with ``whisper.load_model``, and given
the alignment heads the file's metadata names. Everything runs on one thread in float32, and torch's
generator is seeded before each transcription, so a second generation gives the same bytes.

It writes, under golden/openai/ (README.md there describes each file):
  <model>/<config>/<clip>.json     openai-whisper's transcribe result (text, segments with words, language)
  <model>/alignment/<clip>.safetensors   one window's forced alignment, step by step
  <model>/paddlex_words/<config>/<clip>.json   openai-whisper's word timing of each PaddleX golden's segments
  manifest.json                    environment, models, configs, and one line per case
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
# MKL's kernels may take a different path by CPU and by the alignment of their operands; its conditional
# numerical reproducibility mode fixes one path, so that a second generation gives the same bytes.
os.environ["MKL_CBWR"] = "COMPATIBLE"

import argparse
import copy
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch
import whisper
from safetensors import safe_open
from whisper.audio import N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim
from whisper.model import disable_sdpa
from whisper.timing import add_word_timestamps, dtw, find_alignment, median_filter
from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE, get_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stable_safetensors import write_safetensors  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "golden"
OUT = GOLDEN / "openai"
GOLDEN_FORMAT_VERSION = "1"
MODELS = ("base", "tiny.en")
PREPEND_PUNCTUATIONS = "\"'“¿([{-"  # openai-whisper's CLI defaults
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"

# openai-whisper's CLI defaults, as its cli() hands them to transcribe() (temperatures by np.arange, as there).
CLI = {
    "temperature": tuple(np.arange(0.0, 1.0 + 1e-6, 0.2)),
    "beam_size": 5, "best_of": 5, "patience": None, "length_penalty": None,
    "suppress_tokens": "-1", "initial_prompt": None, "carry_initial_prompt": False,
    "condition_on_previous_text": True, "compression_ratio_threshold": 2.4, "logprob_threshold": -1.0,
    "no_speech_threshold": 0.6, "word_timestamps": True,
    "prepend_punctuations": PREPEND_PUNCTUATIONS, "append_punctuations": APPEND_PUNCTUATIONS,
    "clip_timestamps": "0", "hallucination_silence_threshold": None,
}
CONFIGS = {
    "cli": CLI,
    "greedy": {**CLI, "temperature": (0.0,), "beam_size": None, "best_of": None},
    # the long-form options, on the long clips of base only
    "options": {**CLI, "clip_timestamps": "2.5,24,30,55", "hallucination_silence_threshold": 1.0,
                "initial_prompt": "Ivory, elephants and software licences.", "carry_initial_prompt": True},
}
OPTIONS_CLIPS = ("en_voxpopuli_long_000", "mix_en_de_fasterwhisper_multilingual")
# (model, clip): one window's forced alignment stored step by step
ALIGNMENT_CASES = (("base", "en_jfk"), ("base", "zh_paddlespeech_zh"), ("tiny.en", "en_jfk"))
PADDLEX_CONFIGS = ("beam5", "greedy")


# ---------------------------------------------------------------------------------- inputs

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clips_of(model_name: str) -> list:
    """The clips PaddleX's goldens cover for this model (the English ones for tiny.en)."""
    return sorted(p.stem for p in (GOLDEN / "results" / model_name / "beam5").glob("*.json"))


def read_audio(clip: str) -> np.ndarray:
    """A golden clip as openai-whisper's load_audio gives it: 16 kHz mono int16 / 32768 in float32."""
    samples, rate = soundfile.read(GOLDEN / "audio" / f"{clip}.wav", dtype="int16")
    assert rate == SAMPLE_RATE and samples.ndim == 1, (clip, rate, samples.shape)
    return samples.astype(np.float32) / 32768.0


def load_openai_model(source: Path, work: Path):
    """openai-whisper's model of a safetensors file, through the .pt it reads -> (model, pt sha256, heads)."""
    with safe_open(str(source), framework="pt") as f:
        metadata = f.metadata()
        state = {name: f.get_tensor(name).float() for name in f.keys()}
    dims = json.loads(metadata["dims"])
    heads = [tuple(h) for h in json.loads(metadata["alignment_heads"])]
    pt = work / f"{source.stem}.pt"
    torch.save({"dims": dims, "model_state_dict": state}, pt)
    model = whisper.load_model(str(pt), device="cpu")
    mask = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model, sha256(pt), heads


# ---------------------------------------------------------------------------------- outputs

def plain(value):
    """JSON-ready copy: numpy scalars to Python numbers, tuples to lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def write_json(path: Path, value) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(plain(value), ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


# ---------------------------------------------------------------------------------- cases

def transcribe_case(model, clip: str, config: str) -> dict:
    """openai-whisper's transcribe of one clip under one config."""
    torch.manual_seed(0)
    return whisper.transcribe(model, read_audio(clip), verbose=None, fp16=False, **CONFIGS[config])


def padded_mel(model, audio: np.ndarray) -> torch.Tensor:
    """The log-mel transcribe() windows: the audio followed by 30 s of zeros [n_mels, T + 3000]."""
    return log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels, padding=N_SAMPLES)


def window_mel(mel: torch.Tensor, seek: int) -> tuple:
    """transcribe()'s window at ``seek`` of a padded mel -> (mel [n_mels, 3000], frames of audio in it)."""
    content_frames = mel.shape[-1] - N_FRAMES
    size = min(N_FRAMES, content_frames - seek)
    return pad_or_trim(mel[:, seek:seek + size], N_FRAMES), size


def tokenizer_for(model, language: str):
    code = language if language in LANGUAGES else TO_LANGUAGE_CODE.get(language, "iw" if language == "he" else language)
    return get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language=code, task="transcribe")


def alignment_case(model, clip: str, result: dict) -> tuple:
    """The first window of a cli result, aligned step by step -> (tensors, metadata)."""
    tokenizer = tokenizer_for(model, result["language"])
    first = [s for s in result["segments"] if s["seek"] == 0]
    text_tokens = [t for s in first for t in s["tokens"] if t < tokenizer.eot]
    mel, num_frames = window_mel(padded_mel(model, read_audio(clip)), 0)
    tokens = torch.tensor([*tokenizer.sot_sequence, tokenizer.no_timestamps, *text_tokens, tokenizer.eot])
    qks = [None] * model.dims.n_text_layer
    hooks = [block.cross_attn.register_forward_hook(lambda _m, _i, outs, index=i: qks.__setitem__(index, outs[-1][0]))
             for i, block in enumerate(model.decoder.blocks)]
    with torch.no_grad(), disable_sdpa():
        logits = model(mel.unsqueeze(0), tokens.unsqueeze(0))[0]  # [T, V]
    for hook in hooks:
        hook.remove()
    heads = model.alignment_heads.indices().T.tolist()
    qk = torch.stack([qks[layer][head] for layer, head in heads]).float()  # [H, T, 1500]
    weights = qk[:, :, :num_frames // 2].softmax(dim=-1)  # [H, T, F]
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    normalised = (weights - mean) / std  # [H, T, F]
    filtered = median_filter(normalised, 7)  # [H, T, F]
    matrix = filtered.mean(axis=0)[len(tokenizer.sot_sequence):-1]  # [n_text + 1, F]
    text_indices, time_indices = dtw(-matrix)
    words = find_alignment(model, tokenizer, text_tokens, mel, num_frames)
    tensors = {
        "tokens": tokens.to(torch.int64),
        "qk": qk[:, :, :num_frames // 2].contiguous(),  # only the frames the alignment reads
        "matrix": matrix.contiguous(),
        "text_indices": torch.from_numpy(np.array(text_indices, np.int64)),
        "time_indices": torch.from_numpy(np.array(time_indices, np.int64)),
        "text_token_probs": logits[len(tokenizer.sot_sequence):len(tokenizer.sot_sequence) + len(text_tokens),
                                   :tokenizer.eot].softmax(dim=-1)[torch.arange(len(text_tokens)),
                                                                   torch.tensor(text_tokens)].contiguous(),  # [n_text]
    }
    metadata = {
        "clip": clip, "seek": "0", "num_frames": str(num_frames), "language": result["language"],
        "heads": json.dumps(heads), "sot_sequence": json.dumps(list(tokenizer.sot_sequence)),
        "text_tokens": json.dumps(text_tokens),
        "words": json.dumps(plain([{"word": w.word, "tokens": w.tokens, "start": w.start, "end": w.end,
                                    "probability": w.probability} for w in words]), ensure_ascii=False),
    }
    return tensors, metadata


def window_pieces(tokenizer, tokens: list) -> list:
    """A PaddleX window's tokens split as PaddleX splits them -> each non-blank segment's tokens."""
    ts = tokenizer.timestamp_begin
    ends = [i + 1 for i in range(len(tokens) - 1) if tokens[i] >= ts and tokens[i + 1] >= ts]
    if not ends:
        pieces = [tokens]
    else:
        starts = [0] + ends[:-1]
        pieces = [tokens[a:b] for a, b in zip(starts, ends)]
    return [p for p in pieces if tokenizer.decode([t for t in p if t < tokenizer.eot]).strip()]


def paddlex_words_case(model, clip: str, paddlex_result: dict) -> dict:
    """openai-whisper's word timing of a PaddleX golden's segments, window by window, as its transcribe
    would run it: add_word_timestamps on copies of each window's segments (their own text tokens), the
    last word's end carried to the next window. The copies' adjusted start/end are recorded but a
    PaddleX result keeps its own."""
    result = paddlex_result["result"] if "result" in paddlex_result else paddlex_result
    tokenizer = tokenizer_for(model, result["language"])
    mel = padded_mel(model, read_audio(clip))
    windows = []  # consecutive segments of one decoded window: same seek and tokens (a seek may repeat)
    for segment in result["segments"]:
        if windows and windows[-1][0] == segment["seek"] and windows[-1][1][0]["tokens"] == segment["tokens"]:
            windows[-1][1].append(segment)
        else:
            windows.append((segment["seek"], [segment]))
    last_speech = 0.0
    out = []
    for seek, segments in windows:
        pieces = window_pieces(tokenizer, list(segments[0]["tokens"]))
        assert len(pieces) == len(segments), (clip, seek, len(pieces), len(segments))
        copies = [dict(copy.deepcopy(s), tokens=p) for s, p in zip(segments, pieces)]
        window, num_frames = window_mel(mel, seek)
        add_word_timestamps(segments=copies, model=model, tokenizer=tokenizer, mel=window, num_frames=num_frames,
                            prepend_punctuations=PREPEND_PUNCTUATIONS, append_punctuations=APPEND_PUNCTUATIONS,
                            last_speech_timestamp=last_speech)
        ends = [w["end"] for s in copies for w in s["words"]]
        if ends:
            last_speech = ends[-1]
        for s, c in zip(segments, copies):
            out.append({"id": s["id"], "seek": seek, "num_frames": num_frames, "text_tokens": c["tokens"],
                        "start": s["start"], "end": s["end"], "adjusted_start": c["start"],
                        "adjusted_end": c["end"], "words": c["words"]})
    return {"clip": clip, "language": result["language"], "segments": out}


# ---------------------------------------------------------------------------------- main

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources-dir", type=Path, default=Path("/work/models"),
                        help="folder with base.safetensors and tiny.en.safetensors (the canonical files)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--clips", nargs="+", default=None, help="clip stems (default: every golden clip)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--no-paddlex-words", action="store_true", help="leave the paddlex_words files as they are")
    parser.add_argument("--checksums-only", action="store_true",
                        help="only refresh manifest.json's checksums (after generate_openai_writers.py)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.checksums_only:
        write_manifest(json.loads((OUT / "manifest.json").read_text()))
        return

    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"cases": {}, "models": {}}
    manifest.update({
        "golden_format_version": GOLDEN_FORMAT_VERSION,
        "generator": "golden/generate_openai.py",
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "openai-whisper": whisper.__version__, "numpy": np.__version__,
                        "machine": platform.machine(), "torch_threads": 1,
                        "MKL_CBWR": os.environ["MKL_CBWR"]},
        "configs": {name: plain(config) for name, config in CONFIGS.items()},
        "options_clips": list(OPTIONS_CLIPS),
    })
    with tempfile.TemporaryDirectory() as work:
        for model_name in args.models:
            source = args.sources_dir / f"{model_name}.safetensors"
            model, pt_sha, heads = load_openai_model(source, Path(work))
            manifest["models"][model_name] = {"source_safetensors_sha256": sha256(source),
                                              "pt_sha256": pt_sha, "alignment_heads": heads,
                                              "dims": plain(model.dims.__dict__)}
            clips = [c for c in clips_of(model_name) if args.clips is None or c in args.clips]
            for clip in clips:
                for config in args.configs:
                    if config == "options" and (model_name != "base" or clip not in OPTIONS_CLIPS):
                        continue
                    result = transcribe_case(model, clip, config)
                    path = OUT / model_name / config / f"{clip}.json"
                    write_json(path, result)
                    manifest["cases"][f"{model_name}/{config}/{clip}"] = case_entry(result, path)
                    print(model_name, config, clip, manifest["cases"][f"{model_name}/{config}/{clip}"], flush=True)
                    if config == "cli" and (model_name, clip) in ALIGNMENT_CASES:
                        tensors, metadata = alignment_case(model, clip, result)
                        write_safetensors(OUT / model_name / "alignment" / f"{clip}.safetensors",
                                          {k: v.numpy() for k, v in tensors.items()}, metadata)
                for config in () if args.no_paddlex_words else PADDLEX_CONFIGS:
                    paddlex = json.loads((GOLDEN / "results" / model_name / config / f"{clip}.json").read_text())
                    write_json(OUT / model_name / "paddlex_words" / config / f"{clip}.json",
                               paddlex_words_case(model, clip, paddlex))
    for path in sorted(OUT.glob("*/*/*.json")):  # every result on disk, this run's and earlier runs'
        model_name, config, clip = path.relative_to(OUT).with_suffix("").parts
        if config in CONFIGS:
            manifest["cases"][f"{model_name}/{config}/{clip}"] = case_entry(json.loads(path.read_text()), path)
    manifest["cases"] = dict(sorted(manifest["cases"].items()))
    write_manifest(manifest)


def case_entry(result: dict, path: Path) -> dict:
    """A manifest line of one result: segment and word counts, temperatures used, bytes (no wall time, so
    that a second generation writes the same bytes)."""
    segments = result["segments"]
    return {"segments": len(segments), "words": sum(len(s.get("words", [])) for s in segments),
            "temperatures": sorted({float(s["temperature"]) for s in segments}), "bytes": path.stat().st_size}


def write_manifest(manifest: dict) -> None:
    """manifest.json with the sha256 of every other file under golden/openai/ (writers' outputs included)."""
    files = sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest["files"] = {p.relative_to(OUT).as_posix(): sha256(p) for p in files}
    (OUT / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"golden/openai: {len(files)} files, {total / 2**20:.2f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
