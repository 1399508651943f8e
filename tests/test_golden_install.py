"""The parity command as its users run it: from wheels in a fresh virtual environment, in a folder
that is not the repository.

Two wheels are built from copies of the tracked files (so the build leaves nothing in the checkout):
numwhisper from the repository root and numwhisper-golden from golden/. A new virtual environment
gets the numwhisper wheel (its dependencies come from the package index, as for any user); without
the golden wheel the command must exit 2 with one line saying how to get the goldens, and with it
the command must pass.
"""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from numwhisper.formats import hub
from numwhisper.golden import files as golden


def tracked_copy(repo: Path, destination: Path) -> Path:
    """A copy of the repository's tracked files, as they are in the working tree -> ``destination``."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source, target = repo / rel, destination / rel
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def build_wheel(source: Path, wheelhouse: Path) -> Path:
    """``pip wheel`` of one project folder -> the wheel's path."""
    before = set(wheelhouse.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), str(source)],
                   check=True, capture_output=True)
    (wheel,) = set(wheelhouse.glob("*.whl")) - before
    return wheel


@pytest.fixture(scope="module")
def wheels(repo, tmp_path_factory) -> dict:
    """{"numwhisper": wheel, "golden": wheel} built from a copy of the checkout."""
    source = tracked_copy(repo, tmp_path_factory.mktemp("source"))
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    return {"numwhisper": build_wheel(source, wheelhouse), "golden": build_wheel(source / "golden", wheelhouse)}


@pytest.fixture(scope="module")
def fresh_env(wheels, tmp_path_factory) -> Path:
    """A new virtual environment holding the numwhisper wheel and its dependencies only -> its python."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheels["numwhisper"])], check=True,
                   capture_output=True)
    return python


def run_check(python: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    """The parity command in the fresh environment, from ``cwd``, with the session's model cache."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", golden.GOLDEN_ENV, "VIRTUAL_ENV")}
    env[hub.CACHE_ENV] = str(hub.cache_dir())
    return subprocess.run([str(python), "-m", "numwhisper.golden", "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_wheel_holds_every_golden_file(wheels):
    import zipfile

    names = set(zipfile.ZipFile(wheels["golden"]).namelist())
    listed = golden.manifest()["files"]
    missing = [rel for rel in listed if f"{golden.GOLDEN_PACKAGE}/{rel}" not in names]
    assert not missing and f"{golden.GOLDEN_PACKAGE}/manifest.json" in names, missing


def test_installed_wheels_run_the_check_from_any_folder(fresh_env, wheels, model_files, tmp_path):
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    args = ("--backend", "numpy", "--model", "tiny.en", "--cases", "en_jfk", "--quick")

    without = run_check(fresh_env, elsewhere, *args)
    assert without.returncode == 2, without.stdout + without.stderr
    lines = without.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no golden files") and "pip install numwhisper-golden" \
        in lines[0] and "Traceback" not in without.stderr, without.stderr

    subprocess.run([str(fresh_env), "-m", "pip", "install", "-q", str(wheels["golden"])], check=True,
                   capture_output=True)
    done = run_check(fresh_env, elsewhere, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    stages = {line.split()[0]: line.split()[-1] for line in done.stdout.splitlines() if line.split()}
    assert [stages[s] for s in ("mel", "encoder", "logits", "contract", "results")] == ["PASS"] * 5, done.stdout
    imported = subprocess.run([str(fresh_env), "-c", "import numwhisper, numwhisper_golden; "
                               "print(numwhisper.__file__, list(numwhisper_golden.__path__)[0])"],
                              cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    assert "site-packages" in imported and str(Path(__file__).parent.parent) not in imported, imported
