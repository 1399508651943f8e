"""whisper.cpp ggml model files: our writer and reader round-trip, the quantised block layouts are
ggml's (checked on hand-made blocks), and broken files are refused with one clear line.

(bench/formats_ggml.py checks the same files with whisper.cpp and ggml themselves.)
"""

import json
import struct

import numpy as np
import pytest

from numwhisper.dims import ModelDims
from numwhisper.errors import ModelFileError
from numwhisper.formats import checkpoint
from numwhisper.formats.bpe_ranks import vocab_and_merges_from_ranks
from numwhisper.formats.checkpoint import Checkpoint, expected_shapes, make_metadata
from numwhisper.formats.names import default_alignment_heads
from numwhisper.formats.ggml import (BLOCK, GGML_TYPES, dequantize, quantize, read_ggml, scan_ggml,
                                     write_ggml)
from numwhisper.languages import whisper_added_tokens
from numwhisper.formats.bpe_ranks import bytes_to_unicode

from test_converter_errors import assert_refused, one_line_error
from test_converters import run_converter

QUANT_TYPES = ("q8_0", "q5_0", "q5_1", "q4_0", "q4_1")
# A large-v3-shaped model in miniature: 128 mel bins, 51,866 tokens (100 languages), narrow and shallow.
SMALL_DIMS = ModelDims(n_mels=128, n_audio_ctx=16, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
                       n_vocab=51866, n_text_ctx=16, n_text_state=64, n_text_head=2, n_text_layer=2)


# ---------------------------------------------------------------- fixtures

def random_tensors(dims: ModelDims, seed: int) -> dict:
    """float16 weights of every shape, rows of very different scales, and a few blocks that are
    all zero, all equal, or hold +v and -v as their largest values."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(dims).items():
        scale = rng.uniform(0.001, 2.0, size=shape[:1] + (1,) * (len(shape) - 1))  # one scale per row
        tensors[name] = (rng.standard_normal(shape) * scale).astype(np.float16)
    embedding = tensors["decoder.token_embedding.weight"]  # [n_vocab, d]
    embedding[0, :BLOCK] = 0
    embedding[1, :BLOCK] = 0.75
    embedding[2, :BLOCK] = np.linspace(-1, 1, BLOCK)
    embedding[3, :BLOCK] = -0.0
    return tensors


@pytest.fixture(scope="module")
def multilingual_tokenizer(model_files):
    """(vocab, merges) of the multilingual vocabulary as a ggml file's ranks give them."""
    vocab = json.loads(checkpoint.load(model_files["base"]).metadata["tokenizer.vocab"])
    decode = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {bytes(decode[c] for c in token): i for token, i in vocab.items() if i < 50257}
    return vocab_and_merges_from_ranks(ranks)


@pytest.fixture(scope="module")
def small(multilingual_tokenizer):
    """A random-weight checkpoint of SMALL_DIMS with the multilingual tokenizer (100 languages)."""
    vocab, merges = multilingual_tokenizer
    added = whisper_added_tokens(50257, 100)
    metadata = make_metadata(SMALL_DIMS, default_alignment_heads(SMALL_DIMS), vocab, merges, added, "random")
    return Checkpoint(random_tensors(SMALL_DIMS, seed=20), SMALL_DIMS, metadata)


@pytest.fixture(scope="module")
def tiny_en(model_files):
    return checkpoint.load(model_files["tiny.en"])


@pytest.fixture(scope="module")
def small_files(small, tmp_path_factory):
    """{file type: path} of the small model written in every type."""
    folder = tmp_path_factory.mktemp("ggml")
    files = {}
    for file_type in ("f32", "f16", *QUANT_TYPES):
        files[file_type] = folder / f"ggml-small-{file_type}.bin"
        write_ggml(small, files[file_type], file_type)
    return files


def special_tokens(metadata) -> dict:
    """The added tokens, Hebrew spelled as OpenAI does (the CTranslate2 files say <|iw|>)."""
    added = json.loads(metadata["tokenizer.added_tokens"])
    return {("<|he|>" if token == "<|iw|>" else token): i for token, i in added.items()}


def assert_same_tokenizer(read, original):
    for key in ("tokenizer.vocab", "tokenizer.merges"):
        assert json.loads(read.metadata[key]) == json.loads(original.metadata[key]), key
    assert special_tokens(read.metadata) == special_tokens(original.metadata)


# ---------------------------------------------------------------- f32 and f16: exact

@pytest.mark.parametrize("file_type", ["f32", "f16"])
def test_small_model_round_trip_is_exact(small, small_files, file_type):
    read = read_ggml(small_files[file_type])
    assert read.dims == SMALL_DIMS
    for name, tensor in small.tensors.items():
        got = read.tensors[name]
        assert got.shape == tensor.shape, name
        assert np.array_equal(got.astype(np.float32), tensor.astype(np.float32)), name
        # whisper.cpp's types: f32 everywhere in an f32 file; in an f16 file, vectors, conv biases and
        # positional embeddings f32, every other tensor f16
        kept_f32 = file_type == "f32" or tensor.ndim == 1 or name.endswith("positional_embedding")
        assert got.dtype == (np.float32 if kept_f32 else np.float16), name
    assert_same_tokenizer(read, small)
    assert read.alignment_heads == default_alignment_heads(SMALL_DIMS)


@pytest.mark.parametrize("file_type", ["f16", "f32", "q8_0"])
def test_tiny_en_round_trip(tiny_en, tmp_path, file_type):
    """The real tiny.en weights: f16/f32 give every value back; q8_0 stays within half a step."""
    path = tmp_path / f"ggml-tiny.en-{file_type}.bin"
    write_ggml(tiny_en, path, file_type)
    read = read_ggml(path)
    assert read.dims == tiny_en.dims
    for name, tensor in tiny_en.tensors.items():
        if file_type == "q8_0" and tensor.ndim == 2 and not name.endswith("positional_embedding"):
            assert_within_step(tensor, read.tensors[name], "q8_0", name)
        else:
            assert np.array_equal(read.tensors[name].astype(np.float32), tensor.astype(np.float32)), name
    assert_same_tokenizer(read, tiny_en)


def test_vocabulary_that_lists_endoftext(small, small_files, tmp_path):
    """Early whisper.cpp conversions end the embedded vocabulary with <|endoftext|> itself."""
    data = small_files["f16"].read_bytes()
    count_at = 4 + 44 + 8 + 4 * SMALL_DIMS.n_mels * 201
    tokens_end = scan_ggml(small_files["f16"]).tensors[0].header_offset
    (n_tokens,) = struct.unpack_from("<i", data, count_at)
    extra = struct.pack("<I", 13) + b"<|endoftext|>"
    path = tmp_path / "with_eot.bin"
    path.write_bytes(data[:count_at] + struct.pack("<i", n_tokens + 1) + data[count_at + 4:tokens_end]
                     + extra + data[tokens_end:])
    assert len(scan_ggml(path).tokens) == n_tokens + 1
    assert_same_tokenizer(read_ggml(path), small)


def test_converter_writes_what_the_reader_reads(repo, small_files, tmp_path):
    out = tmp_path / "small.safetensors"
    done = run_converter(repo, "ggml_to_safetensors.py", small_files["q5_0"], "-o", out, "--source", "test")
    assert done.returncode == 0, done.stderr
    converted, read = checkpoint.load(out), read_ggml(small_files["q5_0"])
    assert all(np.array_equal(converted.tensors[k], read.tensors[k]) for k in read.tensors)
    assert converted.metadata["source"] == "test"
    assert json.loads(converted.metadata["tokenizer.merges"]) == json.loads(read.metadata["tokenizer.merges"])


# ---------------------------------------------------------------- quantised: within a step

def _f16_error(values: np.ndarray) -> np.ndarray:
    return np.abs(values.astype(np.float16).astype(np.float32) - values)


def block_bounds(x: np.ndarray, type_name: str) -> np.ndarray:
    """Largest error each block [n_blocks, 32] may have after quantising, from the block alone.

    Symmetric types scale by d = max|x| / half (127, 16 or 8) and store d in f16. q8_0 rounds to
    the nearest level (half a step); q4_0/q5_0 reach -half..half-1 levels, so the value of the sign
    opposite to the largest one is clamped a whole step. The _1 types span [min, max] in 15 or 31
    steps and store d and min in f16. Each stored scale adds its rounding times the level count.
    """
    if type_name in ("q8_0", "q5_0", "q4_0"):
        half = {"q8_0": 127, "q5_0": 16, "q4_0": 8}[type_name]
        d = np.abs(x).max(axis=1) / half  # [n_blocks]
        step = 0.5 * d if type_name == "q8_0" else d
        bound = step + half * _f16_error(d)
    else:
        levels = {"q5_1": 31, "q4_1": 15}[type_name]
        low, high = x.min(axis=1), x.max(axis=1)  # [n_blocks]
        d = (high - low) / levels
        bound = 0.5 * d + levels * _f16_error(d) + _f16_error(low)
    return bound * (1 + 1e-5) + 1e-30  # [n_blocks]; float32 rounding of x / d


def assert_within_step(original, got, type_name, name):
    x = np.asarray(original, dtype=np.float32).reshape(-1, BLOCK)  # [n_blocks, 32]
    error = np.abs(np.asarray(got, dtype=np.float32).reshape(-1, BLOCK) - x)  # [n_blocks, 32]
    bound = block_bounds(x, type_name)[:, None]  # [n_blocks, 1]
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert np.all(error <= bound), (name, type_name, float(error[worst]), float(bound[worst[0], 0]))
    assert error.max() > 0, (name, "a quantised tensor came back unchanged")


@pytest.mark.parametrize("type_name", QUANT_TYPES)
def test_quantised_round_trip_within_a_step(small, small_files, type_name):
    layout = scan_ggml(small_files[type_name])
    stored = {e.name: GGML_TYPES[e.type_code].name for e in layout.tensors}
    read = read_ggml(small_files[type_name])
    for name, tensor in small.tensors.items():
        assert read.tensors[name].shape == tensor.shape, name
        if stored[name] == type_name:
            assert read.tensors[name].dtype == np.float32
            assert_within_step(tensor, read.tensors[name], type_name, name)
        else:
            assert np.array_equal(read.tensors[name].astype(np.float32), tensor.astype(np.float32)), name
    # whisper.cpp's layout: the matrices are quantised, conv weights f16, conv biases [n, 1] f32
    assert stored["decoder.token_embedding.weight"] == stored["encoder.blocks.0.attn.key.weight"] == type_name
    assert stored["encoder.conv1.weight"] == "f16" and stored["decoder.positional_embedding"] == "f32"
    conv_bias = next(e for e in layout.tensors if e.name == "encoder.conv1.bias")
    assert conv_bias.ne == (1, SMALL_DIMS.n_audio_state) and stored["encoder.conv1.bias"] == "f32"
    assert layout.qntvr == 2


# ---------------------------------------------------------------- hand-made blocks

def f16_bytes(value: float) -> bytes:
    return np.float16(value).tobytes()


def test_dequantise_q8_0_block():
    block = f16_bytes(0.5) + np.arange(-16, 16, dtype=np.int8).tobytes()
    assert np.array_equal(dequantize(block, "q8_0"), (np.arange(32) - 16) * 0.5)


def test_dequantise_q4_0_block():
    """Element j is the low nibble of byte j, element 16 + j its high nibble; value (q - 8) * d."""
    qs = bytearray([0x88] * 16)
    qs[0] = 0xF0   # element 0 -> 0 - 8, element 16 -> 15 - 8
    qs[9] = 0x3C   # element 9 -> 12 - 8, element 25 -> 3 - 8
    want = np.zeros(32)
    want[[0, 16, 9, 25]] = [-16, 14, 8, -10]  # d = 2
    assert np.array_equal(dequantize(f16_bytes(2.0) + bytes(qs), "q4_0"), want)


def test_dequantise_q4_1_block():
    qs = bytearray([0x33] * 16)
    qs[3] = 0x5A   # element 3 -> 10, element 19 -> 5
    want = np.zeros(32)  # 3 * d + m = 0
    want[[3, 19]] = [7, 2]
    assert np.array_equal(dequantize(f16_bytes(1.0) + f16_bytes(-3.0) + bytes(qs), "q4_1"), want)


def test_dequantise_q5_0_block():
    """The fifth bit of element j is bit j of qh (a little-endian u32), for j = 0..31."""
    qh = struct.pack("<I", (1 << 0) | (1 << 16) | (1 << 31))
    qs = bytearray(16)
    qs[0] = 0x21   # element 0 -> 1 | 16, element 16 -> 2 | 16
    qs[15] = 0xF0  # element 15 -> 0 (no fifth bit), element 31 -> 15 | 16
    want = np.full(32, -16.0)
    want[[0, 16, 15, 31]] = [1, 2, -16, 15]
    assert np.array_equal(dequantize(f16_bytes(1.0) + qh + bytes(qs), "q5_0"), want)


def test_dequantise_q5_1_block():
    qh = bytes([0x02, 0x00, 0x00, 0x80])  # bits 1 and 31
    qs = bytearray(16)
    qs[1] = 0x07   # element 1 -> 7 | 16 = 23, element 17 -> 0
    qs[15] = 0x30  # element 15 -> 0, element 31 -> 3 | 16 = 19
    want = np.full(32, 1.0)  # 0 * d + m
    want[[1, 31]] = [23 * 0.5 + 1, 19 * 0.5 + 1]
    assert np.array_equal(dequantize(f16_bytes(0.5) + f16_bytes(1.0) + qh + bytes(qs), "q5_1"), want)


def test_quantise_q4_0_block():
    """d = (value of largest magnitude) / -8; q = min(15, trunc(x / d + 8.5)), +max clamped to 15."""
    x = np.zeros(32, np.float32)
    x[[5, 20, 7]] = [-4.0, 4.0, 1.2]  # d = 0.5: -4 -> 0, 4 -> 16 -> 15, 1.2 -> 10.9 -> 10, 0 -> 8
    qs = bytearray([0x88] * 16)
    qs[4], qs[5], qs[7] = 0xF8, 0x80, 0x8A
    assert quantize(x, "q4_0") == f16_bytes(0.5) + bytes(qs)


def test_quantise_q8_0_rounds_halves_away_from_zero():
    x = np.zeros(32, np.float32)
    x[:5] = [127, 2.5, -2.5, 0.49999997, -126.5]  # d = 1
    want = np.zeros(32, np.int8)
    want[:5] = [127, 3, -3, 0, -127]
    assert quantize(x, "q8_0") == f16_bytes(1.0) + want.tobytes()


def test_quantise_q5_1_block():
    x = np.zeros(32, np.float32)
    x[[0, 1, 17]] = [-1.0, 30.0, 15.5]  # min -1, d = 1: -1 -> 0, 30 -> 31, 15.5 -> 17, 0 -> 1
    qs = bytearray([0x11] * 16)
    qs[0], qs[1] = 0x10, 0x1F
    qh = struct.pack("<I", (1 << 1) | (1 << 17))
    assert quantize(x, "q5_1") == f16_bytes(1.0) + f16_bytes(-1.0) + qh + bytes(qs)


def test_hand_made_block_read_from_a_file(small_files, tmp_path):
    """A q5_1 block put in place of the token embedding's first block is read back through read_ggml."""
    path = tmp_path / "patched.bin"
    data = bytearray(small_files["q5_1"].read_bytes())
    entry = next(e for e in scan_ggml(small_files["q5_1"]).tensors if e.name == "decoder.token_embedding.weight")
    qs = bytearray(16)
    qs[2] = 0x4C   # element 2 -> 12, element 18 -> 4 | 16 (bit 18)
    block = f16_bytes(0.25) + f16_bytes(-2.0) + struct.pack("<I", 1 << 18) + bytes(qs)
    data[entry.data_offset:entry.data_offset + len(block)] = block
    path.write_bytes(bytes(data))
    want = np.full(32, -2.0, np.float32)
    want[[2, 18]] = [12 * 0.25 - 2, 20 * 0.25 - 2]
    assert np.array_equal(read_ggml(path).tensors["decoder.token_embedding.weight"][0, :32], want)


# ---------------------------------------------------------------- hostile files

def tensor_entry(path, name):
    return next(e for e in scan_ggml(path).tensors if e.name == name)


def patched(source, target, edits) -> bytes:
    """Copy ``source`` to ``target`` with {offset: bytes} written over it."""
    data = bytearray(source.read_bytes())
    for offset, value in edits.items():
        data[offset:offset + len(value)] = value
    target.write_bytes(bytes(data))
    return target


def assert_refused_line(path, *words):
    """read_ggml refuses ``path`` with one line naming the file and each of ``words``."""
    one_line_error(lambda: read_ggml(path), path, *words)


def test_bad_magic(small_files, tmp_path):
    bad = patched(small_files["f16"], tmp_path / "bad.bin", {0: b"GGUF"})
    assert_refused_line(bad, "no ggml magic")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert_refused_line(empty, "no ggml magic")


@pytest.mark.parametrize("keep, words", [
    (20, ("hyper-parameters", "truncated")),
    (60, ("mel filters", "truncated")),
])
def test_truncated_header(small_files, tmp_path, keep, words):
    bad = tmp_path / "cut.bin"
    bad.write_bytes(small_files["f16"].read_bytes()[:keep])
    assert_refused_line(bad, *words)


def test_truncated_in_the_vocabulary_and_in_a_tensor(small_files, tmp_path):
    data = small_files["q8_0"].read_bytes()
    first = scan_ggml(small_files["q8_0"]).tensors[0]
    in_vocab = tmp_path / "vocab_cut.bin"
    in_vocab.write_bytes(data[:first.header_offset - 1000])
    assert_refused_line(in_vocab, "token", "truncated")
    entry = tensor_entry(small_files["q8_0"], "decoder.token_embedding.weight")
    in_tensor = tmp_path / "tensor_cut.bin"
    in_tensor.write_bytes(data[:entry.data_offset + entry.n_bytes // 2])
    assert_refused_line(in_tensor, "decoder.token_embedding.weight", "truncated")


@pytest.mark.parametrize("code, words", [(12, ("q4_K", "does not read")), (99, ("unknown ggml type 99",))])
def test_unsupported_tensor_type(small_files, tmp_path, code, words):
    entry = tensor_entry(small_files["f16"], "decoder.blocks.1.mlp.0.weight")
    bad = patched(small_files["f16"], tmp_path / "type.bin", {entry.header_offset + 8: struct.pack("<i", code)})
    assert_refused_line(bad, "decoder.blocks.1.mlp.0.weight", *words)


def test_dims_product_overflows(small_files, tmp_path):
    entry = tensor_entry(small_files["f16"], "encoder.blocks.0.attn.query.weight")
    bad = patched(small_files["f16"], tmp_path / "big.bin",
                  {entry.header_offset + 12: struct.pack("<2i", 65536, 65536)})
    assert_refused_line(bad, "encoder.blocks.0.attn.query.weight", "overflow")


def test_dims_larger_than_the_file(small_files, tmp_path):
    entry = tensor_entry(small_files["f16"], "decoder.token_embedding.weight")
    bad = patched(small_files["f16"], tmp_path / "long.bin",
                  {entry.header_offset + 12: struct.pack("<2i", 64, 1_000_000)})
    assert_refused_line(bad, "decoder.token_embedding.weight", "only", "truncated")


def test_mismatched_shape(small_files, tmp_path):
    """mlp.0.weight [256, 64] stored with its dims swapped: the same bytes, the wrong shape."""
    name = "encoder.blocks.1.mlp.0.weight"
    entry = tensor_entry(small_files["f16"], name)
    bad = patched(small_files["f16"], tmp_path / "swapped.bin",
                  {entry.header_offset + 12: struct.pack("<2i", entry.ne[1], entry.ne[0])})
    assert_refused_line(bad, name, "[64, 256]", "expected [256, 64]")


def test_unknown_missing_and_repeated_tensors(small_files, tmp_path):
    source = small_files["f16"]
    layout = scan_ggml(source)
    last = layout.tensors[-1]
    entry = tensor_entry(source, "decoder.ln.bias")
    name_at = entry.data_offset - len("decoder.ln.bias")
    assert_refused_line(patched(source, tmp_path / "unknown.bin", {name_at: b"decoder.lx.bias"}),
                        "unknown tensor decoder.lx.bias")
    data = source.read_bytes()
    missing = tmp_path / "missing.bin"
    missing.write_bytes(data[:last.header_offset])
    assert_refused_line(missing, last.name, "missing")
    repeated = tmp_path / "repeated.bin"
    repeated.write_bytes(data + data[last.header_offset:])
    assert_refused_line(repeated, last.name, "twice")


def test_corrupt_tensor_header(small_files, tmp_path):
    first = scan_ggml(small_files["f16"]).tensors[0]
    bad = patched(small_files["f16"], tmp_path / "dims.bin", {first.header_offset: struct.pack("<i", 7)})
    assert_refused_line(bad, "7 dims", "corrupt")


def test_mel_filters_of_another_front_end(small_files, tmp_path):
    # the filters start after the magic, 11 hparams and [n_mel, n_freq]; bin 10 at 200 Hz is non-zero
    offset = 4 + 44 + 8 + 4 * (10 * 201 + 5)
    bad = patched(small_files["f16"], tmp_path / "mel.bin", {offset: struct.pack("<f", 0.5)})
    assert_refused_line(bad, "mel filters differ")


def test_vocabulary_that_does_not_fit_n_vocab(small, tiny_en, tmp_path):
    """The English-only vocabulary (50,256 tokens) in a file whose n_vocab is large-v3's."""
    mixed = Checkpoint(small.tensors, small.dims, {**small.metadata, **{
        k: tiny_en.metadata[k] for k in ("tokenizer.vocab", "tokenizer.merges", "tokenizer.added_tokens")}})
    path = tmp_path / "mixed.bin"
    write_ggml(mixed, path, "f16")
    assert_refused_line(path, "50256 tokens", "n_vocab 51866")


def test_old_quantisation_version(small_files, tmp_path):
    bad = patched(small_files["q4_0"], tmp_path / "old.bin", {4 + 40: struct.pack("<i", 1002)})
    assert_refused_line(bad, "quantisation version 1")


def test_writer_refuses_rows_that_are_not_whole_blocks(small, tmp_path):
    dims = ModelDims(**{**SMALL_DIMS.to_dict(), "n_audio_state": 48, "n_text_state": 48})
    odd = Checkpoint(random_tensors(dims, seed=1), dims, small.metadata)
    out = tmp_path / "odd.bin"
    with pytest.raises(ModelFileError, match="rows of 48 values"):
        write_ggml(odd, out, "q8_0")
    assert not out.exists() and not list(tmp_path.glob(".odd.bin*"))
    with pytest.raises(ValueError, match="ftype"):
        write_ggml(small, out, "q3_K")


def test_converter_refuses_a_truncated_file(repo, small_files, tmp_path):
    bad = tmp_path / "cut.bin"
    bad.write_bytes(small_files["q8_0"].read_bytes()[:-100])
    out = tmp_path / "out" / "m.safetensors"
    done = run_converter(repo, "ggml_to_safetensors.py", bad, "-o", out)
    assert_refused(done, out, bad, "truncated")
