"""The ``.pt`` reader against real PyTorch and openai-whisper (run with /work/benchenv/bin/python).

    /work/benchenv/bin/python bench/formats_pt.py                 # the checks below, a report on stdout
    /work/benchenv/bin/python bench/formats_pt.py --fixture tests/data/formats/tiny_random.pt

Checks:
1. base and tiny.en written by ``torch.save`` as openai-whisper checkpoints ({"dims",
   "model_state_dict"}, the tensors of our safetensors files as torch tensors) load with
   ``whisper.load_model(path)``, and ``read_pt`` gives back every tensor bit for bit, in its dtype,
   with the vocabulary from openai-whisper's installed assets.
2. The same models saved as bfloat16 read back as float32 equal to torch's ``.float()``.
3. Files written by the suite's own writer (``tests/pt_writer.py``: plain, transposed, bfloat16,
   shared-storage and _rebuild_tensor_v3/UntypedStorage tensors, little- and big-endian) load with
   ``torch.load(weights_only=True)`` and ``whisper.load_model`` with the values the writer meant, so
   the writer the suite relies on writes torch's real layout. One known exception is reported, not
   hidden: torch byteswaps a big-endian file by storage type and counts an UntypedStorage as uint8,
   so it leaves a v3 float16 tensor of a big-endian file unswapped (``read_pt`` swaps it by dtype).

``--fixture`` writes the suite's one real-torch fixture: a Whisper of tiny dims whose values come
from ``tests/pt_writer.fixture_tensors``, stored float16/float32/bfloat16, transposed, two tensors in
one storage, one expanded with stride 0, plus a top-level bool ``alignment_heads`` mask.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import whisper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import pt_writer  # noqa: E402  (tests/pt_writer.py)
from numwhisper.dims import ModelDims  # noqa: E402
from numwhisper.formats import checkpoint  # noqa: E402
from numwhisper.formats.checkpoint import expected_shapes  # noqa: E402
from numwhisper.formats.torch_pt import read_pt  # noqa: E402

MODELS = {"base": Path("/work/models/base.safetensors"), "tiny.en": Path("/work/models/tiny.en.safetensors")}


# ---------------------------------------------------------------- helpers

def torch_state(tensors: dict, dtype=None) -> collections.OrderedDict:
    """Our arrays as torch tensors (copied, so torch owns them), optionally cast."""
    state = collections.OrderedDict()
    for name, array in tensors.items():
        tensor = torch.from_numpy(np.array(array))
        state[name] = tensor.to(dtype) if dtype is not None else tensor
    return state


def compare(ours: dict, reference: dict) -> dict:
    """Bit-identity and the largest difference of every tensor."""
    identical, worst = True, 0.0
    for name, want in reference.items():
        got = ours[name]
        same = got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
        identical &= bool(same)
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0)))
    return {"tensors": len(reference), "identical": identical, "max_abs_diff": worst,
            "dtypes": ", ".join(sorted({str(t.dtype) for t in ours.values()}))}


def metadata_vs_canonical(ours: dict, canonical: dict) -> dict:
    """How the .pt-derived tokenizer metadata compares with the canonical (CTranslate2-derived) file."""
    def parsed(metadata, key):
        return json.loads(metadata[key])
    merges, want = parsed(ours, "tokenizer.merges"), parsed(canonical, "tokenizer.merges")
    extra = set(merges) - set(want)
    added, want_added = parsed(ours, "tokenizer.added_tokens"), parsed(canonical, "tokenizer.added_tokens")
    return {
        "vocab_equal": parsed(ours, "tokenizer.vocab") == parsed(canonical, "tokenizer.vocab"),
        "merges_equal": merges == want,
        "merges_extra_in_ours": sorted(extra)[:5],
        "merges_equal_without_extra": [m for m in merges if m not in extra] == want,
        "added_tokens_differ": json.dumps(sorted(set(added.items()) ^ set(want_added.items())), ensure_ascii=False),
        "alignment_heads_ours": ours["alignment_heads"],
        "alignment_heads_canonical": canonical["alignment_heads"],
    }


# ---------------------------------------------------------------- checks

def check_torch_saved(name: str, work: Path) -> dict:
    """torch.save -> whisper.load_model accepts it -> read_pt gives the same bits."""
    ckpt = checkpoint.load(MODELS[name])
    path = work / f"{name}.pt"
    torch.save({"dims": ckpt.dims.to_dict(), "model_state_dict": torch_state(ckpt.tensors)}, path)
    model = whisper.load_model(str(path), device="cpu")
    loaded = {k: v.numpy() for k, v in model.state_dict().items()}
    accepted = all(np.array_equal(loaded[k], ckpt.tensors[k].astype(loaded[k].dtype)) for k in ckpt.tensors)
    start = time.perf_counter()
    ours = read_pt(path)
    seconds = time.perf_counter() - start
    return {"file_mb": round(path.stat().st_size / 2**20, 1), "whisper_load_model": "ok",
            "whisper_weights_equal": accepted, "read_pt_seconds": round(seconds, 2),
            **compare(ours.tensors, dict(ckpt.tensors)),
            "metadata": metadata_vs_canonical(ours.metadata, ckpt.metadata), "source": ours.metadata["source"]}


def check_bfloat16(name: str, work: Path) -> dict:
    """A bfloat16 checkpoint reads as float32 equal to torch's own widening."""
    ckpt = checkpoint.load(MODELS[name])
    state = torch_state(ckpt.tensors, torch.bfloat16)
    path = work / f"{name}.bf16.pt"
    torch.save({"dims": ckpt.dims.to_dict(), "model_state_dict": state}, path)
    whisper.load_model(str(path), device="cpu")
    reference = {k: v.float().numpy() for k, v in state.items()}
    return compare(read_pt(path).tensors, reference)


def writer_layouts(shapes: dict) -> tuple:
    """(object for pt_writer, expected float32 arrays) with every layout the writer offers."""
    names = list(shapes)
    values = pt_writer.fixture_tensors(shapes)
    state, expected = collections.OrderedDict(), {}
    q, v = "decoder.blocks.0.attn.query.weight", "decoder.blocks.0.attn.value.weight"
    fused = pt_writer.Storage(np.concatenate([values[q], values[v]]).astype(np.float16).reshape(-1))
    for name in names:
        array = values[name]
        if name in (q, v):
            offset = 0 if name == q else array.size
            state[name] = pt_writer.Tensor(fused, offset, array.shape, (array.shape[1], 1))
            expected[name] = array.astype(np.float16)
        elif name == "encoder.conv1.bias":   # PyTorch 2's form for dtypes without a storage class
            state[name] = pt_writer.Tensor(pt_writer.Storage(array.astype(np.float16)), 0, array.shape, (1,),
                                           untyped=True)
            expected[name] = array.astype(np.float16)
        elif name == "decoder.ln.weight":
            state[name] = pt_writer.bfloat16(array)
            expected[name] = array
        elif name.endswith("mlp.0.weight"):
            state[name] = pt_writer.transposed(array)
            expected[name] = array
        else:
            state[name] = array.astype(np.float16)
            expected[name] = array.astype(np.float16)
    return state, expected


def check_writer(work: Path) -> dict:
    """Files from tests/pt_writer.py as torch and openai-whisper read them."""
    results = {}
    dims = pt_writer.FIXTURE_DIMS
    state, expected = writer_layouts(expected_shapes(ModelDims(**dims)))
    for byteorder in ("little", "big"):
        path = pt_writer.write_pt(work / f"writer_{byteorder}.pt", pt_writer.whisper_checkpoint(dims, state),
                                  byteorder=byteorder)
        saved = torch.load(path, weights_only=True)
        got = {k: v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
               for k, v in saved["model_state_dict"].items()}
        whisper.load_model(str(path), device="cpu")
        untyped = "encoder.conv1.bias"
        if byteorder == "big":  # torch byteswaps by storage type, and an UntypedStorage counts as uint8
            results["torch_byteswaps_big_endian_v3_tensor"] = got.pop(untyped).tobytes() == expected[untyped].tobytes()
        results[f"{byteorder}_endian_torch_load"] = compare(got, {k: a for k, a in expected.items() if k in got})
        results[f"{byteorder}_endian_read_pt"] = compare(read_pt(path).tensors, expected)
    ckpt = checkpoint.load(MODELS["tiny.en"])
    path = pt_writer.write_pt(work / "writer_tiny_en.pt", pt_writer.whisper_checkpoint(ckpt.dims.to_dict(), ckpt.tensors))
    model = whisper.load_model(str(path), device="cpu")
    loaded = {k: v.numpy() for k, v in model.state_dict().items()}
    results["tiny.en_whisper_load_model"] = all(
        np.array_equal(loaded[k], ckpt.tensors[k].astype(np.float32)) for k in ckpt.tensors)
    return results


# ---------------------------------------------------------------- the fixture

def write_fixture(out: Path) -> None:
    """The suite's real-torch fixture (see the module docstring)."""
    dims = pt_writer.FIXTURE_DIMS
    values = pt_writer.fixture_tensors(expected_shapes(ModelDims(**dims)))
    q, v = pt_writer.FIXTURE_SHARED
    fused = torch.from_numpy(np.concatenate([values[q], values[v]])).half()
    state = collections.OrderedDict()
    for name, array in values.items():
        tensor = torch.from_numpy(array)
        if name in pt_writer.FIXTURE_SHARED:
            rows = array.shape[0]
            tensor = fused[:rows] if name == q else fused[rows:]
        elif name == pt_writer.FIXTURE_EXPANDED:
            tensor = tensor[:1].half().expand(*array.shape)
        elif name in pt_writer.FIXTURE_TRANSPOSED:
            tensor = tensor.t().contiguous().half().t()
        elif name in pt_writer.FIXTURE_BFLOAT16:
            tensor = tensor.bfloat16()
        elif name not in pt_writer.FIXTURE_FLOAT32:
            tensor = tensor.half()
        state[name] = tensor
    mask = torch.tensor(pt_writer.FIXTURE_ALIGNMENT_MASK, dtype=torch.bool)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims, "model_state_dict": state, "alignment_heads": mask}, out)
    whisper.load_model(str(out), device="cpu")   # openai-whisper accepts it
    assert not state[q].is_contiguous() or state[v].storage_offset() > 0
    print(f"wrote {out}: {out.stat().st_size} bytes, torch {torch.__version__}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", type=Path, help="write the suite's real-torch fixture here and stop")
    args = parser.parse_args(argv)
    if args.fixture:
        write_fixture(args.fixture)
        return
    report = {"torch": torch.__version__, "openai-whisper": whisper.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checks = {**{f"{name} torch.save": (check_torch_saved, name, work) for name in MODELS},
                  "tiny.en bfloat16": (check_bfloat16, "tiny.en", work), "pt_writer": (check_writer, work)}
        for title, (check, *check_args) in checks.items():
            start = time.perf_counter()
            report[title] = check(*check_args)
            print(f"{title}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
