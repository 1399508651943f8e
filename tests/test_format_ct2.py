"""CTranslate2 folders of every quantisation, written here byte by byte (the layout in ct2.py's docstring).

The writer below quantises as ``ctranslate2.specs.model_spec`` does (int8: one scale per leading-axis
row, s = 127 / max|row|, q = rint(w * s); int16: one scale s = 2**10 / max|w|). From that the bounds
the reader must meet, for a source weight w read back as deq = float32(q) * float32(1 / s):

    |w - deq| <= |w*s - fl(w*s)|/s + |fl(w*s) - q|/s + |q/s - deq|
              <= (Q * u + 0.5 + 2 * Q * u) / s          u = 2**-24 (float32), Q = 127 or 1024
    int8:  |w - deq| <= (0.5 + 2**-15) / s_row         (3 * 127 * u = 2.3e-5 <= 2**-15)
    int16: |w - deq| <= (0.5 + 2**-12) / s             (3 * 1024 * u = 1.8e-4 <= 2**-12)

that is half a quantisation step (1 / s) and a hair. bfloat16 rounds to nearest with 8 significant
bits: |w - deq| <= 2**-8 * |w|. float16 and float32 come back bit for bit.
"""

import json
import shutil
import struct

import numpy as np
import pytest

from numwhisper.dims import ModelDims
from numwhisper.errors import ModelFileError
from numwhisper.formats import checkpoint, hub
from numwhisper.formats.checkpoint import Checkpoint, expected_shapes
from numwhisper.formats.convert import rule_for
from numwhisper.formats.checkpoint import bfloat16_to_float32
from numwhisper.formats.ct2 import (parse_model_bin, read_ct2_dir, read_model_bin,
                                    read_model_dir)
from numwhisper.languages import n_languages, whisper_added_tokens

from test_converter_errors import assert_refused
from test_converters import run_converter

QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16")
DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}
F32_MAX = np.finfo(np.float32).max
INT8_SLACK, INT16_SLACK = 2.0 ** -15, 2.0 ** -12

# large-v3's shape (128 mel bins, 51,866 tokens, <|yue|>) at a size that writes in milliseconds
SMALL_V3 = ModelDims(n_mels=128, n_audio_ctx=12, n_audio_state=16, n_audio_head=2, n_audio_layer=2,
                     n_vocab=51866, n_text_ctx=8, n_text_state=16, n_text_head=2, n_text_layer=4)


# ---------------------------------------------------------------- a model.bin writer

def encode_string(text: str) -> bytes:
    """CTranslate2's string: u16 length (NUL included), UTF-8 bytes, NUL."""
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def encode_variable(name: str, dtype: str, array: np.ndarray, dtype_id=None) -> bytes:
    """One variable record; ``array`` holds bfloat16 as uint16 bit patterns."""
    array = np.asarray(array)  # (ascontiguousarray would make a scalar 1-D)
    head = encode_string(name) + struct.pack("<B", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
    dtype_id = DTYPE_IDS[dtype] if dtype_id is None else dtype_id
    data = array.astype(array.dtype.newbyteorder("<")).tobytes()
    return head + struct.pack("<BI", dtype_id, len(data)) + data


def encode_model_bin(stored: dict, aliases: dict, version: int = 6) -> bytes:
    """``model.bin`` bytes of {name: (dtype, array)} and {alias: target}, variables in name order."""
    out = [struct.pack("<I", version), encode_string("WhisperSpec"), struct.pack("<II", 3, len(stored))]
    out += [encode_variable(name, *stored[name]) for name in sorted(stored)]
    out.append(struct.pack("<I", len(aliases)))
    out += [encode_string(alias) + encode_string(target) for alias, target in aliases.items()]
    return b"".join(out)


# ---------------------------------------------------------------- canonical -> CTranslate2 variables

def ct2_float_variables(ckpt: Checkpoint) -> dict:
    """The float CTranslate2 variables of a checkpoint (q/k/v fused, the key's bias slot zero), float32."""
    pieces = {}
    for name, tensor in ckpt.tensors.items():
        rule, layer = rule_for(name)
        pieces.setdefault(rule.ct2.format(layer=layer), {})[rule.part] = np.asarray(tensor, np.float32)
    fused = {}
    for ct2_name, parts in pieces.items():
        count = next(iter(parts))[1]
        template = next(iter(parts.values()))
        blocks = [parts.get((i, count), np.zeros_like(template)) for i in range(count)]  # a missing part: key bias
        fused[ct2_name] = np.concatenate(blocks)  # [count * rows, ...]
    return fused


def ct2_scalars(dims: ModelDims) -> dict:
    """The scalar variables CTranslate2 writes for Whisper."""
    return {"encoder/num_heads": ("int16", np.array(dims.n_audio_head, np.int16)),
            "decoder/num_heads": ("int16", np.array(dims.n_text_head, np.int16)),
            "decoder/scale_embeddings": ("int8", np.array(0, np.int8)),
            "decoder/activation": ("int8", np.array(3, np.int8))}


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (as torch does)."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32)  # [*shape]
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def int8_scales(weight: np.ndarray) -> np.ndarray:
    """CTranslate2's int8 scale per leading-axis row: 127 / max|row| (1 for a zero row, capped at float32's max)."""
    amax = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)  # [rows]
    amax[amax == 0] = 127.0
    amax = np.maximum(amax, np.float32(127) / F32_MAX)
    return (np.float32(127) / amax).astype(np.float32)  # [rows]


def int16_scale(weight: np.ndarray) -> np.float32:
    """CTranslate2's int16 scale: 2**10 / max|w| over the whole tensor."""
    return np.float32(2.0 ** 10 / np.abs(weight).max())


def as_float(dtype: str, values: np.ndarray):
    """(dtype, array) of ``values`` stored as a float type."""
    if dtype == "bfloat16":
        return "bfloat16", to_bfloat16(values)
    return dtype, values.astype(dtype)


def quantize(fused: dict, quantization: str, source_dtype: str = "float32") -> dict:
    """{name: (dtype, array)} as CTranslate2 stores ``fused`` under ``quantization``, scales included."""
    other = {"float16": "float16", "int8_float16": "float16", "bfloat16": "bfloat16", "int8_bfloat16": "bfloat16",
             "int8": source_dtype}.get(quantization, "float32")
    stored = {}
    for name, w in fused.items():
        if name.endswith("weight") and quantization.startswith("int8"):
            scale = int8_scales(w)  # [rows]
            rows = w.reshape(w.shape[0], -1) * scale[:, None]  # [rows, row_size]
            stored[name] = ("int8", np.rint(rows).astype(np.int8).reshape(w.shape))
            stored[name + "_scale"] = ("float32", scale)
        elif name.endswith("weight") and quantization == "int16":
            scale = int16_scale(w)
            q = np.clip(np.rint(w * scale), -32768, 32767).astype(np.int16)  # [*shape]
            stored[name] = ("int16", q)
            stored[name + "_scale"] = ("float32", np.array(scale, np.float32))
        elif name.endswith("weight") and quantization in ("float32", "float16", "bfloat16"):
            stored[name] = as_float(quantization, w)
        else:
            stored[name] = as_float(other, w)
    return stored


def ct2_model_bin(ckpt: Checkpoint, quantization: str, source_dtype: str = "float32") -> tuple:
    """(model.bin bytes, the float32 CTranslate2 variables they were made from)."""
    fused = ct2_float_variables(ckpt)
    stored = {**quantize(fused, quantization, source_dtype), **ct2_scalars(ckpt.dims)}
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"}  # the tied output projection
    return encode_model_bin(stored, aliases), fused


def random_checkpoint(dims: ModelDims, seed: int = 0) -> Checkpoint:
    """Random float32 weights of ``dims``; one weight has an all-zero row and one a row below 127 / float32 max."""
    rng = np.random.default_rng(seed)
    tensors = {name: (rng.standard_normal(shape) * 0.05).astype(np.float32) for name, shape in expected_shapes(dims).items()}
    tensors["encoder.blocks.0.mlp.0.weight"][0] = 0
    tensors["decoder.blocks.1.attn.out.weight"][3] *= np.float32(1e-36)  # int8 scale hits its float32 cap
    for name in tensors:
        if name.endswith("key.bias"):
            tensors[name] = np.zeros_like(tensors[name])
    return Checkpoint(tensors=tensors, dims=dims, metadata={})


def v3_tokenizer() -> dict:
    """base's tokenizer.json with large-v3's special tokens (100 languages, <|yue|> among them)."""
    base_dir, _ = hub.packaged_source("base")
    tokenizer = json.loads((base_dir / "tokenizer.json").read_text(encoding="utf-8"))
    added = whisper_added_tokens(50257, n_languages(SMALL_V3.n_vocab))
    tokenizer["added_tokens"] = [{"id": i, "content": text} for text, i in added.items()]
    return tokenizer


def write_ct2_dir(path, ckpt, quantization, tokenizer, config=None, source_dtype="float32"):
    """A CTranslate2 folder (model.bin, config.json, tokenizer.json) -> the float32 variables it holds."""
    path.mkdir(parents=True, exist_ok=True)
    data, fused = ct2_model_bin(ckpt, quantization, source_dtype)
    (path / "model.bin").write_bytes(data)
    (path / "config.json").write_text(json.dumps(config or {"alignment_heads": [[2, 1], [3, 0]]}))
    (path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    return fused


# ---------------------------------------------------------------- bounds

def assert_within_step(name, source, got, quantization, weight=None):
    """``got`` is ``source`` (float32) stored under ``quantization`` and read back: within the bound
    of the module docstring for its storage type; ``weight`` defaults to the CT2 naming rule."""
    weight = name.endswith("weight") if weight is None else weight
    source, got = np.asarray(source, np.float32), np.asarray(got)
    err = np.abs(source.astype(np.float64) - got.astype(np.float64))  # [*shape]
    if weight and quantization.startswith("int8"):
        bound = (0.5 + INT8_SLACK) / int8_scales(source).astype(np.float64)  # [rows]
        rows = err.reshape(err.shape[0], -1)  # [rows, row_size]
        assert np.all(rows <= bound[:, None]), (name, float((rows / bound[:, None]).max()))
        return
    if weight and quantization == "int16":
        assert err.max() <= (0.5 + INT16_SLACK) / float(int16_scale(source)), name
        return
    stored = quantization if weight else {"int8_float16": "float16", "int8_bfloat16": "bfloat16", "int16": "float32",
                                          "int8_float32": "float32", "int8": "float32"}.get(quantization, quantization)
    if stored == "bfloat16":
        assert np.all(err <= 2.0 ** -8 * np.abs(source)), name
    else:
        assert np.array_equal(got, source.astype(stored)), name


# ---------------------------------------------------------------- dequantisation

@pytest.fixture(scope="module")
def small_v3():
    return random_checkpoint(SMALL_V3)


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_every_variable_comes_back_within_its_step(small_v3, quantization):
    data, fused = ct2_model_bin(small_v3, quantization)
    variables = read_model_bin(data, "mem")
    assert not [n for n in variables if n.endswith("_scale")], "scales must be consumed"
    assert set(variables) == set(fused) | set(ct2_scalars(SMALL_V3)) | {"decoder/projection/weight"}
    want_dtype = {"float16": np.float16}.get(quantization, np.float32)
    for name, source in fused.items():
        assert variables[name].dtype == want_dtype, (name, variables[name].dtype)
        assert_within_step(name, source, variables[name], quantization)
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert variables["decoder/num_heads"].shape == () and variables["decoder/num_heads"] == 2


def test_int8_is_read_as_ctranslate2_dequantises(small_v3):
    """float(q) * (1 / s) in float32, not q / s nor q * s: the exact values CTranslate2 computes."""
    data, _ = ct2_model_bin(small_v3, "int8")
    stored, _ = parse_model_bin(data, "mem")
    name = "decoder/layer_1/self_attention/linear_0/weight"
    q, scale = stored[name].array, stored[name + "_scale"].array  # [rows, cols], [rows]
    want = q.astype(np.float32) * (np.float32(1) / scale)[:, None]  # [rows, cols]
    assert np.array_equal(read_model_bin(data, "mem")[name], want)
    assert np.any(want != (q / scale[:, None]).astype(np.float32)), "the two roundings should differ somewhere"


def test_bfloat16_widening_is_exact():
    """Every bfloat16 bit pattern but NaN widens to the float32 that rounds back to it unchanged."""
    bits = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)  # [65536]
    widened = bfloat16_to_float32(bits)  # [65536]
    keep = ~np.isnan(widened)
    assert np.array_equal(to_bfloat16(widened[keep]), bits[keep])
    assert widened[0x3F80] == 1.0 and widened[0xC020] == -2.5 and widened[0x7F80] == np.inf


@pytest.mark.parametrize("quantization", ["int8_float16", "int16", "bfloat16", "float16"])
def test_folder_reads_as_a_large_v3_checkpoint(tmp_path, small_v3, quantization):
    """read_ct2_dir: dims from the variables (128 mel bins, 51,866 tokens), tensors within the step of
    the source, the special tokens and alignment heads of the folder."""
    write_ct2_dir(tmp_path / "m", small_v3, quantization, v3_tokenizer())
    ckpt = read_ct2_dir(tmp_path / "m")
    assert ckpt.dims == SMALL_V3
    for name, source in small_v3.tensors.items():
        assert ckpt.tensors[name].dtype == (np.float16 if quantization == "float16" else np.float32)
        if quantization != "int16":  # int16's one scale covers the fused tensor: checked per variable above
            assert_within_step(name, source, ckpt.tensors[name], quantization, weight=rule_for(name)[0].ct2.endswith("weight"))
    added = json.loads(ckpt.metadata["tokenizer.added_tokens"])
    assert added["<|yue|>"] == 50358 and added["<|notimestamps|>"] == 50364
    assert ckpt.alignment_heads == [[2, 1], [3, 0]]
    storage = {"int8_float16": "int8 weights, float16 other arrays", "int16": "int16 weights, float32 other arrays"}
    assert ckpt.metadata["source"] == f"CTranslate2 {tmp_path / 'm'} ({storage.get(quantization, quantization)})"


# ---------------------------------------------------------------- the real tiny.en

@pytest.fixture(scope="module")
def tiny_en(model_files):
    return checkpoint.load(model_files["tiny.en"])


@pytest.fixture(scope="module")
def tiny_tokenizer():
    tiny_dir, _ = hub.packaged_source("tiny.en")
    return json.loads((tiny_dir / "tokenizer.json").read_text(encoding="utf-8"))


def test_tiny_en_float16_is_bit_exact(tmp_path, tiny_en, tiny_tokenizer):
    write_ct2_dir(tmp_path / "m", tiny_en, "float16", tiny_tokenizer, source_dtype="float16")
    ckpt = read_ct2_dir(tmp_path / "m", source=tiny_en.metadata["source"])
    assert all(np.array_equal(ckpt.tensors[k], v) and ckpt.tensors[k].dtype == np.float16 for k, v in tiny_en.tensors.items())
    assert ckpt.metadata["tokenizer.vocab"] == tiny_en.metadata["tokenizer.vocab"]


def test_tiny_en_int8_converts_within_its_step(repo, tmp_path, tiny_en, tiny_tokenizer):
    """The converter script on tiny.en quantised "int8" from its float16 weights (which, as in
    CTranslate2, leaves the other arrays float16): every tensor float32 and within the step."""
    fused = write_ct2_dir(tmp_path / "m", tiny_en, "int8", tiny_tokenizer, source_dtype="float16")
    variables, _, _ = read_model_dir(tmp_path / "m")
    for name, source in fused.items():
        assert_within_step(name, source, variables[name], "int8_float16")
    out = tmp_path / "tiny.safetensors"
    done = run_converter(repo, "ct2_to_safetensors.py", tmp_path / "m", "-o", out)
    assert done.returncode == 0, done.stderr
    ckpt = checkpoint.load(out)
    assert {t.dtype for t in ckpt.tensors.values()} == {np.dtype(np.float32)}
    worst = max(float(np.abs(ckpt.tensors[k].astype(np.float32) - v.astype(np.float32)).max()) for k, v in tiny_en.tensors.items())
    assert 0 < worst < 0.02, worst
    assert ckpt.metadata["source"] == f"CTranslate2 {tmp_path / 'm'} (int8 weights, float16 other arrays)"


# ---------------------------------------------------------------- hostile files

SMALL = ModelDims(n_mels=80, n_audio_ctx=6, n_audio_state=8, n_audio_head=2, n_audio_layer=1,
                  n_vocab=51864, n_text_ctx=4, n_text_state=8, n_text_head=2, n_text_layer=2)
QKV = "decoder/layer_0/self_attention/linear_0/weight"


@pytest.fixture(scope="module")
def small_int8():
    """{name: (dtype, array)} of a small English-only model stored int8, and its aliases."""
    stored = {**quantize(ct2_float_variables(random_checkpoint(SMALL, seed=1)), "int8"), **ct2_scalars(SMALL)}
    return stored, {"decoder/projection/weight": "decoder/embeddings/weight"}


def edited_model_bin(small_int8, edit) -> bytes:
    stored, aliases = dict(small_int8[0]), dict(small_int8[1])
    edit(stored, aliases)
    return encode_model_bin(stored, aliases)


def unknown_dtype_id(small_int8) -> bytes:
    """The qkv weight's record with dtype id 9."""
    stored, aliases = small_int8
    good = encode_variable(QKV, *stored[QKV])
    bad = good.replace(struct.pack("<BI", 1, stored[QKV][1].nbytes), struct.pack("<BI", 9, stored[QKV][1].nbytes), 1)
    return encode_model_bin(stored, aliases).replace(good, bad, 1)


def huge_shape(small_int8) -> bytes:
    """A record claiming 2**32-1 x 2**32-1 elements (and as many bytes as it really has)."""
    stored, aliases = small_int8
    good = encode_variable(QKV, *stored[QKV])
    rank_and_shape = struct.pack("<B2I", 2, *stored[QKV][1].shape)
    return encode_model_bin(stored, aliases).replace(good, good.replace(rank_and_shape, struct.pack("<B2I", 2, 2**32 - 1, 2**32 - 1), 1), 1)


HOSTILE = {
    "unknown dtype": (unknown_dtype_id, [QKV, "unknown dtype id 9"]),
    "scale missing": (lambda s: edited_model_bin(s, lambda v, a: v.pop(QKV + "_scale")), [QKV, "_scale is missing"]),
    "scale misshapen": (lambda s: edited_model_bin(s, lambda v, a: v.update({QKV + "_scale": ("float32", v[QKV + "_scale"][1][:-1])})),
                        [QKV + "_scale", "has shape [23]", "expected [24]"]),
    "scale zero": (lambda s: edited_model_bin(s, lambda v, a: v.update({QKV + "_scale": ("float32", 0 * v[QKV + "_scale"][1])})),
                   [QKV + "_scale", "zero, negative or non-finite"]),
    "scale of a float": (lambda s: edited_model_bin(s, lambda v, a: v.update({"decoder/layer_norm/gamma_scale": ("float32", np.ones(8, np.float32))})),
                         ["decoder/layer_norm/gamma_scale", "not int8/int16"]),
    "scale not a float": (lambda s: edited_model_bin(s, lambda v, a: v.update({QKV + "_scale": ("int32", np.ones(24, np.int32))})),
                          [QKV + "_scale", "dtype int32"]),
    "awq zero points": (lambda s: edited_model_bin(s, lambda v, a: v.update({QKV + "_zero": ("float32", np.ones(24, np.float32))})),
                        [QKV + "_zero", "AWQ"]),
    "alias to nothing": (lambda s: edited_model_bin(s, lambda v, a: a.update({"decoder/projection/weight": "nowhere/weight"})),
                         ["alias decoder/projection/weight", "nowhere/weight"]),
    "huge shape": (huge_shape, [QKV, "bytes for int8 shape [4294967295, 4294967295]"]),
    "truncated": (lambda s: encode_model_bin(*s)[:-5000], ["truncated"]),
    "binary version 3": (lambda s: struct.pack("<I", 3) + encode_model_bin(*s)[4:], ["known version (header 3)"]),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_model_bin_is_one_line_naming_the_variable(small_int8, case):
    make, words = HOSTILE[case]
    with pytest.raises(ModelFileError) as err:
        read_model_bin(make(small_int8), "x/model.bin")
    message = str(err.value)
    assert "\n" not in message and message.startswith("x/model.bin: ")
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("case", ["unknown dtype", "scale misshapen", "truncated"])
def test_converter_refuses_hostile_folder(repo, tmp_path, small_int8, tiny_tokenizer, case):
    make, words = HOSTILE[case]
    folder = tmp_path / "ct2"
    folder.mkdir()
    (folder / "model.bin").write_bytes(make(small_int8))
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text(json.dumps(tiny_tokenizer))
    out = tmp_path / "out" / "m.safetensors"
    done = run_converter(repo, "ct2_to_safetensors.py", folder, "-o", out)
    assert_refused(done, out, folder / "model.bin", *words)


def test_vocabulary_only_folder_asks_for_tokenizer_json(repo, tmp_path, small_int8):
    folder = tmp_path / "ct2"
    folder.mkdir()
    (folder / "model.bin").write_bytes(encode_model_bin(*small_int8))
    (folder / "config.json").write_text("{}")
    (folder / "vocabulary.json").write_text(json.dumps(["!", '"']))
    out = tmp_path / "m.safetensors"
    done = run_converter(repo, "ct2_to_safetensors.py", folder, "-o", out)
    assert_refused(done, out, folder / "tokenizer.json", "vocabulary.json", "BPE merges", "openai/whisper-")


def test_split_model_bin_reads_like_one_file(tmp_path, small_int8, tiny_tokenizer):
    """``--bin-part`` pieces are joined before parsing: a cut inside a variable record is fine."""
    data = encode_model_bin(*small_int8)
    folder = tmp_path / "ct2"
    folder.mkdir()
    (folder / "model.bin").write_bytes(data)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text(json.dumps(tiny_tokenizer))
    cut = len(data) // 2 + 3
    (tmp_path / "p1").write_bytes(data[:cut])
    (tmp_path / "p2").write_bytes(data[cut:])
    whole = read_ct2_dir(folder)
    split = read_ct2_dir(folder, [tmp_path / "p1", tmp_path / "p2"])
    assert all(np.array_equal(whole.tensors[k], split.tensors[k]) for k in whole.tensors)
    assert whole.alignment_heads == [[1, 0], [1, 1]]  # no heads in config.json: the decoder's second half
    shutil.rmtree(folder)
    with pytest.raises(ModelFileError, match="not a directory"):
        read_ct2_dir(folder)
