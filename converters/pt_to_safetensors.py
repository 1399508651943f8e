"""Convert an openai-whisper ``.pt`` checkpoint to numwhisper's single-file safetensors model, without PyTorch.

    python converters/pt_to_safetensors.py base.pt -o base.safetensors
    python converters/pt_to_safetensors.py base.pt -o base.safetensors --tokenizer multilingual.tiktoken

A ``.pt`` holds no vocabulary. Without ``--tokenizer`` OpenAI's own, shipped with numwhisper, is
used (``multilingual.tiktoken``, or ``gpt2.tiktoken`` for an English-only model). Nor does it hold
alignment heads: a file named after a published model (``small.pt``) gets that model's. float16
and float32 weights keep their dtype; bfloat16 becomes float32.
"""

import argparse
import sys

from numwhisper.errors import run_reporting_errors
from numwhisper.formats import checkpoint
from numwhisper.formats.torch_pt import read_pt


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="the openai-whisper .pt file (torch.save of {'dims', 'model_state_dict'})")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--tokenizer", default=None, help="the vocabulary, a .tiktoken file (default: OpenAI's, shipped with numwhisper)")
    parser.add_argument("--source", default=None, help="provenance text stored in the file")
    args = parser.parse_args(argv)
    print(checkpoint.save_converted(read_pt(args.checkpoint, tokenizer=args.tokenizer), args.output, args.source))


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
