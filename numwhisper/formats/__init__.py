"""Model files: numwhisper's own and the formats it converts from.

``checkpoint`` is the canonical model file (one safetensors file that is a complete model);
``convert`` holds the one table of renames and transposes between formats; ``ct2``, ``pdparams``
and ``paddlex_dir`` read and write CTranslate2 directories, Paddle pickles and PaddleX model
directories; ``hub`` turns a model name or path into a checkpoint, converting on first use.
"""
