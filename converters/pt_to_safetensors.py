"""Convert an openai-whisper ``.pt`` checkpoint to numwhisper's single-file safetensors model, without PyTorch.

    python converters/pt_to_safetensors.py base.pt -o base.safetensors
    python converters/pt_to_safetensors.py base.pt -o base.safetensors --tokenizer multilingual.tiktoken

A ``.pt`` holds no vocabulary. Without ``--tokenizer`` the one openai-whisper installs beside itself
is used (``multilingual.tiktoken``, or ``gpt2.tiktoken`` for an English-only model); openai-whisper
is found, not imported. float16 and float32 weights keep their dtype; bfloat16 becomes float32.
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
    parser.add_argument("--tokenizer", default=None, help="the vocabulary, a .tiktoken file (default: openai-whisper's)")
    parser.add_argument("--source", default=None, help="provenance text stored in the file")
    args = parser.parse_args(argv)
    ckpt = read_pt(args.checkpoint, tokenizer=args.tokenizer)
    if args.source:
        ckpt = checkpoint.Checkpoint(ckpt.tensors, ckpt.dims, {**ckpt.metadata, "source": args.source})
    checkpoint.save(ckpt, args.output)
    print(f"wrote {args.output}: {len(ckpt.tensors)} tensors, dims {ckpt.dims.to_dict()}")


if __name__ == "__main__":
    sys.exit(run_reporting_errors(main))
