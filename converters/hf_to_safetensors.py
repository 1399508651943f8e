"""Convert a Hugging Face Whisper folder to numwhisper's single-file safetensors model.

    python converters/hf_to_safetensors.py HF_DIR -o model.safetensors

HF_DIR is what ``WhisperForConditionalGeneration.save_pretrained`` writes (a Hub snapshot such as
openai/whisper-small or distil-whisper/distil-large-v3): config.json, model.safetensors (or
model.safetensors.index.json and its shards), tokenizer.json (or vocab.json + merges.txt) and,
optionally, generation_config.json. float16 and float32 tensors are kept as they are; bfloat16
ones become float32, exactly.
"""

import argparse
import sys

from numwhisper.errors import run_reporting_errors
from numwhisper.formats import checkpoint
from numwhisper.formats.hf import read_hf_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hf_dir", help="folder with config.json, model.safetensors (or its shards) and the tokenizer")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--source", default=None, help="provenance text stored in the file")
    args = parser.parse_args(argv)
    print(checkpoint.save_converted(read_hf_dir(args.hf_dir), args.output, args.source))


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
