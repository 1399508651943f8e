"""Thread settings that ``import numwhisper`` makes, checked in fresh interpreters: NumPy's OpenBLAS
must end up with numwhisper's short thread timeout whether NumPy was imported before numwhisper or
after, and must keep a timeout the user set."""

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
first, second = sys.argv[1:]
import importlib
importlib.import_module(first)
import numpy as np
a = np.arange(256 * 256, dtype=np.float32).reshape(256, 256) / 65536  # [256, 256]
before = a @ a  # [256, 256], runs OpenBLAS's threads
importlib.import_module(second)
from numwhisper import openblas
after = a @ a  # [256, 256], after numwhisper's import
print(openblas.thread_timeout(np), bool((before == after).all()))
"""


def _probe(first: str, second: str, timeout_env):
    """(OpenBLAS's thread timeout, whether a product gave the same values before and after
    ``import numwhisper``) in a fresh Python that imports ``first`` then ``second``."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if timeout_env is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout_env
    out = subprocess.run([sys.executable, "-c", PROBE, first, second], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    return int(out[0]), out[1] == "True"


@pytest.mark.parametrize("first, second", [("numpy", "numwhisper"), ("numwhisper", "numpy")])
def test_openblas_gets_the_short_thread_timeout_in_either_import_order(first, second):
    assert _probe(first, second, None) == (4, True)


@pytest.mark.parametrize("first, second", [("numpy", "numwhisper"), ("numwhisper", "numpy")])
def test_a_thread_timeout_the_user_set_is_kept(first, second):
    assert _probe(first, second, "7") == (7, True)
