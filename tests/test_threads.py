"""Thread settings numwhisper makes when its kernels load (``threads.tune``), checked in fresh
interpreters: NumPy's OpenBLAS must end up with numwhisper's short thread timeout whether NumPy was
imported before or after, and must keep a timeout the user set; a bare ``import numwhisper`` changes
nothing."""

import os
import subprocess
import sys

import pytest

from numwhisper import threads

PROBE = """
import sys
first, second = sys.argv[1:]
import importlib
importlib.import_module(first)
import numpy as np
a = np.arange(256 * 256, dtype=np.float32).reshape(256, 256) / 65536  # [256, 256]
before = a @ a  # [256, 256], runs OpenBLAS's threads
importlib.import_module(second)
from numwhisper import threads
after = a @ a  # [256, 256], after numwhisper's kernels loaded
print(threads.thread_timeout(np), bool((before == after).all()))
"""


def _probe(first: str, second: str, timeout_env):
    """(OpenBLAS's thread timeout, whether a product gave the same values before and after
    numwhisper's kernels loaded) in a fresh Python that imports ``first`` then ``second``."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if timeout_env is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout_env
    out = subprocess.run([sys.executable, "-c", PROBE, first, second], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    return int(out[0]), out[1] == "True"


KERNELS = "numwhisper.kernels"  # what loading a model imports first of all


@pytest.mark.parametrize("first, second", [("numpy", KERNELS), (KERNELS, "numpy")])
def test_openblas_gets_the_short_thread_timeout_in_either_import_order(first, second):
    assert _probe(first, second, None) == (4, True)


@pytest.mark.parametrize("first, second", [("numpy", KERNELS), (KERNELS, "numpy")])
def test_a_thread_timeout_the_user_set_is_kept(first, second):
    assert _probe(first, second, "7") == (7, True)


def test_importing_numwhisper_alone_changes_no_thread_setting():
    code = ("import os, numpy as np, numwhisper; from numwhisper import threads; "
            "print(threads.thread_timeout(np), *(os.environ.get(k) for k in threads.TUNED_ENVIRONMENT))")
    env = {k: v for k, v in os.environ.items() if k not in threads.TUNED_ENVIRONMENT}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    assert out == ["0", "None", "None", "None"]
