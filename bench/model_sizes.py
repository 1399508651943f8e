"""The size-dependent paths against both references, on every golden clip.

Writes the random-weight stand-ins of large-v3 and large-v3-turbo (``numwhisper.formats.synthetic``)
and runs the parity command's tensor stages of the NumPy backend against the Paddle backend (from
numwhisper's environment) and against openai-whisper's PyTorch model (from this environment, which
must have torch and openai-whisper: run it with the bench environment's Python). The suite does the
Paddle half on two clips (tests/test_model_sizes.py); this does both on all of them.

    /work/benchenv/bin/python bench/model_sizes.py --numwhisper-python .venv/bin/python
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from numwhisper.formats import checkpoint, hub
from numwhisper.formats.synthetic import SHAPES, random_checkpoint

OPENAI = "numwhisper.golden.examples.openai_whisper_backend:backend"


def parity(python: str, reference: str, model_file: Path) -> str:
    """The parity command's output (table and any failure) against one reference."""
    done = subprocess.run([python, "-m", "numwhisper.golden", "check", "--backend", "numpy",
                           "--reference", reference, "--model-file", str(model_file)],
                          capture_output=True, text=True)
    return f"exit {done.returncode}\n{done.stdout}" + (done.stderr[-2000:] if done.returncode else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--numwhisper-python", required=True, help="the Python of an environment with paddlepaddle")
    args = p.parse_args()
    vocabulary = checkpoint.load(hub.resolve("base"))
    with tempfile.TemporaryDirectory() as folder:
        for shape, dims in SHAPES.items():
            path = Path(folder) / f"{shape}-random.safetensors"
            checkpoint.save(random_checkpoint(dims, vocabulary, label=shape), path)
            for label, python, reference in (("Paddle backend", args.numwhisper_python, "paddle"),
                                             ("openai-whisper (PyTorch)", sys.executable, OPENAI)):
                print(f"## {shape} stand-in ({dims}) vs {label}\n")
                print(parity(python, reference, path), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
