"""Read the golden outputs (PaddleX's Whisper run on paddle CPU) and report parity failures.

NumPy + safetensors only: tests use this module, never paddle. ``golden/README.md`` describes the
files; ``golden/generate.py`` writes them. In short, per (model, clip):

    tensors/<model>/<clip>.safetensors        mel (base files only), encoder output rows, decoder
                                              logits (full or top-k + strided ids), language probs
    results/<model>/<config>/<clip>.json      PaddleX's result JSON, as PaddleX wrote it
    results/<model>/<config>/windows/<clip>.json   one DecodingResult per decoded 30 s window

``compare`` turns a parity check into a readable report (max |diff|, where, values on each side).

Where the files are (``locate``): the folder named by ``$NUMWHISPER_GOLDEN``; else ``golden/`` beside
the package in a source checkout; else the installed ``numwhisper-golden`` distribution, a wheel that
``pip wheel ./golden`` builds from the repository (its package ``numwhisper_golden`` is that folder).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open

from ..errors import GoldenFilesMissing
from .tolerances import RESULT_SCORE_ATOL

GOLDEN_ENV = "NUMWHISPER_GOLDEN"
GOLDEN_PACKAGE = "numwhisper_golden"  # the package of the numwhisper-golden distribution
SOURCE_TREE_GOLDEN = Path(__file__).resolve().parents[2] / "golden"
GET_GOLDENS = ("pip install numwhisper-golden (build it from numwhisper's repository: pip wheel ./golden), "
               f"or set {GOLDEN_ENV} to a golden/ folder")


def _installed_golden() -> Path | None:
    """The folder of the installed numwhisper_golden package, if there is one."""
    spec = importlib.util.find_spec(GOLDEN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def locate() -> Path:
    """The golden folder: $NUMWHISPER_GOLDEN, the source checkout's golden/, or the installed package.

    The first candidate holding a manifest wins; when none does, the first candidate is returned (so
    that ``require`` names it).
    """
    candidates = [Path(os.environ[GOLDEN_ENV])] if os.environ.get(GOLDEN_ENV) else []
    candidates += [SOURCE_TREE_GOLDEN, _installed_golden()]
    found = [c for c in candidates if c is not None and (c / "manifest.json").is_file()]
    return found[0] if found else candidates[0]


def require(root: Path) -> Path:
    """``root`` when it holds the golden manifest; GoldenFilesMissing saying how to get them otherwise."""
    if not (Path(root) / "manifest.json").is_file():
        raise GoldenFilesMissing(f"no golden files (no manifest.json in {root}, and numwhisper-golden is not "
                                 f"installed): {GET_GOLDENS}")
    return Path(root)


GOLDEN_DIR = locate()
FORMAT_VERSION = "1"
CONFIGS = ("beam5", "greedy")


@dataclass(frozen=True)
class Case:
    """One golden (model, clip) pair and which of its tensors are stored in full."""

    model: str
    clip: str
    encoder_full: bool
    logits_full: bool


@dataclass(frozen=True)
class LogitsStep:
    """One decoder step's logits as stored: every vocabulary id, or the top-k plus every s-th id."""

    ids: np.ndarray  # [K] int64 vocabulary ids held, ascending
    values: np.ndarray  # [K] float32 logits at those ids
    top_ids: np.ndarray  # [k] ids of the k largest logits, descending (ties: ascending id)
    full: bool


@dataclass(frozen=True)
class CaseTensors:
    """Everything in a case's tensors file (plus the clip's mel, which base files carry)."""

    model: str
    clip: str
    n_frames: int  # T: frames of the whole-file log-mel (the stored mel holds min(T, 3000))
    mel: np.ndarray  # [80, min(T, 3000)] float32
    encoder_rows: np.ndarray  # [R] int64 row indices of encoder_output within the 1500 rows
    encoder_output: np.ndarray  # [R, d] float32, window 0
    prefix: tuple  # PaddleX's initial tokens (sot sequence with the detected language)
    appended: tuple  # raw argmax of steps 0 .. n-2, appended one per step
    argmax: tuple  # raw argmax of every step
    logits: tuple  # LogitsStep per step
    language_codes: tuple | None  # 99 codes in PaddleX's order (multilingual only)
    language_probs: np.ndarray | None  # [99] float32
    detected_language: str
    metadata: dict


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare``; ``report`` is the text to show when ``ok`` is False."""

    name: str
    ok: bool
    max_abs_diff: float
    where: tuple  # index of the largest difference (in the caller's coordinates when index= is given)
    n_bad: int
    n_total: int
    report: str

    def __str__(self) -> str:
        return self.report


def manifest(root: Path = GOLDEN_DIR) -> dict:
    """The golden manifest (versions, checksums, cases, decoding configs)."""
    data = json.loads((require(root) / "manifest.json").read_text(encoding="utf-8"))
    if data["golden_format_version"] != FORMAT_VERSION:
        raise ValueError(f"golden format {data['golden_format_version']}, this reader reads {FORMAT_VERSION}")
    return data


def cases(root: Path = GOLDEN_DIR) -> list:
    """Every case listed in the manifest, sorted by (model, clip)."""
    return [Case(c["model"], c["clip"], c["encoder_output"] == "full", c["logits"] == "full")
            for c in manifest(root)["cases"]]


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read(path: Path) -> tuple:
    """(tensors, metadata) of a safetensors file."""
    with safe_open(str(path), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def tensors_path(model: str, clip: str, root: Path = GOLDEN_DIR) -> Path:
    """Where a case's tensors live."""
    return Path(root) / "tensors" / model / f"{clip}.safetensors"


def load_mel(clip: str, root: Path = GOLDEN_DIR) -> tuple:
    """(mel [80, min(T, 3000)] float32, T) of a clip, from the file of the manifest's mel_model."""
    t, meta = _read(tensors_path(manifest(root)["layout"]["mel_model"], clip, root))
    return t["mel"], int(meta["n_frames"])


def _logits_steps(t: dict, top_k: int) -> tuple:
    """The stored logits as LogitsStep per step."""
    if "logits" in t:
        full = t["logits"]  # [n_steps, V]
        ids = np.arange(full.shape[1])  # [V]
        return tuple(LogitsStep(ids, row, np.lexsort((ids, -row))[:top_k], True) for row in full)
    steps = []
    for top, top_v, strided_v in zip(t["logits.top_ids"], t["logits.top_values"], t["logits.stride_values"]):
        ids = np.concatenate([top, t["logits.stride_ids"]]).astype(np.int64)  # [k + S]
        values = np.concatenate([top_v, strided_v])  # [k + S]
        ids, first = np.unique(ids, return_index=True)  # ascending, one value per id
        steps.append(LogitsStep(ids, values[first], top.astype(np.int64), False))
    return tuple(steps)


def load_case(model: str, clip: str, root: Path = GOLDEN_DIR) -> CaseTensors:
    """A case's tensors; the mel comes from the mel_model's file of the same clip."""
    t, meta = _read(tensors_path(model, clip, root))
    mel = t["mel"] if "mel" in t else load_mel(clip, root)[0]
    codes = tuple(json.loads(meta["language_codes"])) if "language_codes" in meta else None
    argmax = tuple(int(x) for x in t["decoder.argmax"])
    return CaseTensors(
        model=model,
        clip=clip,
        n_frames=int(meta["n_frames"]),
        mel=mel,
        encoder_rows=t["encoder_output.rows"].astype(np.int64),
        encoder_output=t["encoder_output"],
        prefix=tuple(int(x) for x in t["decoder.prefix"]),
        appended=argmax[:-1],
        argmax=argmax,
        logits=_logits_steps(t, int(meta["logits.top_k"])),
        language_codes=codes,
        language_probs=t.get("language_probs"),
        detected_language=meta["detected_language"],
        metadata=meta,
    )


def load_result(model: str, clip: str, config: str, root: Path = GOLDEN_DIR) -> dict:
    """PaddleX's result JSON ({"result": {"text", "segments", "language"}}) for a case and config."""
    path = Path(root) / "results" / model / config / f"{clip}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def load_windows(model: str, clip: str, config: str, root: Path = GOLDEN_DIR) -> list:
    """Per-window DecodingResults (tokens, text, avg_logprob, no_speech_prob, ...) in decode order."""
    path = Path(root) / "results" / model / config / "windows" / f"{clip}.json"
    return json.loads(path.read_text(encoding="utf-8"))["windows"]


def _fmt(values: np.ndarray) -> str:
    """A short rendering of leading values."""
    return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(values, dtype=np.float64)) + "]"


def compare(name: str, ours, theirs, atol: float, rtol: float = 0.0, index=None, n_show: int = 5) -> Comparison:
    """Compare ours with the golden array elementwise: |ours - theirs| <= atol + rtol * |theirs|.

    ``index`` optionally maps theirs' first axis to original positions (e.g. the stored encoder row
    indices, or vocabulary ids), so the report names the row or token id where they differ most.
    Equal infinities pass; any NaN fails.
    """
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape:
        text = f"{name}: FAIL shape ours {a.shape} != theirs {b.shape}"
        return Comparison(name, False, float("inf"), (), a.size, b.size, text)
    with np.errstate(invalid="ignore"):
        diff = np.where(a == b, 0.0, np.abs(a - b))  # equal infinities -> 0
    diff = np.where(np.isnan(diff), np.inf, diff)
    bad = diff > atol + rtol * np.abs(np.nan_to_num(b))
    n_bad = int(bad.sum())
    if diff.size == 0:
        return Comparison(name, True, 0.0, (), 0, 0, f"{name}: OK (empty)")
    at = np.unravel_index(int(np.argmax(diff)), diff.shape)
    where = tuple(int(i) for i in at)
    if index is not None and where:
        where = (int(np.asarray(index)[where[0]]),) + where[1:]
    worst = float(diff[at])
    status = "OK" if n_bad == 0 else "FAIL"
    lines = [f"{name}: {status} max|diff| {worst:.3g} at {where} (atol {atol:g}, rtol {rtol:g}); "
             f"{n_bad} of {diff.size} over tolerance",
             f"  at {where}: ours {a[at]:.8g} theirs {b[at]:.8g}",
             f"  ours  [:{n_show}] {_fmt(a.reshape(-1)[:n_show])}",
             f"  theirs[:{n_show}] {_fmt(b.reshape(-1)[:n_show])}"]
    return Comparison(name, n_bad == 0, worst, where, n_bad, diff.size, "\n".join(lines))


# Result fields that must be equal to PaddleX's, and scores compared within a tolerance.
EXACT_FIELDS = ("id", "seek", "start", "end", "text", "tokens", "temperature")
SCORE_FIELDS = ("avg_logprob", "no_speech_prob", "compression_ratio")


def result_differences(ours: dict, theirs: dict, skip=(), score_atol: float = RESULT_SCORE_ATOL,
                       reference: str = "PaddleX") -> list:
    """Every way ``ours`` (a result body) differs from the ``reference``'s, as readable lines (empty: identical)."""
    problems = []
    for key in ("text", "language"):
        if ours[key] != theirs[key]:
            problems.append(f"{key}: ours {ours[key]!r} != {reference} {theirs[key]!r}")
    if list(ours) != list(theirs):
        problems.append(f"result keys: ours {list(ours)} != {reference} {list(theirs)}")
    a, b = ours["segments"], theirs["segments"]
    if len(a) != len(b):
        problems.append(f"{len(a)} segments != {reference}'s {len(b)}: ours {[s['text'] for s in a]} "
                        f"{reference} {[s['text'] for s in b]}")
    for mine, ref in zip(a, b):
        where = f"segment {ref['id']}"
        if list(mine) != list(ref):
            problems.append(f"{where} keys: ours {list(mine)} != {reference} {list(ref)}")
        for field in EXACT_FIELDS:
            if mine[field] != ref[field] or type(mine[field]) is not type(ref[field]):
                problems.append(f"{where}.{field}: ours {mine[field]!r} != {reference} {ref[field]!r}")
        for field in SCORE_FIELDS:
            if field in skip:
                continue
            if type(mine[field]) is not float or abs(mine[field] - ref[field]) > score_atol:
                problems.append(f"{where}.{field}: ours {mine[field]!r} vs {reference} {ref[field]!r} "
                                f"(atol {score_atol})")
    return problems

