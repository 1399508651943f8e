"""Convert a CTranslate2 Whisper model directory to numwhisper's single-file safetensors model.

    python converters/ct2_to_safetensors.py CT2_DIR -o base.safetensors
    python converters/ct2_to_safetensors.py CT2_DIR --bin-part model.bin.part1 --bin-part model.bin.part2 -o base.safetensors

Any size (tiny to large-v3-turbo) and any of CTranslate2's quantisations. float16 and float32 models
keep their dtype: nothing is rounded. int8 / int16 weights (int8, int8_float16, int8_float32,
int8_bfloat16, int16) are dequantised exactly as CTranslate2 does (float(q) * (1 / scale)), bfloat16 is
widened, and such a model is written all float32. The directory must hold tokenizer.json (CTranslate2's
vocabulary.json / vocabulary.txt lack the BPE merges).
"""

import argparse
import sys

from numwhisper.errors import run_reporting_errors
from numwhisper.formats import checkpoint
from numwhisper.formats.ct2 import read_ct2_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ct2_dir", help="directory with model.bin, config.json and tokenizer.json")
    parser.add_argument("--bin-part", action="append", default=None,
                        help="a piece of a split model.bin, in order (repeat); default CT2_DIR/model.bin")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--source", default=None,
                        help="provenance text stored in the file (default: the directory and its storage types)")
    args = parser.parse_args(argv)
    ckpt = read_ct2_dir(args.ct2_dir, args.bin_part, source=args.source)
    checkpoint.save(ckpt, args.output)
    dtypes = "/".join(sorted({t.dtype.name for t in ckpt.tensors.values()}))
    print(f"wrote {args.output}: {len(ckpt.tensors)} {dtypes} tensors, dims {ckpt.dims.to_dict()}")


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
