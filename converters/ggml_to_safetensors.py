"""Convert a whisper.cpp ggml model file to numwhisper's single-file safetensors model.

    python converters/ggml_to_safetensors.py ggml-base.bin -o base.safetensors
    python converters/ggml_to_safetensors.py ggml-base-q5_0.bin -o base-q5_0.safetensors

f32 and f16 tensors keep their dtype (nothing is rounded); quantised tensors (q4_0, q4_1, q5_0,
q5_1, q8_0) are dequantised to float32 exactly as whisper.cpp dequantises them. The tokenizer is
rebuilt from the vocabulary the file embeds. ggml files name no alignment heads: a file named after a
published model (``ggml-small.en-q5_0.bin``) gets that model's, any other every head of the
decoder's second half.
"""

import argparse
import sys

from numwhisper.errors import run_reporting_errors
from numwhisper.formats import checkpoint
from numwhisper.formats.ggml import read_ggml


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the whisper.cpp model file (ggml-*.bin)")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--source", default=None, help="provenance text stored in the file")
    args = parser.parse_args(argv)
    print(checkpoint.save_converted(read_ggml(args.model), args.output, args.source))


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
