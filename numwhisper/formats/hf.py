"""Reader for Hugging Face Whisper folders (what ``WhisperForConditionalGeneration.save_pretrained`` writes).

A folder holds:

    config.json                   WhisperConfig: d_model, encoder_layers, encoder_attention_heads,
                                  decoder_layers, decoder_attention_heads, num_mel_bins,
                                  max_source_positions, max_target_positions, vocab_size, ...
    model.safetensors             every tensor, or else
    model.safetensors.index.json  {"weight_map": {tensor name: shard file name}}, the shards beside it
    generation_config.json        optional: alignment_heads, lang_to_id, task_to_id, ...
    tokenizer.json                a ``tokenizers`` BPE model with its added tokens, or else
    vocab.json + merges.txt       the same vocabulary and merge rules, with added_tokens.json
                                  (optional) holding the special tokens

A safetensors file is a u64 little-endian header length N, N bytes of JSON
``{name: {"dtype": "F16", "shape": [...], "data_offsets": [start, stop]}, "__metadata__": {...}}``,
then the tensor data; offsets count from the end of the header and tile the data without gaps.

Tensor names are OpenAI's modules renamed (``WEIGHT_TABLE``'s ``hf`` column): ``model.encoder.layers.N.
self_attn.q_proj.weight`` is ``encoder.blocks.N.attn.query.weight``, ``fc1``/``fc2`` are ``mlp.0``/
``mlp.2``, ``encoder_attn`` is ``cross_attn``, ``embed_positions`` the positional embeddings. The
layouts are OpenAI's (Linear ``[out, in]``, Conv1d ``[out, in, k]``, no key bias). A saved
``WhisperModel`` lacks the ``model.`` prefix; ``proj_out.weight``, when saved at all, is tied to
``model.decoder.embed_tokens.weight``. distil-whisper folders are the same format with fewer decoder
layers. float16 and float32 tensors are kept as they are (memory-mapped), bfloat16 ones widened to
float32 exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..dims import ModelDims
from ..errors import ModelFileError
from ..languages import (CONTROL_TOKENS, EOT_TEXT, LANGUAGES, N_LANGUAGES_BEFORE_V3, N_TIMESTAMPS,
                         PADDLEX_CODE_ALIASES, paddlex_code, whisper_added_tokens)
from .checkpoint import (MAX_JSON_BYTES, Checkpoint, bfloat16_to_float32, expected_shapes, make_metadata, read_json,
                         validate_tensors)
from .convert import hf_tensor_name, tokenizer_from_hf_json
from .names import fallback_alignment_heads

CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TOKENIZER_JSON = "tokenizer.json"
VOCAB_JSON, MERGES_TXT, ADDED_TOKENS_JSON = "vocab.json", "merges.txt", "added_tokens.json"
PYTORCH_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, *PYTORCH_FILES)

MAX_HEADER_BYTES = 100_000_000   # the safetensors package's own limit on a header
TIED_OUTPUT = "proj_out.weight"  # the output projection, the token embedding by another name

# WhisperConfig key -> ModelDims field; one d_model serves encoder and decoder.
CONFIG_DIMS = {
    "n_mels": "num_mel_bins", "n_audio_ctx": "max_source_positions", "n_audio_state": "d_model",
    "n_audio_head": "encoder_attention_heads", "n_audio_layer": "encoder_layers", "n_vocab": "vocab_size",
    "n_text_ctx": "max_target_positions", "n_text_state": "d_model",
    "n_text_head": "decoder_attention_heads", "n_text_layer": "decoder_layers",
}
# Settings a Whisper network has; a config.json that says otherwise describes another network.
CONFIG_FIXED = {"model_type": "whisper", "activation_function": "gelu", "scale_embedding": False}


def is_hf_dir(path) -> bool:
    """Whether ``path`` looks like a Hugging Face model folder (config.json beside HF weight files)."""
    path = Path(path)
    return (path / CONFIG).is_file() and any((path / name).is_file() for name in WEIGHT_FILES)


def read_hf_dir(path, source: str = None) -> Checkpoint:
    """Read a Hugging Face Whisper folder into a canonical checkpoint (ModelFileError if anything is off)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path}: no such directory")
    dims = dims_from_config(read_json(path / CONFIG), path / CONFIG)
    tensors = read_hf_tensors(path, dims)
    vocab, merges, added = read_hf_tokenizer(path, dims.n_vocab)
    generation = read_json(path / GENERATION_CONFIG) if (path / GENERATION_CONFIG).is_file() else {}
    check_generation_ids(generation, added, path / GENERATION_CONFIG)
    heads = alignment_heads(generation, dims, path / GENERATION_CONFIG)
    metadata = make_metadata(dims, heads, vocab, merges, added, source or f"Hugging Face {path}")
    return Checkpoint(tensors=tensors, dims=dims, metadata=metadata)


# ---------------------------------------------------------------- JSON files

# ---------------------------------------------------------------- config.json

def dims_from_config(config: dict, where) -> ModelDims:
    """ModelDims from a WhisperConfig dict, refusing configs of other networks."""
    for key, want in CONFIG_FIXED.items():
        if key in config and config[key] != want:
            raise ModelFileError(f"{where}: {key} is {config[key]!r}; a Whisper model has {want!r}")
    missing = sorted({key for key in CONFIG_DIMS.values() if key not in config})
    if missing:
        raise ModelFileError(f"{where}: no {missing[0]}; not a Whisper config")
    dims = ModelDims.from_dict({field: config[key] for field, key in CONFIG_DIMS.items()}, where=str(where))
    for key in ("encoder_ffn_dim", "decoder_ffn_dim"):
        if key in config and config[key] != 4 * dims.n_audio_state:
            raise ModelFileError(f"{where}: {key} is {config[key]!r}; Whisper's is 4 * d_model = {4 * dims.n_audio_state}")
    for key, heads in (("encoder_attention_heads", dims.n_audio_head), ("decoder_attention_heads", dims.n_text_head)):
        if dims.n_audio_state % heads:
            raise ModelFileError(f"{where}: d_model {dims.n_audio_state} is not divisible by {key} {heads}")
    return dims


# ---------------------------------------------------------------- safetensors files

SAFETENSORS_NUMPY = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "BF16": np.dtype("<u2")}


def _tensor_entry(name: str, entry, where) -> tuple:
    """(dtype code, shape, start, stop) of one header entry, after checking its types and sizes."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise ModelFileError(f"{where}: header entry of tensor {name} is malformed")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]

    def is_count(x):
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    if not isinstance(shape, list) or not all(is_count(n) for n in shape):
        raise ModelFileError(f"{where}: tensor {name} has a malformed shape {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(is_count(n) for n in offsets) \
            or offsets[0] > offsets[1]:
        raise ModelFileError(f"{where}: tensor {name} has malformed data offsets {offsets!r}")
    n_values = 1
    for n in shape:
        n_values *= n
    itemsize = SAFETENSORS_NUMPY[code].itemsize if code in SAFETENSORS_NUMPY else None
    if itemsize is not None and offsets[1] - offsets[0] != n_values * itemsize:
        raise ModelFileError(f"{where}: tensor {name} has {offsets[1] - offsets[0]} bytes for shape {shape} of {code}")
    return code, tuple(shape), offsets[0], offsets[1]


def read_safetensors_header(path: Path) -> tuple:
    """({tensor name: (dtype code, shape, start, stop)}, data offset, data length) of a safetensors
    file; every size is checked against the file's length before anything is allocated."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{path}: {size} bytes; not a safetensors file (truncated?)")
        n_header = int.from_bytes(head, "little")
        if n_header > min(size - 8, MAX_HEADER_BYTES):
            raise ModelFileError(f"{path}: header length {n_header} exceeds the file's {size} bytes; "
                                 "not a readable safetensors file (truncated?)")
        raw = f.read(n_header)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: safetensors header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    entries = {name: _tensor_entry(name, entry, path) for name, entry in header.items()}
    n_data = size - 8 - n_header
    _check_data_is_tiled(entries, n_data, path)
    return entries, 8 + n_header, n_data


def _check_data_is_tiled(entries: dict, n_data: int, where) -> None:
    """The tensors' byte ranges must follow each other without gaps or overlaps and end with the file."""
    end = 0
    for name, (_, _, start, stop) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if stop > n_data:
            raise ModelFileError(f"{where}: file ends inside tensor {name} (truncated?)")
        if start != end:
            raise ModelFileError(f"{where}: tensor {name} starts at byte {start}, expected {end} (overlapping or gapped data)")
        end = stop
    if end != n_data:
        raise ModelFileError(f"{where}: {n_data - end} bytes after the last tensor; not a well-formed safetensors file")


class SafetensorsFile:
    """One safetensors file, its header checked and its data mapped into memory (read-only, no copy)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries, data_offset, n_data = read_safetensors_header(self.path)
        self.data = (np.memmap(self.path, dtype=np.uint8, mode="r", offset=data_offset, shape=(n_data,))
                     if n_data else np.zeros(0, np.uint8))  # [n_data]

    def tensor(self, name: str) -> np.ndarray:
        """Tensor ``name``: float16/float32 as a view of the file, bfloat16 widened to float32."""
        code, shape, start, stop = self.entries[name]
        if code not in SAFETENSORS_NUMPY:
            raise ModelFileError(f"{self.path}: tensor {name} has dtype {code}; expected F16, BF16 or F32")
        raw = self.data[start:stop].view(SAFETENSORS_NUMPY[code]).reshape(shape)
        return bfloat16_to_float32(raw) if code == "BF16" else raw


# ---------------------------------------------------------------- tensors

def _tensor_files(path: Path) -> dict:
    """{tensor name: SafetensorsFile} over the single file or the shards the index names."""
    single, index_path = path / SAFETENSORS, path / SAFETENSORS_INDEX
    if single.is_file():
        opened = SafetensorsFile(single)
        return {name: opened for name in opened.entries}
    if not index_path.is_file():
        pytorch = [name for name in PYTORCH_FILES if (path / name).is_file()]
        if pytorch:
            raise ModelFileError(f"{path}: holds {pytorch[0]} but no {SAFETENSORS}; numwhisper reads only "
                                 "safetensors: save it with model.save_pretrained(folder, safe_serialization=True)")
        raise ModelFileError(f"{path}: no {SAFETENSORS} or {SAFETENSORS_INDEX}; not a Hugging Face model folder")
    weight_map = read_json(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise ModelFileError(f"{index_path}: weight_map is missing or not a map of tensor names to file names")
    shards, files = {}, {}
    for name, shard in weight_map.items():
        if shard not in shards:
            if Path(shard).name != shard or shard in ("", ".", "..") or "\\" in shard:
                raise ModelFileError(f"{index_path}: shard {shard!r} (of tensor {name}) is not a file in {path}")
            shards[shard] = SafetensorsFile(path / shard)
        if name not in shards[shard].entries:
            raise ModelFileError(f"{path / shard}: tensor {name} is missing (the index puts it there)")
        files[name] = shards[shard]
    return files


def read_hf_tensors(path: Path, dims: ModelDims) -> dict:
    """Every canonical tensor of the folder, by OpenAI name, in ``expected_shapes`` order."""
    files = _tensor_files(path)
    prefix = "model." if any(name.startswith("model.") for name in files) else ""
    shapes = expected_shapes(dims)
    wanted = {prefix + hf_tensor_name(name).removeprefix("model."): name for name in shapes}  # HF name -> OpenAI's
    unexpected = sorted(set(files) - set(wanted) - {TIED_OUTPUT})
    if unexpected:
        raise ModelFileError(f"{path}: unexpected tensor {unexpected[0]} ({len(unexpected)} unexpected in all); "
                             "not a Whisper speech-to-text model")
    tensors = {}
    for hf_name, name in wanted.items():
        if hf_name not in files:
            raise ModelFileError(f"{path}: tensor {hf_name} ({name}) is missing")
        tensor = files[hf_name].tensor(hf_name)
        if tensor.shape != shapes[name]:
            raise ModelFileError(f"{files[hf_name].path}: tensor {hf_name} has shape {list(tensor.shape)}, "
                                 f"expected {list(shapes[name])}")
        tensors[name] = tensor
    if TIED_OUTPUT in files:
        _check_tied_output(files[TIED_OUTPUT], tensors["decoder.token_embedding.weight"])
    validate_tensors(tensors, dims, str(path))
    return tensors


def _check_tied_output(file: SafetensorsFile, embedding: np.ndarray) -> None:
    """Whisper's logits use the token embedding; a stored proj_out.weight must be that same matrix."""
    output = file.tensor(TIED_OUTPUT)
    if output.shape != embedding.shape or not np.array_equal(output, embedding):
        raise ModelFileError(f"{file.path}: tensor {TIED_OUTPUT} differs from the token embedding; "
                             "Whisper ties them, and numwhisper cannot run an untied output projection")


# ---------------------------------------------------------------- tokenizer

N_CONTROL = len(CONTROL_TOKENS)


def read_hf_tokenizer(path: Path, n_vocab: int) -> tuple:
    """(vocab, merges, added_tokens) from tokenizer.json, else vocab.json + merges.txt (+ added_tokens.json).

    The added tokens kept are the special tokens <|endoftext|> .. <|notimestamps|>, as canonical files
    hold them; timestamp tokens, when the file lists them, are checked and left out.
    """
    if (path / TOKENIZER_JSON).is_file():
        where = path / TOKENIZER_JSON
        vocab, merges, added = _from_tokenizer_json(where)
    elif (path / VOCAB_JSON).is_file():
        where, (vocab, merges, added) = path / VOCAB_JSON, _from_vocab_files(path, n_vocab)
        if (path / ADDED_TOKENS_JSON).is_file():
            where = path / ADDED_TOKENS_JSON
            added = {EOT_TEXT: added[EOT_TEXT], **read_json(where)}
    else:
        raise ModelFileError(f"{path}: no {TOKENIZER_JSON}, nor {VOCAB_JSON} with {MERGES_TXT}")
    added = whisper_specials(added, n_vocab, where)
    check_text_tokens(vocab, merges, added, where)
    return vocab, merges, added


def check_text_tokens(vocab: dict, merges: list, added: dict, where) -> None:
    """Ids 0 .. <|endoftext|>-1 each name one text token; the vocabulary's other entries are added
    tokens with the same id; every merge rule joins two symbols."""
    eot = added[EOT_TEXT]
    seen = np.zeros(eot, bool)  # [eot]
    for text, i in vocab.items():
        if i >= eot or i < 0:
            if added.get(text) != i:
                raise ModelFileError(f"{where}: vocabulary entry {text!r} has id {i}, outside the text tokens")
        elif seen[i]:
            raise ModelFileError(f"{where}: vocabulary id {i} names two tokens")
        else:
            seen[i] = True
    if not seen.all():
        missing = np.flatnonzero(~seen)
        raise ModelFileError(f"{where}: the vocabulary lacks id {missing[0]} ({len(missing)} ids missing)")
    bad = next((rule for rule in merges if len(rule.split(" ")) != 2), None)
    if bad is not None:
        raise ModelFileError(f"{where}: merge rule {bad!r} is not two symbols joined by one space")


def _from_tokenizer_json(where: Path) -> tuple:
    """(vocab, merges, added tokens) of a tokenizer.json, its JSON types checked first."""
    data = read_json(where)
    model = data.get("model")
    if not isinstance(model, dict):
        raise ModelFileError(f"{where}: no tokenizer model")
    if model.get("type", "BPE") != "BPE":
        raise ModelFileError(f"{where}: model type {model['type']!r}; Whisper's tokenizer is BPE")
    _check_vocab(model.get("vocab"), where)
    merges = model.get("merges")
    if not isinstance(merges, list) or not all(
            isinstance(m, str) or (isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m))
            for m in merges):
        raise ModelFileError(f"{where}: merges must be a list of \"left right\" strings or [left, right] pairs")
    tokens = data.get("added_tokens")
    if not isinstance(tokens, list) or not all(
            isinstance(t, dict) and isinstance(t.get("content"), str) and _is_id(t.get("id")) for t in tokens):
        raise ModelFileError(f"{where}: added_tokens must be a list of {{content: text, id: integer}}")
    vocab, merges, added = tokenizer_from_hf_json(data, where)
    if EOT_TEXT not in added and EOT_TEXT in vocab:  # listed only in the vocabulary
        added = {EOT_TEXT: vocab[EOT_TEXT], **added}
    return vocab, merges, added


def _from_vocab_files(path: Path, n_vocab: int) -> tuple:
    """(vocab, merges, added tokens) of vocab.json + merges.txt; the added tokens are Whisper's
    layout after vocab.json's <|endoftext|> (the caller prefers added_tokens.json when there is one)."""
    vocab = _check_vocab(read_json(path / VOCAB_JSON), path / VOCAB_JSON)
    merges_path = path / MERGES_TXT
    if not merges_path.is_file():
        raise ModelFileError(f"{merges_path}: no such file")
    if merges_path.stat().st_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{merges_path}: {merges_path.stat().st_size} bytes, too large for merge rules")
    try:
        lines = merges_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ModelFileError(f"{merges_path}: not UTF-8 text ({err})") from None
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    if EOT_TEXT not in vocab:
        raise ModelFileError(f"{path / VOCAB_JSON}: no {EOT_TEXT}")
    eot = vocab[EOT_TEXT]
    added = whisper_added_tokens(eot, language_count(n_vocab, eot, path / VOCAB_JSON))
    return vocab, [line for line in lines if line], added


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_vocab(vocab, where) -> dict:
    """A vocabulary must map token text to integer ids."""
    if not isinstance(vocab, dict) or not all(isinstance(k, str) and _is_id(v) for k, v in vocab.items()):
        raise ModelFileError(f"{where}: the vocabulary must map token text to integer ids")
    return vocab


def language_count(n_vocab: int, eot: int, where) -> int:
    """Language tokens between <|startoftranscript|> and <|translate|> in a Whisper vocabulary of
    ``n_vocab`` entries whose <|endoftext|> is ``eot`` (99, or 100 with large-v3's <|yue|>).

    For the published vocabularies this equals ``languages.n_languages(n_vocab)``; counting from
    ``eot`` also fits a vocabulary with fewer text tokens."""
    count = n_vocab - eot - 2 - N_CONTROL - N_TIMESTAMPS
    if count not in (N_LANGUAGES_BEFORE_V3, len(LANGUAGES)):
        raise ModelFileError(f"{where}: <|endoftext|> at id {eot} leaves {count} language tokens in a vocabulary "
                             f"of {n_vocab}; Whisper's has {N_LANGUAGES_BEFORE_V3} or {len(LANGUAGES)}")
    return count


def _timestamp_text(index: int) -> str:
    return f"<|{index * 0.02:.2f}|>"


def whisper_specials(added: dict, n_vocab: int, where) -> dict:
    """The special tokens of ``added`` after checking each sits where Whisper's layout puts it.

    Both spellings of a control token are accepted (<|nocaptions|> in the OpenAI-era files,
    <|nospeech|> in later ones), and Hebrew as <|he|> or <|iw|> (older files and PaddleX's); timestamp tokens must read <|0.00|> .. <|30.00|> in id order.
    """
    if not all(isinstance(k, str) and _is_id(v) for k, v in added.items()):
        raise ModelFileError(f"{where}: added tokens must map text to integer ids")
    if EOT_TEXT not in added:
        raise ModelFileError(f"{where}: no {EOT_TEXT} among the added tokens")
    eot = added[EOT_TEXT]
    layout = whisper_added_tokens(eot, language_count(n_vocab, eot, where))
    spellings = {i: {text} for text, i in layout.items()}
    for offset, code in enumerate(tuple(LANGUAGES)[:len(layout) - 2 - N_CONTROL], start=2):
        spellings[eot + offset].add(f"<|{paddlex_code(code)}|>")
    for offset, (openai_text, _) in enumerate(CONTROL_TOKENS, start=len(layout) - N_CONTROL):
        spellings[eot + offset].add(openai_text)
    by_id = {}
    for text, i in added.items():
        if i in by_id:
            raise ModelFileError(f"{where}: added tokens {by_id[i]} and {text} share id {i}")
        by_id[i] = text
    for i, texts in spellings.items():
        if by_id.get(i) not in texts:
            raise ModelFileError(f"{where}: token id {i} is {by_id.get(i)!r}, Whisper's layout has "
                                 f"{sorted(texts)[0]} there (<|endoftext|> at {eot}, vocabulary of {n_vocab})")
    first_timestamp = eot + len(layout)
    for i, text in sorted(by_id.items()):
        if i in spellings:
            continue
        if not first_timestamp <= i < n_vocab or text != _timestamp_text(i - first_timestamp):
            raise ModelFileError(f"{where}: added token {text!r} at id {i} is not part of Whisper's layout")
    return {by_id[i]: i for i in sorted(spellings)}


# ---------------------------------------------------------------- generation_config.json

def check_generation_ids(generation: dict, added: dict, where) -> None:
    """The token ids generation_config.json names (languages, tasks, <|notimestamps|>, the start
    token) must be those of the tokenizer (either file may spell Hebrew <|he|> or <|iw|>)."""
    by_text = dict(added)
    for alias, code in PADDLEX_CODE_ALIASES.items():
        for one, other in ((f"<|{alias}|>", f"<|{code}|>"), (f"<|{code}|>", f"<|{alias}|>")):
            if one in added:
                by_text.setdefault(other, added[one])
    named = dict(generation.get("lang_to_id") or {})
    named.update({f"<|{task}|>": i for task, i in (generation.get("task_to_id") or {}).items()})
    for key, text in (("no_timestamps_token_id", "<|notimestamps|>"), ("decoder_start_token_id", "<|startoftranscript|>")):
        if key in generation and generation[key] is not None:
            named[text] = generation[key]
    for text, i in named.items():
        if by_text.get(text) != i:
            raise ModelFileError(f"{where}: {text} has id {i!r}, the tokenizer gives {by_text.get(text)!r} "
                                 "(a stale file? without it the tokenizer alone is used)")


def alignment_heads(generation: dict, dims: ModelDims, where) -> list:
    """[[layer, head], ...] from generation_config.json, else those of the published model the folder
    is named after (``names``), else the decoder's second half."""
    heads = generation.get("alignment_heads")
    if heads is None:
        return fallback_alignment_heads(Path(where).parent.name, dims)
    if not isinstance(heads, list) or not heads:
        raise ModelFileError(f"{where}: alignment_heads must be a non-empty list of [layer, head]")
    for pair in heads:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
                and 0 <= pair[0] < dims.n_text_layer and 0 <= pair[1] < dims.n_text_head):
            raise ModelFileError(f"{where}: alignment head {pair!r} is not a [layer, head] of a decoder with "
                                 f"{dims.n_text_layer} layers of {dims.n_text_head} heads")
    return heads
