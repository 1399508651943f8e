"""Hugging Face Whisper folders: ones we write (random small models, tiny.en), one transformers wrote
(tests/data/formats/hf_tiny, made by bench/formats_hf.py), and broken or hostile ones."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from numwhisper.backend import NumpyBackend
from numwhisper.dims import ModelDims
from numwhisper.errors import ModelFileError
from numwhisper.formats import checkpoint
from numwhisper.formats.checkpoint import Checkpoint, expected_shapes, make_metadata
from numwhisper.formats.convert import WEIGHT_TABLE
from numwhisper.formats.convert import hf_tensor_name
from numwhisper.formats.hf import is_hf_dir, read_hf_dir
from numwhisper.languages import LANGUAGES, N_LANGUAGES_BEFORE_V3, whisper_added_tokens
from numwhisper.formats.bpe_ranks import bytes_to_unicode
from numwhisper.languages import N_TIMESTAMPS
from numwhisper.tokenizer import Tokenizer

from test_converter_errors import assert_refused, one_line_error
from test_converters import run_converter

FIXTURE = Path(__file__).parent / "data" / "formats" / "hf_tiny"
FIXTURE_EXPECTED = FIXTURE.parent / "hf_tiny_expected.npz"
FIXTURE_TEXT = " the thin hen in the tin"  # as bench/formats_hf.py encodes it


# ---------------------------------------------------------------- small models and HF folders

def small_vocab(n_languages: int) -> tuple:
    """(vocab, merges, added tokens): 256 byte tokens, 4 merges, Whisper's specials after them."""
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = ["Ġ t", "h e", "Ġt he", "i n"]
    for rule in merges:
        vocab[rule.replace(" ", "")] = len(vocab)
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot
    return vocab, merges, whisper_added_tokens(eot, n_languages)


def random_checkpoint(n_languages=len(LANGUAGES), vocab_parts=None, n_text_layer=2, seed=0) -> Checkpoint:
    """A random small Whisper (d_model 8), float32 with a few float16 tensors, over a given vocabulary."""
    vocab, merges, added = vocab_parts or small_vocab(n_languages)
    eot = added["<|endoftext|>"]
    n_vocab = eot + 2 + (len(added) - 8) + 6 + N_TIMESTAMPS
    dims = ModelDims(n_mels=80, n_audio_ctx=16, n_audio_state=8, n_audio_head=2, n_audio_layer=2,
                     n_vocab=n_vocab, n_text_ctx=12, n_text_state=8, n_text_head=2, n_text_layer=n_text_layer)
    rng = np.random.default_rng(seed)
    tensors = {}
    for i, (name, shape) in enumerate(expected_shapes(dims).items()):
        tensors[name] = rng.standard_normal(shape).astype(np.float16 if i % 5 == 0 else np.float32)
    heads = [[n_text_layer - 1, 1], [n_text_layer - 1, 0]]
    metadata = make_metadata(dims, heads, vocab, merges, added, "random")
    return Checkpoint(tensors=tensors, dims=dims, metadata=metadata)


def write_st(path, entries: dict, metadata=None) -> None:
    """A safetensors file from {name: ndarray or (dtype code, shape, raw bytes)} (our own writer, so
    the tests can also write bfloat16 and broken files)."""
    codes = {"float16": "F16", "float32": "F32", "int32": "I32"}
    header, blobs, offset = {"__metadata__": metadata or {"format": "pt"}}, [], 0
    for name, value in entries.items():
        if isinstance(value, np.ndarray):
            value = (codes[value.dtype.name], list(value.shape), np.ascontiguousarray(value).tobytes())
        code, shape, raw = value
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def hf_state(ckpt: Checkpoint, prefix="model.") -> dict:
    """{Hugging Face name: tensor}, with ``prefix`` in place of "model."."""
    return {prefix + hf_tensor_name(name).removeprefix("model."): t for name, t in ckpt.tensors.items()}


def whisper_config(dims: ModelDims) -> dict:
    """config.json as WhisperConfig.save_pretrained writes it (the keys that matter, and some that do not)."""
    return {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "activation_function": "gelu", "scale_embedding": False, "tie_word_embeddings": True,
        "d_model": dims.n_audio_state, "encoder_layers": dims.n_audio_layer,
        "encoder_attention_heads": dims.n_audio_head, "decoder_layers": dims.n_text_layer,
        "decoder_attention_heads": dims.n_text_head, "encoder_ffn_dim": 4 * dims.n_audio_state,
        "decoder_ffn_dim": 4 * dims.n_text_state, "num_mel_bins": dims.n_mels,
        "max_source_positions": dims.n_audio_ctx, "max_target_positions": dims.n_text_ctx,
        "vocab_size": dims.n_vocab, "dropout": 0.0, "transformers_version": "4.46.0",
    }


def timestamp_tokens(first: int) -> dict:
    return {f"<|{i * 0.02:.2f}|>": first + i for i in range(N_TIMESTAMPS)}


def write_tokenizer_json(folder, vocab, merges, added, pairs=True, timestamps=True) -> None:
    """tokenizer.json as the ``tokenizers`` library writes it (merges as pairs since 0.20, strings before)."""
    tokens = dict(added)
    if timestamps:
        tokens.update(timestamp_tokens(max(added.values()) + 1))
    data = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for text, i in tokens.items()],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "model": {"type": "BPE", "vocab": vocab, "merges": [m.split(" ") if pairs else m for m in merges]},
    }
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def write_vocab_files(folder, vocab, merges, added) -> None:
    """vocab.json, merges.txt (with its #version line) and added_tokens.json, the slow tokenizer's files."""
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    extra = {t: i for t, i in added.items() if t not in vocab}
    extra.update(timestamp_tokens(max(added.values()) + 1))
    (folder / "added_tokens.json").write_text(json.dumps(extra), encoding="utf-8")


def write_hf_folder(folder, ckpt: Checkpoint, shards=1, tokenizer="json", prefix="model.", generation=True):
    """A Hugging Face Whisper folder holding ``ckpt``: config, weights (one file or ``shards``
    shards with an index), tokenizer in either form, generation_config.json with the alignment heads."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(whisper_config(ckpt.dims), indent=2))
    state = hf_state(ckpt, prefix)
    if shards == 1:
        write_st(folder / "model.safetensors", state)
    else:
        names = list(state)
        weight_map = {}
        for k in range(shards):
            shard = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            part = names[k::shards]
            write_st(folder / shard, {n: state[n] for n in part})
            weight_map.update({n: shard for n in part})
        index = {"metadata": {"total_size": sum(t.nbytes for t in state.values())}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    vocab, merges, added = (json.loads(ckpt.metadata[f"tokenizer.{k}"]) for k in ("vocab", "merges", "added_tokens"))
    if tokenizer == "json":
        write_tokenizer_json(folder, vocab, merges, added)
    else:
        write_vocab_files(folder, vocab, merges, added)
    if generation:
        eot = added["<|endoftext|>"]
        gen = {"alignment_heads": ckpt.alignment_heads, "decoder_start_token_id": eot + 1,
               "lang_to_id": {t: i for t, i in added.items() if t[2:-2] in LANGUAGES},
               "task_to_id": {"translate": added["<|translate|>"], "transcribe": added["<|transcribe|>"]},
               "no_timestamps_token_id": added["<|notimestamps|>"]}
        (folder / "generation_config.json").write_text(json.dumps(gen, indent=2))
    return folder


def assert_same(back: Checkpoint, ckpt: Checkpoint) -> None:
    """Tensors identical bit for bit (same dtype; in OpenAI's order) and every metadata entry but
    ``source`` equal."""
    assert list(back.tensors) == list(expected_shapes(ckpt.dims)) and set(back.tensors) == set(ckpt.tensors)
    for name, tensor in ckpt.tensors.items():
        assert back.tensors[name].dtype == tensor.dtype, name
        assert np.array_equal(back.tensors[name], tensor), name
    assert back.dims == ckpt.dims
    for key, value in ckpt.metadata.items():
        if key != "source":
            assert back.metadata[key] == value, key


# ---------------------------------------------------------------- reading good folders

def test_table_names_every_tensor_once():
    """The hf column of WEIGHT_TABLE gives a distinct HF name to every OpenAI tensor."""
    ckpt = random_checkpoint(n_text_layer=4)
    names = [hf_tensor_name(n) for n in ckpt.tensors]
    assert len(set(names)) == len(names) and all(n.startswith("model.") for n in names)
    assert hf_tensor_name("decoder.blocks.3.cross_attn.key.weight") == "model.decoder.layers.3.encoder_attn.k_proj.weight"
    assert hf_tensor_name("encoder.blocks.1.mlp.2.bias") == "model.encoder.layers.1.fc2.bias"
    assert all(rule.hf for rule in WEIGHT_TABLE.values())


@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("tokenizer", ["json", "vocab"])
def test_random_folder_round_trip(tmp_path, shards, tokenizer):
    ckpt = random_checkpoint()
    folder = write_hf_folder(tmp_path / "hf", ckpt, shards=shards, tokenizer=tokenizer)
    assert is_hf_dir(folder)
    back = read_hf_dir(folder)
    assert_same(back, ckpt)
    assert back.metadata["source"] == f"Hugging Face {folder}"
    assert isinstance(back.tensors["decoder.ln.bias"], np.memmap) or back.tensors["decoder.ln.bias"].base is not None


def test_whisper_model_names_tied_output_and_default_heads(tmp_path):
    """A saved WhisperModel (no "model." prefix), a stored proj_out tied to the embedding, no
    generation_config.json (so the default alignment heads), a 4-layer decoder as large-v3-turbo's."""
    ckpt = random_checkpoint(n_text_layer=4)
    folder = write_hf_folder(tmp_path / "hf", ckpt, prefix="", generation=False)
    state = hf_state(ckpt, prefix="")
    state["proj_out.weight"] = ckpt.tensors["decoder.token_embedding.weight"]
    write_st(folder / "model.safetensors", state)
    back = read_hf_dir(folder)
    assert back.alignment_heads == [[2, 0], [2, 1], [3, 0], [3, 1]]
    assert all(np.array_equal(back.tensors[n], t) for n, t in ckpt.tensors.items())


def test_bfloat16_widens_exactly(tmp_path):
    ckpt = random_checkpoint()
    folder = write_hf_folder(tmp_path / "hf", ckpt)
    entries, want = {}, {}
    for name, tensor in hf_state(ckpt).items():
        bits = tensor.astype(np.float32).view(np.uint32)
        entries[name] = ("BF16", tensor.shape, (bits >> 16).astype("<u2").tobytes())
        want[name] = (bits & 0xFFFF0000).view(np.float32)
    write_st(folder / "model.safetensors", entries)
    back = read_hf_dir(folder)
    for name in ckpt.tensors:
        got = back.tensors[name]
        assert got.dtype == np.float32 and np.array_equal(got, want[hf_tensor_name(name)]), name


def test_large_v3_vocabulary_with_yue(tmp_path, model_files):
    """The real multilingual vocabulary with 100 languages (51,866 entries): <|yue|> after <|su|>,
    every later special id moved by one; the <|nospeech|> spelling of later files accepted."""
    base = checkpoint.load(model_files["base"]).metadata
    vocab, merges = json.loads(base["tokenizer.vocab"]), json.loads(base["tokenizer.merges"])
    added = whisper_added_tokens(vocab["<|endoftext|>"], len(LANGUAGES))
    added = {("<|nospeech|>" if t == "<|nocaptions|>" else t): i for t, i in added.items()}
    ckpt = random_checkpoint(vocab_parts=(vocab, merges, added))
    assert ckpt.dims.n_vocab == 51866
    back = read_hf_dir(write_hf_folder(tmp_path / "hf", ckpt))
    assert_same(back, ckpt)
    tokenizer = Tokenizer.from_metadata(back.metadata)
    assert tokenizer.language_token("yue") == 50358 and tokenizer.no_timestamps == 50364


def test_hebrew_spelled_either_way(tmp_path):
    """Older vocabularies spell Hebrew <|iw|>; generation_config.json may say <|he|> all the same."""
    ckpt = random_checkpoint()
    folder = write_hf_folder(tmp_path / "hf", ckpt)
    with_added_tokens(folder, lambda a: a.update({"<|iw|>": a.pop("<|he|>")}))
    added = json.loads(read_hf_dir(folder).metadata["tokenizer.added_tokens"])
    assert "<|he|>" not in added and added["<|iw|>"] == json.loads(ckpt.metadata["tokenizer.added_tokens"])["<|he|>"]


@pytest.fixture(scope="module")
def tiny_en_folder(tmp_path_factory, model_files):
    """tiny.en (real weights, float16) as a 3-shard Hugging Face folder with a tokenizer.json."""
    ckpt = checkpoint.load(model_files["tiny.en"])
    return write_hf_folder(tmp_path_factory.mktemp("hf") / "tiny_en", ckpt, shards=3)


def test_tiny_en_folder_reads_back_and_converts_bit_exact(repo, model_files, tiny_en_folder, tmp_path):
    original = checkpoint.load(model_files["tiny.en"])
    assert_same(read_hf_dir(tiny_en_folder), original)
    out = tmp_path / "tiny.en.safetensors"
    done = run_converter(repo, "hf_to_safetensors.py", tiny_en_folder, "-o", out, "--source", original.metadata["source"])
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == model_files["tiny.en"].read_bytes()


def test_tiny_en_slow_tokenizer_files(tmp_path, model_files):
    """vocab.json + merges.txt + added_tokens.json give the same tokenizer metadata as tokenizer.json."""
    meta = checkpoint.load(model_files["tiny.en"]).metadata
    parts = tuple(json.loads(meta[f"tokenizer.{k}"]) for k in ("vocab", "merges", "added_tokens"))
    ckpt = random_checkpoint(vocab_parts=parts)
    assert ckpt.dims.n_vocab == 51864
    back = read_hf_dir(write_hf_folder(tmp_path / "hf", ckpt, tokenizer="vocab"))
    assert_same(back, ckpt)
    assert json.loads(back.metadata["tokenizer.added_tokens"])["<|iw|>"] == 50278  # this file's spelling, kept
    (tmp_path / "hf" / "added_tokens.json").unlink()  # the specials are then Whisper's layout after <|endoftext|>
    again = read_hf_dir(tmp_path / "hf")
    assert Tokenizer.from_metadata(again.metadata).special_tokens == Tokenizer.from_metadata(back.metadata).special_tokens


# ---------------------------------------------------------------- a folder transformers wrote

def fixture_mel(n_mels: int, n_frames: int) -> np.ndarray:
    """The input bench/formats_hf.py fed transformers (same formula)."""
    m = np.arange(n_mels, dtype=np.float64)[:, None]
    t = np.arange(n_frames, dtype=np.float64)[None, :]
    return (0.5 * np.sin(0.013 * t * (1 + m / 7)) + 0.25 * np.cos(0.5 * m + 0.002 * t)).astype(np.float32)  # [n_mels, T]


def test_save_pretrained_fixture_runs_as_transformers_does():
    """The folder save_pretrained wrote (float16, 100 languages, timestamps in tokenizer.json): our
    encoder and decoder on what read_hf_dir makes of it give transformers' outputs, and our tokenizer
    its token ids; any misplaced tensor would change the logits."""
    ckpt = read_hf_dir(FIXTURE)
    assert ckpt.dims == ModelDims(n_mels=80, n_audio_ctx=1500, n_audio_state=8, n_audio_head=2, n_audio_layer=2,
                                  n_vocab=1869, n_text_ctx=32, n_text_state=8, n_text_head=2, n_text_layer=2)
    assert all(t.dtype == np.float16 for t in ckpt.tensors.values()) and ckpt.alignment_heads == [[1, 0], [1, 1]]
    expected = np.load(FIXTURE_EXPECTED)
    tokenizer = Tokenizer.from_metadata(ckpt.metadata)
    assert tokenizer.encode(FIXTURE_TEXT) == expected["text_ids"].tolist()
    assert tokenizer.language_token("yue") == expected["prefix"][1]
    backend = NumpyBackend.from_checkpoint(ckpt)
    features = backend.encode(fixture_mel(80, 3000))  # [1500, 8]
    np.testing.assert_allclose(features[:4], expected["features_head"], atol=1e-5)
    logits, _ = backend.decode(expected["prefix"][None], backend.new_cache(backend.cross_kv(features)))
    np.testing.assert_allclose(logits[0, -3:], expected["logits_tail"], atol=1e-5)
    assert np.abs(expected["logits_tail"]).max() > 0.5


# ---------------------------------------------------------------- broken and hostile folders

def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_state(folder, change, prefix="model."):
    """Rewrite model.safetensors with ``change(state)`` applied to the small random model's state."""
    state = hf_state(random_checkpoint(), prefix)
    change(state)
    write_st(folder / "model.safetensors", state)


def shard_index_to(folder, target):
    """Replace the single file by an index that sends one tensor to ``target``."""
    state = hf_state(random_checkpoint())
    (folder / "model.safetensors").unlink()
    write_st(folder / "part.safetensors", state)
    weight_map = {n: "part.safetensors" for n in state}
    weight_map["model.decoder.layer_norm.weight"] = target
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def set_header_length(path, n):
    data = bytearray(path.read_bytes())
    data[:8] = n.to_bytes(8, "little")
    path.write_bytes(bytes(data))


def with_added_tokens(folder, change):
    def edit(data):
        added = {t["content"]: t["id"] for t in data["added_tokens"]}
        change(added)
        data["added_tokens"] = [{"id": i, "content": t, "special": True} for t, i in added.items()]
    edit_json(folder / "tokenizer.json", edit)


def swap(mapping, a, b):
    mapping[a], mapping[b] = mapping[b], mapping[a]


def no_yue(folder):
    """A 99-language tokenizer in a folder whose config and tensors have the 100-language vocabulary."""
    vocab, merges, added = small_vocab(N_LANGUAGES_BEFORE_V3)
    write_tokenizer_json(folder, vocab, merges, added)


def overlapping(folder):
    """Two tensors on the same bytes (offsets patched after writing)."""
    write_st(folder / MT, {"model.encoder.conv1.bias": np.zeros(8, np.float32),
                           "model.encoder.conv2.bias": np.zeros(8, np.float32)})
    data = (folder / MT).read_bytes().replace(b"[32, 64]", b"[0, 32] ")
    (folder / MT).write_bytes(data[:-32])


def pytorch_only(folder):
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"PK\x03\x04 a torch zip")


def vocab_form_without_merges(folder):
    (folder / "tokenizer.json").unlink()
    vocab, _, _ = small_vocab(len(LANGUAGES))
    (folder / "vocab.json").write_text(json.dumps(vocab))


MT = "model.safetensors"
HOSTILE = {
    "missing tensor": (lambda f: edit_state(f, lambda s: s.pop("model.decoder.layers.1.fc2.bias")),
                       ["model.decoder.layers.1.fc2.bias", "decoder.blocks.1.mlp.2.bias", "missing"]),
    "misshapen tensor": (lambda f: edit_state(f, lambda s: s.update({"model.encoder.layers.0.self_attn.q_proj.weight":
                                                                     np.zeros((8, 7), np.float32)})),
                         [MT, "model.encoder.layers.0.self_attn.q_proj.weight", "[8, 7]", "[8, 8]"]),
    "unexpected tensor": (lambda f: edit_state(f, lambda s: s.update({"classifier.weight": np.zeros(3, np.float32)})),
                          ["unexpected tensor classifier.weight"]),
    "integer tensor": (lambda f: edit_state(f, lambda s: s.update({"model.encoder.conv1.bias": np.zeros(8, np.int32)})),
                       [MT, "model.encoder.conv1.bias", "dtype I32"]),
    "untied output projection": (lambda f: edit_state(f, lambda s: s.update(
        {"proj_out.weight": s["model.decoder.embed_tokens.weight"] + np.float32(1)})), [MT, "proj_out.weight", "tie"]),
    "config without d_model": (lambda f: edit_json(f / "config.json", lambda c: c.pop("d_model")),
                               ["config.json", "no d_model"]),
    "config of another model": (lambda f: edit_json(f / "config.json", lambda c: c.update(model_type="bart")),
                                ["config.json", "model_type", "bart"]),
    "config with another ffn": (lambda f: edit_json(f / "config.json", lambda c: c.update(encoder_ffn_dim=48)),
                                ["config.json", "encoder_ffn_dim", "48"]),
    "config with heads not dividing": (lambda f: edit_json(f / "config.json", lambda c: c.update(decoder_attention_heads=3)),
                                       ["config.json", "decoder_attention_heads", "divisible"]),
    "config with negative layers": (lambda f: edit_json(f / "config.json", lambda c: c.update(encoder_layers=-2)),
                                    ["config.json", "n_audio_layer", "positive integer"]),
    "config not JSON": (lambda f: (f / "config.json").write_text("{'d_model': 8"), ["config.json", "not valid JSON"]),
    "shard outside the folder": (lambda f: shard_index_to(f, "../outside.safetensors"),
                                 ["model.safetensors.index.json", "'../outside.safetensors'", "not a file in"]),
    "absolute shard path": (lambda f: shard_index_to(f, "/etc/hostname"), ["index.json", "/etc/hostname", "not a file in"]),
    "shard missing": (lambda f: shard_index_to(f, "model-00002-of-00002.safetensors"),
                      ["model-00002-of-00002.safetensors", "no such file"]),
    "index names a tensor its shard lacks": (
        lambda f: (shard_index_to(f, "part.safetensors"), edit_json(
            f / "model.safetensors.index.json", lambda i: i["weight_map"].update({"model.encoder.extra": "part.safetensors"}))),
        ["part.safetensors", "model.encoder.extra", "index puts it there"]),
    "truncated data": (lambda f: truncate(f / MT, (f / MT).stat().st_size - 100), [MT, "truncated"]),
    "truncated header": (lambda f: truncate(f / MT, 200), [MT, "header length", "truncated"]),
    "empty file": (lambda f: truncate(f / MT, 0), [MT, "0 bytes"]),
    "huge header length": (lambda f: set_header_length(f / MT, 2 ** 63), [MT, "header length"]),
    "header not JSON": (lambda f: (f / MT).write_bytes((6).to_bytes(8, "little") + b"{nope}"), [MT, "not valid JSON"]),
    "trailing bytes": (lambda f: (f / MT).write_bytes((f / MT).read_bytes() + b"\0" * 8), [MT, "8 bytes after"]),
    "tensor with too few bytes": (lambda f: write_st(f / MT, {**hf_state(random_checkpoint()),
                                                              "model.encoder.conv1.bias": ("F32", [8], b"")}),
                                  [MT, "model.encoder.conv1.bias", "0 bytes for shape [8]"]),
    "overlapping tensors": (overlapping, [MT, "overlapping"]),
    "special tokens out of order": (lambda f: with_added_tokens(f, lambda a: swap(a, "<|de|>", "<|es|>")),
                                    ["tokenizer.json", "<|de|>", "Whisper's layout"]),
    "vocabulary without <|yue|>": (no_yue, ["tokenizer.json", "<|yue|>", "<|translate|>"]),
    "wrong timestamp": (lambda f: with_added_tokens(f, lambda a: a.update({"<|0.03|>": a.pop("<|0.02|>")})),
                        ["tokenizer.json", "<|0.03|>", "not part of Whisper's layout"]),
    "added token among the text tokens": (lambda f: with_added_tokens(f, lambda a: a.update({"<|mine|>": 5})),
                                          ["tokenizer.json", "<|mine|>"]),
    "two tokens on one id": (lambda f: with_added_tokens(f, lambda a: a.update({"<|mine|>": a["<|en|>"]})),
                             ["tokenizer.json", "share id"]),
    "no <|endoftext|>": (lambda f: (with_added_tokens(f, lambda a: a.pop("<|endoftext|>")), edit_json(
        f / "tokenizer.json", lambda t: t["model"]["vocab"].pop("<|endoftext|>"))), ["tokenizer.json", "no <|endoftext|>"]),
    "merge rule of three symbols": (lambda f: edit_json(f / "tokenizer.json", lambda t: t["model"].update(
        merges=["Ġ t", "h e x"])), ["tokenizer.json", "'h e x'"]),
    "two ids for one text": (lambda f: edit_json(f / "tokenizer.json", lambda t: t["model"]["vocab"].update({"Ġt": 104})),
                             ["tokenizer.json", "id 104 names two tokens"]),
    "text token missing": (lambda f: edit_json(f / "tokenizer.json", lambda t: t["model"]["vocab"].pop("Ġt")),
                           ["tokenizer.json", "lacks id 256"]),
    "ids that are not numbers": (lambda f: edit_json(f / "tokenizer.json", lambda t: t["added_tokens"][3].update(id="x")),
                                 ["tokenizer.json", "added_tokens must be a list"]),
    "another tokenizer model": (lambda f: edit_json(f / "tokenizer.json", lambda t: t["model"].update(type="Unigram")),
                                ["tokenizer.json", "Unigram", "BPE"]),
    "no tokenizer": (lambda f: (f / "tokenizer.json").unlink(), ["no tokenizer.json"]),
    "vocab.json without merges.txt": (vocab_form_without_merges, ["merges.txt", "no such file"]),
    "generation ids disagree": (lambda f: edit_json(f / "generation_config.json", lambda g: g["lang_to_id"].update({"<|en|>": 7})),
                                ["generation_config.json", "<|en|>", "7"]),
    "alignment head outside the decoder": (
        lambda f: edit_json(f / "generation_config.json", lambda g: g.update(alignment_heads=[[2, 0]])),
        ["generation_config.json", "[2, 0]", "alignment head"]),
    "PyTorch weights only": (pytorch_only, ["pytorch_model.bin", "safetensors", "safe_serialization=True"]),
}


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory):
    return write_hf_folder(tmp_path_factory.mktemp("good") / "hf", random_checkpoint())


@pytest.mark.parametrize("case", HOSTILE)
def test_broken_folder_is_one_clear_error(good_folder, tmp_path, case):
    edit, words = HOSTILE[case]
    folder = tmp_path / "hf"
    shutil.copytree(good_folder, folder)
    (tmp_path / "outside.safetensors").write_bytes((good_folder / MT).read_bytes())  # bait for "../"
    edit(folder)
    one_line_error(lambda: read_hf_dir(folder), folder, *words)


def test_not_a_folder(tmp_path):
    with pytest.raises(ModelFileError, match="no such directory"):
        read_hf_dir(tmp_path / "absent")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.bin").write_bytes(b"ct2")  # a CTranslate2 folder is not a Hugging Face one
    assert not is_hf_dir(tmp_path)


# ---------------------------------------------------------------- the converter script

CONVERTER_CASES = ["truncated data", "shard outside the folder", "special tokens out of order", "PyTorch weights only"]


@pytest.mark.parametrize("case", CONVERTER_CASES)
def test_converter_refuses_with_one_line(repo, good_folder, tmp_path, case):
    edit, words = HOSTILE[case]
    folder = tmp_path / "hf"
    shutil.copytree(good_folder, folder)
    edit(folder)
    out = tmp_path / "out" / "m.safetensors"
    done = run_converter(repo, "hf_to_safetensors.py", folder, "-o", out)
    assert_refused(done, out, folder, *words)
