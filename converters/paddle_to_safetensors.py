"""Convert a PaddleX Whisper model (a model directory or a whisper_*.tar archive) to numwhisper's
single-file safetensors model.

    python converters/paddle_to_safetensors.py whisper_base/ -o base.safetensors
    python converters/paddle_to_safetensors.py whisper_base.tar -o base.safetensors --dtype float16

Paddle stores Linear weights as [in, out]; they come out in OpenAI's [out, in]. ``--dtype float16``
refuses to round: it fails if any value is not exactly a float16.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from numwhisper.errors import ModelFileError, run_reporting_errors
from numwhisper.formats import checkpoint
from numwhisper.formats.paddlex_dir import read_paddle_dir, read_paddle_tar

DTYPES = {"keep": None, "float16": np.float16, "float32": np.float32}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="PaddleX model directory (inference.pdparams, ...) or whisper_*.tar")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--dtype", choices=DTYPES, default="keep", help="tensor dtype to store (default: as in Paddle)")
    parser.add_argument("--tokenizer-dir", default=None,
                        help="folder with vocab.json and merges.txt, for a model without assets/")
    args = parser.parse_args(argv)
    source = Path(args.source)
    if source.is_dir():
        ckpt = read_paddle_dir(source, DTYPES[args.dtype], args.tokenizer_dir)
    elif source.is_file():
        ckpt = read_paddle_tar(source, DTYPES[args.dtype], args.tokenizer_dir)
    else:
        raise ModelFileError(f"{source}: no such file or directory")
    checkpoint.save(ckpt, args.output)
    print(f"wrote {args.output}: {len(ckpt.tensors)} tensors, dims {ckpt.dims.to_dict()}")


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
