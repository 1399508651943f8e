"""The parity command ``python -m numwhisper.golden check``: it passes for both in-tree backends and
fails, at the right stage and with a readable report, for a backend with one wrong weight.

The full command over every case is what tests/test_model_parity.py and test_transcribe_parity.py
run in-process (the same checks); here it runs as a real subprocess on one case.
"""

import os
import subprocess
import sys

import pytest

from numwhisper.golden import check as golden_check

TESTS = os.path.dirname(os.path.abspath(__file__))


def check(repo, *args) -> subprocess.CompletedProcess:
    """Run the parity command from the repository root with tests/ importable (for broken_backend)."""
    env = {**os.environ, "PYTHONPATH": TESTS}
    return subprocess.run([sys.executable, "-m", "numwhisper.golden", "check", *args], cwd=repo, env=env,
                          capture_output=True, text=True)


def rows(stdout: str) -> dict:
    """{stage: its table row's cells} from the command's table."""
    return {line.split()[0]: line.split() for line in stdout.splitlines()
            if line.split() and line.split()[0] in golden_check.STAGES}


@pytest.mark.parametrize("backend", ["numpy", "paddle"])
def test_in_tree_backends_pass_every_stage(repo, backend):
    done = check(repo, "--backend", backend, "--model", "tiny.en", "--cases", "en_jfk", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    for stage in ("mel", "encoder", "logits", "results"):
        assert table[stage][-1] == "PASS" and table[stage][1] == "1", done.stdout  # --quick: greedy results only
    assert table["contract"][-1] == "PASS" and table["contract"][1] == "4", done.stdout  # no language_cross on .en
    assert table["language"][-1] == "n/a"  # tiny.en is English-only
    assert "FAIL" not in done.stdout


def test_reference_openai_checks_results_and_words(repo):
    done = check(repo, "--backend", "numpy", "--reference", "openai", "--model", "tiny.en", "--cases", "en_jfk")
    assert done.returncode == 0, done.stdout + done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines()
             if line.split() and line.split()[0] in golden_check.OPENAI_STAGES}
    assert table["openai"][-1] == "PASS" and table["openai"][1] == "2", done.stdout  # cli and greedy
    assert table["words"][-1] == "PASS" and "words 44, all" in done.stdout, done.stdout


@pytest.mark.parametrize("factory, first_failure, passing", [
    ("decoder_weight", "logits", ("mel", "encoder")),
    ("encoder_weight", "encoder", ("mel",)),
])
def test_one_wrong_weight_fails_at_its_stage(repo, factory, first_failure, passing):
    done = check(repo, "--backend", f"broken_backend:{factory}", "--model", "tiny.en", "--cases", "en_jfk",
                 "--stages", "mel,encoder,logits")
    assert done.returncode == 1, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table[first_failure][-1] == "FAIL"
    assert all(table[stage][-1] == "PASS" for stage in passing), done.stdout
    assert f"FAILED: first failing stage: {first_failure}" in done.stdout
    report = done.stdout.split(f"[{first_failure} FAIL] tiny.en/en_jfk", 1)[1]
    assert "ours  [:5]" in report and "theirs[:5]" in report and "atol" in report  # the first values each side


def test_usage_errors_exit_2(repo):
    done = check(repo, "--backend", "no_such_module:factory", "--cases", "en_jfk")
    assert done.returncode == 2 and "no_such_module" in done.stderr
    done = check(repo, "--backend", "numpy", "--stages", "mel,vibes")
    assert done.returncode == 2 and "vibes" in done.stderr
    done = check(repo, "--backend", "numwhisper.golden.files:GOLDEN_DIR", "--cases", "en_jfk")
    assert done.returncode == 2 and "not callable" in done.stderr
    done = subprocess.run([sys.executable, "-m", "numwhisper.golden"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr
    done = check(repo, "--backend", "paddle", "--device", "gpu:0", "--cases", "en_jfk")  # this Paddle has no CUDA
    assert done.returncode == 2 and "paddle.device.is_compiled_with_cuda() is False" in done.stderr


def test_a_backend_that_raises_fails_its_stage_without_crashing(repo):
    done = check(repo, "--backend", "broken_backend:decode_raises", "--model", "tiny.en", "--cases", "en_jfk",
                 "--stages", "mel,encoder,logits")
    assert done.returncode == 1, done.stdout + done.stderr
    table = rows(done.stdout)
    assert [table[s][-1] for s in ("mel", "encoder", "logits")] == ["PASS", "PASS", "FAIL"]
    assert "the backend raised RuntimeError: decoder not implemented yet" in done.stdout
