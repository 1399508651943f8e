"""openai-whisper ``.pt`` checkpoints read without PyTorch, and Whisper's vocabulary from tiktoken ranks.

The ``.pt`` files are written by the suite's own writer (tests/pt_writer.py, which follows torch's
layout; bench/formats_pt.py checks torch and openai-whisper load its files), plus one fixture made by
real ``torch.save`` (tests/data/formats/tiny_random.pt, from bench/formats_pt.py --fixture).
"""

import base64
import gzip
import json
import zipfile

import numpy as np
import pytest

from numwhisper.dims import ModelDims
from numwhisper.formats import checkpoint
from numwhisper.formats.bpe_ranks import bytes_to_unicode, read_tiktoken, vocab_and_merges_from_ranks
from numwhisper.formats.checkpoint import expected_shapes
from numwhisper.formats.names import default_alignment_heads
from numwhisper.formats.torch_pt import LEGACY_MAGIC, bundled_tiktoken, read_pt

import pt_writer
from pt_writer import Call, Global, Storage, Tensor, whisper_checkpoint, write_pt
from test_converter_errors import assert_refused, one_line_error
from test_converters import run_converter

TOKENIZERS = {"base": "multilingual.tiktoken", "tiny.en": "gpt2.tiktoken"}
FIXTURE = "tests/data/formats/tiny_random.pt"


@pytest.fixture(scope="module")
def gpt2(repo):
    return repo / "numwhisper" / "assets" / "gpt2.tiktoken"


@pytest.fixture(scope="module")
def small():
    """A random float32 Whisper of tiny dims (English-only vocabulary size): (dims dict, tensors)."""
    dims = dict(pt_writer.FIXTURE_DIMS)
    rng = np.random.default_rng(20)
    tensors = {name: rng.standard_normal(shape).astype(np.float32)
               for name, shape in expected_shapes(ModelDims(**dims)).items()}
    return dims, tensors


# ---------------------------------------------------------------- tiktoken ranks -> vocab and merges

@pytest.mark.parametrize("name", TOKENIZERS)
def test_tiktoken_gives_the_model_files_vocabulary(repo, model_files, name):
    """The vocab equals the one of the canonical files (made from CTranslate2's tokenizer.json), key
    order included. The merges equal too, except that the multilingual tokenizer.json lacks the
    first rule "Ġ t" (rank 256), which the ranks do form: OpenAI's " t" is a token."""
    ranks = read_tiktoken(repo / "numwhisper" / "assets" / TOKENIZERS[name])
    vocab, merges = vocab_and_merges_from_ranks(ranks)
    metadata = checkpoint.load(model_files[name]).metadata
    want_vocab = json.loads(metadata["tokenizer.vocab"])
    want_merges = json.loads(metadata["tokenizer.merges"])
    assert vocab == want_vocab and list(vocab) == list(want_vocab)
    assert vocab["<|endoftext|>"] == len(ranks)
    if name == "base":
        assert ranks[b" t"] == 256 and merges[0] == "Ġ t"
        assert merges[1:] == want_merges
    else:
        assert merges == want_merges


def test_byte_alphabet_is_the_tokenizers():
    from numwhisper import tokenizer

    assert bytes_to_unicode() == tokenizer.bytes_to_unicode()


def test_multilingual_empty_token_is_read(repo):
    """multilingual.tiktoken ends with "= 50256": an empty token, which tiktoken reads as b""."""
    ranks = read_tiktoken(repo / "numwhisper" / "assets" / "multilingual.tiktoken")
    assert ranks[b""] == 50256 and len(ranks) == 50257


def tiktoken_lines(tokens):
    return b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(tokens))


BYTES = [bytes([b]) for b in range(256)]


def test_small_rank_table_gives_its_merges(tmp_path):
    path = tmp_path / "small.tiktoken"
    path.write_bytes(tiktoken_lines(BYTES + [b"ab", b"abc", b" a", b" ab", b"cab"]))
    vocab, merges = vocab_and_merges_from_ranks(read_tiktoken(path))
    # " ab" is " " + "ab", not " a" + "b": byte pair encoding merges "ab" (rank 256) before " a" (258)
    assert merges == ["a b", "ab c", "Ġ a", "Ġ ab", "c ab"]
    assert vocab["Ġab"] == 259 and vocab["<|endoftext|>"] == 261


@pytest.mark.parametrize("content, words", [
    (b"YWI= 0 9\n", ["line 1", "fields"]),
    (b"!!!! 0\n", ["line 1", "not base64"]),
    (b"YQ== x\n", ["line 1", "rank"]),
    (tiktoken_lines(BYTES) + b"YQ== 256\n", ["line 257", "listed twice"]),
    (tiktoken_lines(BYTES[:255]) + base64.b64encode(BYTES[255]) + b" 300\n", ["rank 255 is missing"]),
    (tiktoken_lines(BYTES[1:]), ["single byte 0x00"]),
])
def test_malformed_tiktoken_is_refused(tmp_path, content, words):
    path = tmp_path / "bad.tiktoken"
    path.write_bytes(content)
    one_line_error(lambda: read_tiktoken(path), path, *words)


def test_token_not_formed_by_a_merge_is_refused():
    ranks = {t: i for i, t in enumerate(BYTES + [b"abc"])}  # no "ab" or "bc" to merge from
    one_line_error(lambda: vocab_and_merges_from_ranks(ranks), "b'abc'", "not formed by merging")


# ---------------------------------------------------------------- reading .pt files

def assert_same_tensors(got: dict, want: dict):
    assert sorted(got) == sorted(want)
    for name, array in want.items():
        assert got[name].dtype == array.dtype, name
        assert got[name].tobytes() == np.ascontiguousarray(array).tobytes(), name


def test_random_model_round_trip(tmp_path, small, gpt2):
    dims, tensors = small
    path = write_pt(tmp_path / "small.pt", whisper_checkpoint(dims, tensors))
    ckpt = read_pt(path, tokenizer=gpt2)
    assert ckpt.dims == ModelDims(**dims)
    assert_same_tensors(ckpt.tensors, tensors)
    assert ckpt.alignment_heads == [[1, 0], [1, 1]]  # no heads in the file: the decoder's second half
    assert json.loads(ckpt.metadata["tokenizer.added_tokens"])["<|startoftranscript|>"] == 50257
    assert "small.pt" in ckpt.metadata["source"]


def test_real_model_round_trip(tmp_path, repo, model_files):
    """tiny.en's float16 weights come back bit for bit, and with its vocabulary its metadata."""
    ckpt = checkpoint.load(model_files["tiny.en"])
    path = write_pt(tmp_path / "tiny.en.pt", whisper_checkpoint(ckpt.dims.to_dict(), ckpt.tensors))
    back = read_pt(path, tokenizer=repo / "numwhisper" / "assets" / "gpt2.tiktoken")
    assert_same_tensors(back.tensors, dict(ckpt.tensors))
    for key in ("dims", "tokenizer.vocab", "tokenizer.merges"):
        assert back.metadata[key] == ckpt.metadata[key], key


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_layouts_transposed_shared_bfloat16(tmp_path, small, gpt2, byteorder):
    """Non-contiguous strides, two tensors in one storage at an offset, bfloat16 and a big-endian file."""
    dims, tensors = small
    q, v = "decoder.blocks.0.attn.query.weight", "decoder.blocks.0.attn.value.weight"
    fused = Storage(np.concatenate([tensors[q], tensors[v]]).reshape(-1))
    state = dict(tensors)
    state[q] = Tensor(fused, 0, tensors[q].shape, (2, 1))
    state[v] = Tensor(fused, tensors[q].size, tensors[v].shape, (2, 1))
    state["decoder.blocks.1.mlp.2.weight"] = pt_writer.transposed(tensors["decoder.blocks.1.mlp.2.weight"])
    rounded = tensors["encoder.conv2.weight"].view(np.uint32) & np.uint32(0xFFFF0000)
    state["encoder.conv2.weight"] = pt_writer.bfloat16(rounded.view(np.float32))
    state["decoder.ln.bias"] = tensors["decoder.ln.bias"].astype(np.float16)
    want = {**tensors, "encoder.conv2.weight": rounded.view(np.float32),
            "decoder.ln.bias": tensors["decoder.ln.bias"].astype(np.float16)}
    path = write_pt(tmp_path / "layouts.pt", whisper_checkpoint(dims, state), byteorder=byteorder)
    assert_same_tensors(read_pt(path, tokenizer=gpt2).tensors, want)


def test_untyped_storage_tensors(tmp_path, small, gpt2):
    """PyTorch 2's _rebuild_tensor_v3 over torch.storage.UntypedStorage (numel in bytes, dtype given)."""
    dims, tensors = small
    half = tensors["encoder.conv1.weight"].astype(np.float16)
    state = {**tensors, "encoder.conv1.weight": Tensor(Storage(half.reshape(-1)), 0, half.shape, (6, 3, 1),
                                                       untyped=True)}
    path = write_pt(tmp_path / "v3.pt", whisper_checkpoint(dims, state))
    assert_same_tensors(read_pt(path, tokenizer=gpt2).tensors, {**tensors, "encoder.conv1.weight": half})


def test_real_torch_fixture(repo, gpt2):
    """The file real torch.save wrote: float16/float32/bfloat16, transposed, shared and stride-0 tensors."""
    ckpt = read_pt(repo / FIXTURE, tokenizer=gpt2)
    dims = ModelDims(**pt_writer.FIXTURE_DIMS)
    assert ckpt.dims == dims
    want = pt_writer.fixture_tensors(expected_shapes(dims))
    for name, array in want.items():
        kept = np.float32 if name in pt_writer.FIXTURE_FLOAT32 + pt_writer.FIXTURE_BFLOAT16 else np.float16
        assert ckpt.tensors[name].dtype == kept, name
        assert np.array_equal(ckpt.tensors[name], array), name
    assert ckpt.alignment_heads == [[0, 1], [1, 0]]  # the top-level bool mask
    with zipfile.ZipFile(repo / FIXTURE) as zf:
        assert "tiny_random/byteorder" in zf.namelist()  # really torch's layout, not our writer's prefix


def test_read_tensors_are_views_of_the_file(tmp_path, small, gpt2):
    """Stored contiguous little-endian tensors are not copied (read-only views of the mapped file)."""
    dims, tensors = small
    path = write_pt(tmp_path / "small.pt", whisper_checkpoint(dims, tensors))
    weight = read_pt(path, tokenizer=gpt2).tensors["decoder.token_embedding.weight"]
    assert not weight.flags.writeable and not weight.flags.owndata


@pytest.mark.parametrize("form", ["mask", "pairs", "state_dict_mask", "openai_base85_gzip"])
def test_alignment_heads_from_the_file(tmp_path, small, gpt2, form):
    dims, tensors = small
    mask = np.array([[True, False], [False, True]])
    value = {"mask": mask, "pairs": [[0, 0], [1, 1]],
             "openai_base85_gzip": base64.b85encode(gzip.compress(mask.tobytes()))}
    state, extra = dict(tensors), {}
    if form == "state_dict_mask":
        state["alignment_heads"] = mask
    else:
        extra["alignment_heads"] = value[form]
    path = write_pt(tmp_path / "heads.pt", whisper_checkpoint(dims, state, **extra))
    ckpt = read_pt(path, tokenizer=gpt2)
    assert ckpt.alignment_heads == [[0, 0], [1, 1]]
    assert "alignment_heads" not in ckpt.tensors


def test_openai_alignment_heads_spelling(tmp_path, model_files, gpt2):
    """openai-whisper's own tiny.en entry of ``_ALIGNMENT_HEADS`` gives the canonical file's heads."""
    ckpt = checkpoint.load(model_files["tiny.en"])
    heads = b"ABzY8J1N>@0{>%R00Bk>$p{7v037`oCl~+#00"
    path = write_pt(tmp_path / "t.pt", whisper_checkpoint(ckpt.dims.to_dict(), ckpt.tensors, alignment_heads=heads))
    assert read_pt(path, tokenizer=gpt2).alignment_heads == ckpt.alignment_heads


def test_alignment_head_outside_the_decoder(tmp_path, small, gpt2):
    dims, tensors = small
    path = write_pt(tmp_path / "heads.pt", whisper_checkpoint(dims, tensors, alignment_heads=[[2, 0]]))
    one_line_error(lambda: read_pt(path, tokenizer=gpt2), path, "alignment head (2, 0)", "outside")


def test_wrong_vocabulary_for_the_model(tmp_path, repo, small):
    dims, tensors = small
    path = write_pt(tmp_path / "small.pt", whisper_checkpoint(dims, tensors))
    multilingual = repo / "numwhisper" / "assets" / "multilingual.tiktoken"
    one_line_error(lambda: read_pt(path, tokenizer=multilingual), "50257 tokens", "n_vocab 51864", "gpt2.tiktoken")


def test_vocabulary_defaults_to_the_bundled_one_and_heads_to_the_named_model(tmp_path, small, model_files):
    """Without tokenizer=, OpenAI's vocabulary shipped in numwhisper/assets is used; a file named after
    a published model with its dims gets that model's alignment heads, any other the default."""
    dims, tensors = small
    assert bundled_tiktoken(ModelDims(**dims)).name == "gpt2.tiktoken"
    path = write_pt(tmp_path / "small.pt", whisper_checkpoint(dims, tensors))
    read = read_pt(path)
    assert "gpt2.tiktoken" in read.metadata["source"]
    assert read.alignment_heads == default_alignment_heads(ModelDims(**dims))
    real = checkpoint.load(model_files["tiny.en"])
    named = write_pt(tmp_path / "tiny.en.pt", whisper_checkpoint(real.dims.to_dict(), real.tensors))
    assert read_pt(named).alignment_heads == real.alignment_heads


# ---------------------------------------------------------------- hostile and broken files

@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval"), ("posix", "system"),
                                          ("subprocess", "check_call"), ("torch", "load")])
def test_pickle_naming_a_dangerous_global_runs_nothing(tmp_path, small, module, name):
    marker = tmp_path / "ran"
    command = f"open({str(marker)!r}, 'w')" if name == "eval" else f"touch {marker}"
    dims, tensors = small
    obj = whisper_checkpoint(dims, tensors, hook=Call(Global(module, name), (command,)))
    path = write_pt(tmp_path / "evil.pt", obj)
    one_line_error(lambda: read_pt(path), path, f"{module}.{name}", "refusing")
    assert not marker.exists()


def test_persistent_id_that_is_not_a_storage(tmp_path):
    pickle_bytes = b"\x80\x02X\x04\x00\x00\x00evilQ."   # BINPERSID of a str
    path = write_pt(tmp_path / "p.pt", {}, pickle_bytes=pickle_bytes)
    one_line_error(lambda: read_pt(path), path, "not a storage")


def test_garbage_pickle(tmp_path):
    path = write_pt(tmp_path / "g.pt", {}, pickle_bytes=b"\x80\x02}q\x00(X\x01")
    one_line_error(lambda: read_pt(path), path, "not a readable checkpoint pickle")


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_zip(tmp_path, small, keep):
    dims, tensors = small
    path = write_pt(tmp_path / "t.pt", whisper_checkpoint(dims, tensors))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    one_line_error(lambda: read_pt(path), path, "damaged zip archive")


def test_storage_shorter_than_its_tensor(tmp_path, small):
    dims, tensors = small
    name = "decoder.blocks.1.mlp.0.weight"
    short = Storage(tensors[name].reshape(-1)[:-1])            # one element short
    state = {**tensors, name: Tensor(short, 0, tensors[name].shape, (2, 1))}
    path = write_pt(tmp_path / "s.pt", whisper_checkpoint(dims, state))
    one_line_error(lambda: read_pt(path), path, "holds 15 elements", "needs 16")


def test_storage_entry_cut_short(tmp_path, small):
    dims, tensors = small
    name = "encoder.conv1.weight"
    cut = Storage(tensors[name].reshape(-1), entry_bytes=tensors[name].nbytes - 4)
    state = {**tensors, name: Tensor(cut, 0, tensors[name].shape, (6, 3, 1))}
    path = write_pt(tmp_path / "c.pt", whisper_checkpoint(dims, state))
    one_line_error(lambda: read_pt(path), path, f"holds {tensors[name].nbytes - 4} bytes", "truncated")


def test_huge_expanded_tensor_is_refused_without_allocating(tmp_path, small):
    """A tensor of 2**80 elements over a one-element storage (stride 0) fails on its shape, unread."""
    dims, tensors = small
    name = "decoder.token_embedding.weight"
    state = {**tensors, name: Tensor(Storage(np.zeros(1, np.float32)), 0, (2**40, 2**40), (0, 0))}
    path = write_pt(tmp_path / "h.pt", whisper_checkpoint(dims, state))
    one_line_error(lambda: read_pt(path), path, name, "has shape")


def test_misshapen_tensor(tmp_path, small):
    dims, tensors = small
    state = {**tensors, "encoder.conv2.bias": np.zeros(3, np.float32)}
    path = write_pt(tmp_path / "m.pt", whisper_checkpoint(dims, state))
    one_line_error(lambda: read_pt(path), path, "encoder.conv2.bias", "has shape [3], expected [2]")


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_weight_of_another_dtype(tmp_path, small, dtype):
    dims, tensors = small
    state = {**tensors, "decoder.ln.bias": tensors["decoder.ln.bias"].astype(dtype)}
    path = write_pt(tmp_path / "d.pt", whisper_checkpoint(dims, state))
    one_line_error(lambda: read_pt(path), path, "decoder.ln.bias", np.dtype(dtype).name)


def test_missing_dims(tmp_path, small):
    _, tensors = small
    path = write_pt(tmp_path / "n.pt", {"model_state_dict": tensors})
    one_line_error(lambda: read_pt(path), path, "no 'dims' entry")


def test_bad_dims(tmp_path, small):
    dims, tensors = small
    path = write_pt(tmp_path / "n.pt", whisper_checkpoint({**dims, "n_mels": -1}, tensors))
    one_line_error(lambda: read_pt(path), path, "n_mels")


def test_compressed_storages_are_refused(tmp_path, small):
    dims, tensors = small
    path = write_pt(tmp_path / "z.pt", whisper_checkpoint(dims, tensors), compress_storages=True)
    one_line_error(lambda: read_pt(path), path, "compressed")


def test_missing_storage_entry(tmp_path, small):
    dims, tensors = small
    path = write_pt(tmp_path / "e.pt", whisper_checkpoint(dims, tensors), omit=("data/3",))
    one_line_error(lambda: read_pt(path), path, "storage 3", "missing")


def test_bad_byteorder(tmp_path, small):
    dims, tensors = small
    path = write_pt(tmp_path / "b.pt", whisper_checkpoint(dims, tensors), byteorder="middle")
    one_line_error(lambda: read_pt(path), path, "byteorder")


def test_legacy_torch_file(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(LEGACY_MAGIC + b"\x00" * 64)
    one_line_error(lambda: read_pt(path), path, "legacy", "torch.save")


def test_not_a_checkpoint(tmp_path, repo):
    one_line_error(lambda: read_pt(repo / "golden" / "audio" / "en_jfk.wav"), "en_jfk.wav", "not a PyTorch checkpoint")
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    one_line_error(lambda: read_pt(other_zip), other_zip, "data.pkl")
    one_line_error(lambda: read_pt(tmp_path / "absent.pt"), "no such file")


# ---------------------------------------------------------------- the converter

def test_converter_writes_a_model_file(repo, tmp_path, small, gpt2):
    dims, tensors = small
    path = write_pt(tmp_path / "small.pt", whisper_checkpoint(dims, tensors))
    out = tmp_path / "out" / "small.safetensors"
    done = run_converter(repo, "pt_to_safetensors.py", path, "-o", out, "--tokenizer", gpt2)
    assert done.returncode == 0, done.stderr
    assert_same_tensors(dict(checkpoint.load(out).tensors), tensors)


@pytest.mark.parametrize("case", ["os_system", "truncated", "missing_dims"])
def test_converter_refuses_bad_files(repo, tmp_path, small, gpt2, case):
    dims, tensors = small
    obj = {"model_state_dict": tensors} if case == "missing_dims" else whisper_checkpoint(dims, tensors)
    if case == "os_system":
        obj["x"] = Call(Global("os", "system"), (f"touch {tmp_path / 'ran'}",))
    path = write_pt(tmp_path / "bad.pt", obj)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    out = tmp_path / "bad.safetensors"
    done = run_converter(repo, "pt_to_safetensors.py", path, "-o", out, "--tokenizer", gpt2)
    words = {"os_system": "os.system", "truncated": "damaged zip", "missing_dims": "no 'dims' entry"}[case]
    assert_refused(done, out, path, words)
    assert not (tmp_path / "ran").exists()
