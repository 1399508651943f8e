"""What the parity command can tell apart: a second, plainly written Whisper passes every stage, and
each flaw a real port could have fails, at the stage where it first shows (README "What the suite
catches"). The in-tree backends pass every contract probe.

The flaws run on tiny.en's en_jfk case (the language_cross probe needs a multilingual model, so its
flaw runs on base), in-process, with the command's own check functions.
"""

import pytest

import broken_backend
from numwhisper.formats.checkpoint import load
from numwhisper.golden import check as golden_check
from numwhisper.golden import contract
from numwhisper.golden import files as golden
from numwhisper.transcription import WhisperModel
from plain_backend import PlainBackend

TENSOR_STAGES = ("mel", "encoder", "logits", "language")


def golden_case(model: str, clip: str = "en_jfk") -> golden.Case:
    (case,) = [c for c in golden.cases() if c.model == model and c.clip == clip]
    return case


def run_stages(backend, model_file, case, with_results: bool = False) -> list:
    """Every stage's Checks of one case, as the command runs them (results: the greedy config)."""
    model = WhisperModel.with_backend(backend, load(model_file).metadata)
    found = golden_check.check_tensors(backend, model.tokenizer, case, TENSOR_STAGES)
    found += golden_check.check_contract(backend, model.tokenizer, case)
    if with_results:
        found += golden_check.check_results(model, case, ("greedy",), golden_check.shared_encoder())
    return found


def verdicts(found) -> dict:
    """{stage: passed} over a list of Checks."""
    stages = {}
    for check in found:
        stages[check.stage] = stages.get(check.stage, True) and check.ok
    return stages


def test_a_plainly_written_whisper_passes_every_stage(model_files):
    found = run_stages(PlainBackend(model_files["tiny.en"]), model_files["tiny.en"], golden_case("tiny.en"),
                       with_results=True)
    assert verdicts(found) == dict.fromkeys(("mel", "encoder", "logits", "contract", "results"), True), \
        "\n".join(c.report for c in found if not c.ok)
    assert {c.case.split()[-1] for c in found if c.stage == "contract"} == set(contract.PROBES) - {"language_cross"}


@pytest.mark.parametrize("flaw", sorted(broken_backend.FLAWS))
def test_each_flaw_fails_at_its_stage(model_files, flaw):
    flaws, expected = broken_backend.FLAWS[flaw]
    model = "base" if flaw == "language_probs_without_cross" else "tiny.en"
    found = run_stages(PlainBackend(model_files[model], flaws), model_files[model], golden_case(model))
    stages = verdicts(found)
    order = [s for s in golden_check.STAGES if s in stages]
    first_failing = next(s for s in order if not stages[s])
    assert first_failing == expected, (flaw, stages)
    assert all(stages[s] for s in order[:order.index(expected)]), (flaw, stages)


@pytest.mark.parametrize("backend_id", ["numpy", "paddle-cpu"])
def test_in_tree_backends_keep_every_rule_of_the_contract(backend_for, model_files, backend_id):
    backend = backend_for(backend_id, "base")
    tokenizer = WhisperModel.with_backend(backend, load(model_files["base"]).metadata).tokenizer
    found = golden_check.check_contract(backend, tokenizer, golden_case("base", "zh_sr_chinese"))
    assert [c.case.split()[-1] for c in found] == list(contract.PROBES)
    assert all(c.ok for c in found), "\n".join(c.report for c in found if not c.ok)
