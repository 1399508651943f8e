"""Write a complete PaddleX Whisper model directory from a numwhisper model (a .safetensors file
or a model name such as ``base``).

    python converters/safetensors_to_paddle.py base.safetensors -o whisper_base/

The directory holds inference.pdparams (Paddle layout, float32 by default), inference.yml with
PaddleX's decoding defaults, and assets/ (mel_filters.npz and the tokenizer files PaddleX's
GPTTokenizer reads), all built offline, so PaddleX runs it without downloading anything.
"""

import argparse
import sys

import numpy as np

from numwhisper.errors import run_reporting_errors
from numwhisper.formats.hub import load_checkpoint
from numwhisper.formats.paddlex_dir import write_paddle_dir

DTYPES = {"float32": np.float32, "float16": np.float16}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a .safetensors model file or a model name (base, tiny.en)")
    parser.add_argument("-o", "--output", required=True, help="the model directory to create (must not exist)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of inference.pdparams tensors")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(args.model)
    write_paddle_dir(ckpt, args.output, DTYPES[args.dtype])
    print(f"wrote {args.output}: PaddleX model directory for {len(ckpt.tensors)} tensors")


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
