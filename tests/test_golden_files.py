"""The golden files: checksums match the manifest, every case loads, and the compare report works."""

import json

import numpy as np
import pytest

from numwhisper.golden import files as golden
from numwhisper.golden import openai_files as openai_golden

MANIFEST = golden.manifest()
CASES = golden.cases()


def test_manifest_versions_and_configs():
    assert MANIFEST["golden_format_version"] == golden.FORMAT_VERSION
    assert set(MANIFEST["configs"]) == set(golden.CONFIGS)
    assert MANIFEST["configs"]["beam5"]["beam_size"] == 5
    assert MANIFEST["configs"]["greedy"]["beam_size"] is None and MANIFEST["configs"]["greedy"]["patience"] is None
    assert {"paddlepaddle", "paddlex", "python", "numpy"} <= set(MANIFEST["environment"])


@pytest.mark.parametrize("rel", sorted(MANIFEST["files"]))
def test_file_checksum(rel):
    path = golden.GOLDEN_DIR / rel
    assert path.is_file(), f"listed in golden/manifest.json but missing: {rel}"
    assert golden.sha256(path) == MANIFEST["files"][rel], f"{rel} changed since the manifest was written"


GOLDEN_BUDGET_BYTES = 30_000_000  # everything under golden/ (it ships as the numwhisper-golden wheel)


def test_golden_folder_stays_within_its_budget():
    total = sum(path.stat().st_size for path in golden.GOLDEN_DIR.rglob("*") if path.is_file()
                and "__pycache__" not in path.parts)
    assert total <= GOLDEN_BUDGET_BYTES, f"golden/ holds {total:,} bytes"
    full = {(case.model, case.clip) for case in CASES if case.encoder_full}
    assert len(full) >= 3, full  # full encoder rows on more than one case (the others hold every 20th row)


def test_every_case_file_is_listed():
    listed = set(MANIFEST["files"])
    for case in MANIFEST["cases"]:
        assert set(case["files"]) <= listed
        for config in golden.CONFIGS:
            assert f"results/{case['model']}/{config}/{case['clip']}.json" in listed


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.model}/{c.clip}")
def test_case_loads(case):
    t = golden.load_case(case.model, case.clip)
    d = MANIFEST["models"][case.model]["dims"]
    assert t.mel.dtype == np.float32 and t.mel.shape == (80, min(t.n_frames, 3000))
    assert t.encoder_output.dtype == np.float32 and t.encoder_output.shape == (len(t.encoder_rows), d["n_audio_state"])
    assert (len(t.encoder_rows) == 1500) == case.encoder_full and t.encoder_rows[-1] == 1499
    assert t.prefix[0] == MANIFEST["models"][case.model]["tokenizer"]["sot"]
    assert len(t.logits) == MANIFEST["layout"]["n_steps"] == len(t.argmax)
    for step, picked in zip(t.logits, t.argmax):
        assert step.full == case.logits_full
        assert step.top_ids[0] == picked  # the stored argmax is the largest stored logit
        held = dict(zip(step.ids.tolist(), step.values.tolist()))
        tops = [held[i] for i in step.top_ids.tolist()]
        assert tops == sorted(tops, reverse=True)
        assert max(held.values()) == tops[0]
    if t.language_probs is None:
        assert MANIFEST["models"][case.model]["multilingual"] is False
    else:
        assert len(t.language_codes) == t.language_probs.shape[0] == 99
        assert abs(float(t.language_probs.sum()) - 1.0) < 1e-4
        assert t.language_codes[int(np.argmax(t.language_probs))] == t.detected_language
    for config in golden.CONFIGS:
        res = golden.load_result(case.model, case.clip, config)
        assert set(res) == {"result"} and set(res["result"]) == {"text", "segments", "language"}
        assert res["result"]["language"] == t.detected_language
        segments = res["result"]["segments"]
        assert [s["id"] for s in segments] == list(range(len(segments)))
        seeks = [s["seek"] for s in segments]
        assert seeks == sorted(seeks) and all(0 <= s < t.n_frames for s in seeks)
        assert len(golden.load_windows(case.model, case.clip, config)) >= 1
        text = (golden.GOLDEN_DIR / "results" / case.model / config / f"{case.clip}.json").read_text(encoding="utf-8")
        assert json.dumps(res, indent=4, ensure_ascii=False) == text  # PaddleX's writer; floats round-trip


def test_compare_reports_the_worst_place():
    theirs = np.arange(12, dtype=np.float32).reshape(3, 4)  # [3, 4]
    ours = theirs.copy()
    assert golden.compare("same", ours, theirs, atol=0.0).ok
    ours[2, 1] += 0.5
    ours[0, 0] += 0.01
    rep = golden.compare("enc", ours, theirs, atol=0.1, index=[0, 10, 20])
    assert not rep.ok and rep.n_bad == 1 and rep.where == (20, 1)
    assert abs(rep.max_abs_diff - 0.5) < 1e-6 and "enc: FAIL" in rep.report and "(20, 1)" in rep.report
    assert golden.compare("rel", ours, theirs, atol=0.02, rtol=0.06).ok  # 0.5 <= 0.02 + 0.06 * 9
    assert not golden.compare("shape", ours[:2], theirs, atol=1.0).ok
    inf = np.array([-np.inf, 1.0])
    assert golden.compare("inf", inf, inf, atol=0.0).ok
    assert not golden.compare("nan", np.array([np.nan, 1.0]), inf, atol=1e9).ok


# ---------------------------------------------------------------------------------- openai-whisper's goldens

OPENAI_MANIFEST = openai_golden.manifest()


def test_openai_manifest_names_its_versions_configs_and_models():
    assert OPENAI_MANIFEST["environment"]["openai-whisper"] == "20250625"
    assert set(OPENAI_MANIFEST["configs"]) == set(openai_golden.OPENAI_CONFIGS)
    assert OPENAI_MANIFEST["configs"]["cli"]["beam_size"] == 5 and len(OPENAI_MANIFEST["configs"]["cli"]["temperature"]) == 6
    assert OPENAI_MANIFEST["configs"]["greedy"]["temperature"] == [0.0]
    for name, model in OPENAI_MANIFEST["models"].items():  # the same weights as PaddleX's goldens
        assert model["source_safetensors_sha256"] == MANIFEST["models"][name]["source_safetensors_sha256"]


@pytest.mark.parametrize("rel", sorted(OPENAI_MANIFEST["files"]))
def test_openai_file_checksum(rel):
    path = openai_golden.openai_root() / rel
    assert path.is_file(), f"listed in golden/openai/manifest.json but missing: {rel}"
    assert golden.sha256(path) == OPENAI_MANIFEST["files"][rel], f"openai/{rel} changed since the manifest was written"


def test_every_openai_file_is_listed_and_every_paddlex_case_has_an_openai_one():
    root = openai_golden.openai_root()
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"manifest.json", "README.md"}
    assert on_disk == set(OPENAI_MANIFEST["files"]) - {"README.md"}
    for case in CASES:
        for config in ("cli", "greedy"):
            assert f"{case.model}/{config}/{case.clip}" in OPENAI_MANIFEST["cases"]
        for config in golden.CONFIGS:
            assert f"{case.model}/paddlex_words/{config}/{case.clip}.json" in OPENAI_MANIFEST["files"]
