"""numwhisper.startup: Numba's compiler started without SciPy's linear algebra, and Ctrl-C delivered
even while Numba compiles, in fresh processes (what it changes is process-wide, so never in the test
process itself)."""

import signal
import subprocess
import sys
import time

import pytest

from test_cli import CLIP, start, with_default_sigint


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


# ------------------------------------------------------------------------------------------- Ctrl-C

INTERRUPTED_WHERE_EXCEPTIONS_CANNOT_LEAVE = """
import os, signal, sys, threading, time
from numwhisper import startup
if sys.argv[1] == "deliver":
    startup.deliver_interrupts()

def busy():  # Python code, where the signal's handler runs
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        pass

if sys.argv[2] == "callback":  # LLVM calls busy from C when the object code exists, as in Numba's compiles
    import llvmlite.binding as llvm
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    machine = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly("define i32 @one() {\\n  ret i32 1\\n}\\n"), machine)
    engine.set_object_cache(notify_func=lambda module, buffer: busy())
    work = engine.finalize_object
else:  # a finalizer, as Numba's typing tables run when the garbage collector frees an entry
    class Entry:
        def __del__(self):
            busy()
    entries = [Entry()]
    work = entries.clear
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # lands inside busy
try:
    work()
    print("done", flush=True)
    time.sleep(2.0)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("where", ["callback", "finalizer"])
def test_ctrl_c_where_an_exception_cannot_leave_is_raised_after_it_instead_of_lost(where):
    runs = {}
    for mode in ("plain", "deliver"):
        runs[mode] = subprocess.run([sys.executable, "-c", INTERRUPTED_WHERE_EXCEPTIONS_CANNOT_LEAVE, mode, where],
                                    capture_output=True, text=True, timeout=60, preexec_fn=with_default_sigint)
    plain, delivered = runs["plain"], runs["deliver"]
    # the premise: Python's own handler raises inside busy, where the exception is printed and lost
    assert plain.stdout.splitlines() == ["done", "not interrupted"], plain.stdout + plain.stderr
    assert "Exception ignored" in plain.stderr and "KeyboardInterrupt" in plain.stderr
    # deliver_interrupts: the same Ctrl-C is raised once busy has returned, and nothing is printed
    assert delivered.stdout.splitlines() == ["done", "interrupted"], delivered.stdout + delivered.stderr
    assert delivered.returncode == 0 and delivered.stderr == ""


def test_ctrl_c_while_the_command_line_compiles_its_kernels_is_one_line(repo, tmp_path):
    """A first run (no compiled kernels on disk: an empty NUMBA_CACHE_DIR) compiles for some 30 s; a
    Ctrl-C at any moment of it ends the command with the interrupted line, status 130, no output."""
    for moment in (3.0, 6.0, 9.0):
        cache, out = tmp_path / f"cache{moment}", tmp_path / f"out{moment}"
        job = start(repo, CLIP, "--model", "base", "--output_dir", out, stdout=subprocess.DEVNULL,
                    env={"NUMBA_CACHE_DIR": str(cache)})
        time.sleep(moment)
        assert job.poll() is None, f"the run ended before the Ctrl-C at {moment} s"
        sent = time.monotonic()
        job.send_signal(signal.SIGINT)
        _, stderr = job.communicate(timeout=60)
        took = time.monotonic() - sent
        assert (job.returncode, stderr) == (130, "error: interrupted (run again with --skip_existing to resume "
                                                 "the job)\n"), f"Ctrl-C at {moment} s"
        assert took < 10.0, f"Ctrl-C at {moment} s took {took:.1f} s to end the run"  # measured: 0.03-2.8 s
        assert not out.exists() or list(out.iterdir()) == []
