"""numwhisper.startup: Numba's compiler started without SciPy's linear algebra, in fresh processes
(what it changes is process-wide, so never in the test process itself)."""

import subprocess
import sys

from test_cli import CLIP


def run_python(code: str, *args: str) -> str:
    """stdout of ``python -c code``; fails with its stderr when the process does."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_compiler_starts_without_scipy_linalg_which_still_loads_afterwards():
    code = """
import gc, sys
import numpy as np
from numba import njit
from numwhisper import startup, kernels
startup.start_compiler()
print("hidden after start:", "scipy.linalg" in sys.modules, gc.isenabled())
print(kernels.half_to_float32(np.array([[15360]], np.uint16)).tolist())  # float16 1.0
import scipy.signal
print(scipy.signal.resample_poly(np.ones(8), 2, 1).shape, "scipy.linalg" in sys.modules)

@njit
def product(a, b):
    return np.dot(a, b)

print(product(np.ones((2, 3)), np.ones(3)).tolist())
"""
    lines = run_python(code).splitlines()
    assert lines == ["hidden after start: False True", "[[1.0]]", "(16,) True", "[3.0, 3.0]"]


def test_an_already_imported_scipy_linalg_is_left_alone():
    code = """
import scipy.linalg, sys
from numwhisper import startup
before = sys.modules["scipy.linalg"]
startup.start_compiler()
import numba.np.arraymath
print(sys.modules["scipy.linalg"] is before, numba.np.arraymath._HAVE_BLAS)
"""
    assert run_python(code).split() == ["True", "True"]


def test_the_command_line_never_imports_scipy_linalg_for_a_16_khz_wav(repo, tmp_path):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "numwhisper", CLIP, "--model", "tiny.en",
                           "--beam_size", "None", "--verbose", "False", "--output_dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "numba.np.arraymath" in imported and "numwhisper.startup" in imported
    assert "scipy.linalg" not in imported
