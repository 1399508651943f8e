"""Convert a CTranslate2 Whisper model directory to numwhisper's single-file safetensors model.

    python converters/ct2_to_safetensors.py CT2_DIR -o base.safetensors
    python converters/ct2_to_safetensors.py CT2_DIR --bin-part model.bin.part1 --bin-part model.bin.part2 -o base.safetensors

Tensors keep CTranslate2's dtype (float16 for the published conversions): nothing is rounded.
"""

import argparse
import sys

from numwhisper.errors import run_reporting_errors
from numwhisper.formats import checkpoint
from numwhisper.formats.convert import ct2_to_checkpoint
from numwhisper.formats.ct2 import read_model_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ct2_dir", help="directory with model.bin, config.json and tokenizer.json")
    parser.add_argument("--bin-part", action="append", default=None,
                        help="a piece of a split model.bin, in order (repeat); default CT2_DIR/model.bin")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--source", default=None, help="provenance text stored in the file")
    args = parser.parse_args(argv)
    variables, config, tokenizer = read_model_dir(args.ct2_dir, args.bin_part)
    ckpt = ct2_to_checkpoint(variables, config, tokenizer, source=args.source or f"CTranslate2 {args.ct2_dir}")
    checkpoint.save(ckpt, args.output)
    print(f"wrote {args.output}: {len(ckpt.tensors)} tensors, dims {ckpt.dims.to_dict()}")


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
