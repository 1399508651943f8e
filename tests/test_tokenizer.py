"""The tokenizer: exact against OpenAI's tiktoken tokenizer, and against PaddleX's with its two quirks on.

References:
- numwhisper/assets/{multilingual,gpt2}.tiktoken: OpenAI's vocabularies (openai-whisper 20250625), read
  by tiktoken exactly as openai-whisper builds its encodings.
- golden/tokenizer/paddlex_tokenizer.json.gz: PaddleX 3.7.2's tokenizer run over the same corpus
  (golden/make_tokenizer_golden.py).
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import unicodedata
from pathlib import Path

import pytest
import regex
import tiktoken
from safetensors import safe_open

import tokenizer_corpus
from numwhisper.errors import ModelFileError
from numwhisper.formats.bpe_ranks import read_tiktoken, vocab_and_merges_from_ranks
from numwhisper.languages import LANGUAGES, n_languages, whisper_added_tokens
from numwhisper.tokenizer import (SCANNED_PLANES, WHITESPACE_RANGES, Tokenizer, ascii_pretokenize_pattern,
                                  only_ascii_words, pretokenize, pretokenize_pattern)

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "tokenizer"
OPENAI_VOCABS = Path(__file__).resolve().parent.parent / "numwhisper" / "assets"
VOCABS = {"multilingual": "base", "gpt2": "tiny.en"}  # vocabulary -> model carrying it
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENCODE_SECONDS_LIMIT = 5.0  # generous: the corpus encodes in ~0.2 s on the 2-core dev machine


@pytest.fixture(scope="module")
def texts() -> list:
    return tokenizer_corpus.corpus()


@pytest.fixture(scope="module")
def metadata(model_files) -> dict:
    """{vocabulary: safetensors metadata of the model file carrying it}."""
    out = {}
    for vocab, model in VOCABS.items():
        with safe_open(model_files[model], "np") as f:
            out[vocab] = f.metadata()
    return out


def openai_encoding(name: str, n_languages: int = 99) -> tiktoken.Encoding:
    """OpenAI's Whisper encoding: the .tiktoken ranks, then eot, sot, the languages (99; large-v3's 100
    add <|yue|>), 6 controls, 1501 timestamps."""
    ranks = {}
    for line in (OPENAI_VOCABS / f"{name}.tiktoken").read_text().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{c}|>" for c in tuple(LANGUAGES)[:n_languages]),
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>", *(f"<|{i * 0.02:.2f}|>" for i in range(1501))]
    return tiktoken.Encoding(name=name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={s: len(ranks) + i for i, s in enumerate(specials)},
                             explicit_n_vocab=len(ranks) + len(specials))


@pytest.fixture(scope="module")
def openai() -> dict:
    return {name: openai_encoding(name) for name in VOCABS}


@pytest.fixture(scope="module")
def paddlex_golden(texts) -> dict:
    golden = json.loads(gzip.decompress((GOLDEN / "paddlex_tokenizer.json.gz").read_bytes()))
    assert golden["texts"] == texts, "corpus changed: rerun golden/make_tokenizer_golden.py in the reference env"
    assert golden["corpus_sha256"] == tokenizer_corpus.corpus_sha256(texts)
    return golden


def exact(metadata: dict) -> Tokenizer:
    """The tiktoken-exact configuration (no PaddleX quirks)."""
    return Tokenizer.from_metadata(metadata, paddlex_lost_merge=False, paddlex_cleanup=False)


# ---------------------------------------------------------------------------- corpus


def test_corpus_is_deterministic_and_covers_what_it_must(texts):
    assert len(texts) >= 2000 and texts == tokenizer_corpus.corpus() and len(set(texts)) == len(texts)
    references = (tokenizer_corpus.read_tsv_texts(tokenizer_corpus.AUDIO_MANIFEST)
                  + tokenizer_corpus.read_tsv_texts(tokenizer_corpus.REFERENCE_TEXTS))
    assert len(tokenizer_corpus.read_tsv_texts(tokenizer_corpus.REFERENCE_TEXTS)) == 108
    assert set(references) <= set(texts)
    joined = "".join(texts)
    for needle in ["👨‍👩‍👧‍👦", "👍🏽", "e\u0301", "我们", "안녕", "مرحبا", "שלום",
                   "नमस्ते", "สวัสดี", "1,000,000", "\t\t", "\n\n", "'ll", "'LL", "'VE", "...", "  "]:
        assert needle in joined, needle
    assert any(t.startswith(" ") for t in texts) and any(t.endswith(" ") for t in texts)


def test_pretokenize_matches_the_regex_module_on_the_corpus(texts):
    pattern = regex.compile(GPT2_PATTERN)
    for text in texts:
        assert pretokenize(text) == pattern.findall(text), repr(text)


def test_ascii_pattern_splits_text_with_ascii_words_as_the_full_pattern_does(texts):
    every = "".join(map(chr, range(128)))
    symbols = "♪♩♫♬♭♮♯「」『』【】«»—…€ ¡¿\u3000\u00a0"  # non-ASCII, none a letter or number
    samples = [t for t in texts if only_ascii_words(t)]
    samples += [every, " ".join(every), "\n ".join(every), every[::-1], symbols, f"a{symbols}1 ".join(every)]
    assert len(samples) > 1000 and any(not t.isascii() for t in samples)
    for text in samples:  # pretokenize takes the ASCII pattern for these
        assert pretokenize(text) == pretokenize_pattern().findall(text) == ascii_pretokenize_pattern().findall(text)
    # any other letter or number sends text to the full pattern: there "é" and "٣" would not count
    assert ascii_pretokenize_pattern().findall("éa ٣1") == ["é", "a", " ٣", "1"]
    assert not only_ascii_words("éa ٣1") and pretokenize("éa ٣1") == ["éa", " ٣1"]
    assert not only_ascii_words("♪ 我") and not only_ascii_words("½")


def test_letter_and_number_classes_equal_a_full_category_scan():
    """pretokenize_pattern filters with str.isalpha / str.isnumeric before asking unicodedata; on this
    Python's Unicode data that must give exactly categories L* and N*."""
    scanned = [chr(cp) for plane in SCANNED_PLANES for cp in range(plane << 16, (plane + 1) << 16)]
    space = {chr(cp) for first, last in WHITESPACE_RANGES for cp in range(first, last + 1)}
    runs = {"L": [], "N": [], "other": []}
    for c in scanned:
        major = unicodedata.category(c)[0]
        if c not in space:
            runs[major if major in "LN" else "other"].append(c)
    pattern = pretokenize_pattern()
    for kind, chars in runs.items():  # each class in one piece: nothing missing, nothing extra
        text = "".join(chars)
        assert pattern.findall(text) == [text], kind


# ---------------------------------------------------------------------------- exact vs tiktoken


@pytest.mark.parametrize("vocab", VOCABS)
def test_encode_equals_tiktoken_and_round_trips(vocab, metadata, openai, texts):
    tok, enc = exact(metadata[vocab]), openai[vocab]
    start = time.perf_counter()
    ours = [tok.encode(t) for t in texts]
    seconds = time.perf_counter() - start
    for text, ids in zip(texts, ours):
        assert ids == enc.encode_ordinary(text), repr(text)
        assert tok.decode(ids) == text, repr(text)
    assert seconds < ENCODE_SECONDS_LIMIT


@pytest.mark.parametrize("vocab", VOCABS)
def test_every_token_decodes_as_in_tiktoken(vocab, metadata, openai):
    tok, enc = exact(metadata[vocab]), openai[vocab]
    assert tok.n_vocab == enc.n_vocab
    for i in range(tok.n_vocab):
        assert tok.token_bytes(i) == enc.decode_single_token_bytes(i), i


@pytest.mark.parametrize("vocab", VOCABS)
def test_decode_equals_tiktoken_on_id_lists(vocab, metadata, openai):
    tok, enc = exact(metadata[vocab]), openai[vocab]
    for ids in tokenizer_corpus.id_sequences(tok.eot, tok.timestamp_begin, tok.n_vocab):
        assert tok.decode_with_timestamps(ids) == enc.decode(ids), ids
        assert tok.decode(ids) == enc.decode([t for t in ids if t < tok.timestamp_begin]), ids


@pytest.mark.parametrize("vocab", VOCABS)
def test_special_spellings_and_surrogates_encode_as_tiktoken(vocab, metadata, openai):
    tok, enc = exact(metadata[vocab]), openai[vocab]
    for text in ["<|endoftext|>", "<|en|> hi <|0.00|>", "<|notimestamps|>", "a\ud83d\ude00b", "lone \ud83d end"]:
        assert tok.encode(text) == enc.encode(text, disallowed_special=()), repr(text)


# ---------------------------------------------------------------------------- special tokens


@pytest.mark.parametrize("vocab, eot", [("multilingual", 50257), ("gpt2", 50256)])
def test_special_ids(vocab, eot, metadata):
    tok = Tokenizer.from_metadata(metadata[vocab])
    assert (tok.eot, tok.sot) == (eot, eot + 1)
    assert tok.all_language_tokens == tuple(range(eot + 2, eot + 101))
    assert tok.all_language_codes[:3] == ("en", "zh", "de") and len(tok.all_language_codes) == 99
    assert (tok.translate, tok.transcribe, tok.sot_lm, tok.sot_prev) == tuple(range(eot + 101, eot + 105))
    assert (tok.no_speech, tok.no_timestamps, tok.timestamp_begin) == (eot + 105, eot + 106, eot + 107)
    assert tok.n_vocab == eot + 107 + 1501 == (51865 if vocab == "multilingual" else 51864)
    assert tok.is_multilingual == (vocab == "multilingual")
    assert tok.language_token("iw") == tok.language_token("he") == tok.language_token("Hebrew") == eot + 22
    assert tok.language_token("castilian") == tok.language_token("es") == eot + 5
    for bad in ("yue", "xx", "klingon"):
        with pytest.raises(ValueError):
            tok.language_token(bad)
    assert exact(metadata[vocab]).decode([tok.no_speech, tok.eot]) == "<|nospeech|><|endoftext|>"
    assert tok.decode([tok.no_speech, tok.eot]) == "<|nospeech|> <|endoftext|>"  # PaddleX's spacing


def test_large_v3_vocabulary_adds_cantonese_and_shifts_every_later_special_id(metadata):
    """large-v3's 51,866 entries: <|yue|> is the 100th language, so <|translate|> and everything after
    it sit one id later than in the 51,865-entry vocabulary; checked against tiktoken built as
    openai-whisper builds it for 100 languages."""
    v3 = dict(metadata["multilingual"], **{"tokenizer.added_tokens": json.dumps(whisper_added_tokens(50257, 100))})
    tok, enc = exact(v3), openai_encoding("multilingual", n_languages=100)
    assert tok.n_vocab == enc.n_vocab == 51866 and n_languages(51866) == 100
    assert len(tok.all_language_codes) == 100 and tok.all_language_codes[-1] == "yue"
    assert tok.language_token("yue") == tok.language_token("cantonese") == 50358 == enc.encode_single_token("<|yue|>")
    for name in ("<|translate|>", "<|transcribe|>", "<|startofprev|>", "<|notimestamps|>", "<|0.00|>", "<|30.00|>"):
        assert tok.special_tokens.get(name, enc.encode_single_token(name)) == enc.encode_single_token(name), name
    assert (tok.translate, tok.transcribe, tok.no_timestamps, tok.timestamp_begin) == (50359, 50360, 50364, 50365)
    assert tok.sot_sequence("yue") == (50258, 50358, 50360)
    for i in range(tok.eot, tok.n_vocab):
        assert tok.token_bytes(i) == enc.decode_single_token_bytes(i), i


def test_sot_sequences(metadata):
    multi, english = (Tokenizer.from_metadata(metadata[v]) for v in VOCABS)
    assert multi.sot_sequence() == (50258, 50259, 50359)
    assert multi.sot_sequence("de", "translate") == (50258, 50261, 50358)
    assert multi.sot_sequence("iw", without_timestamps=True) == (50258, 50279, 50359, 50363)
    assert english.sot_sequence() == (50257,) and english.sot_sequence("de", "translate") == (50257,)
    assert english.sot_sequence(without_timestamps=True) == (50257, 50362)
    with pytest.raises(ValueError):
        multi.sot_sequence("en", "summarize")


@pytest.mark.parametrize("vocab", VOCABS)
def test_timestamps(vocab, metadata):
    tok = Tokenizer.from_metadata(metadata[vocab])
    ts = tok.timestamp_begin
    hello = tok.encode(" Hello")
    assert tok.decode_with_timestamps([ts, *hello, ts + 54]) == "<|0.00|> Hello<|1.08|>"
    assert tok.decode_with_timestamps([ts + 1500]) == "<|30.00|>"
    assert tok.decode([ts, *hello, ts + 54]) == " Hello"
    assert tok.decode([]) == "" and tok.decode_with_timestamps([]) == "" and tok.encode("") == []
    with pytest.raises(ValueError):
        tok.decode_with_timestamps([tok.n_vocab])
    with pytest.raises(ValueError):
        tok.decode([-1])


@pytest.mark.parametrize("vocab", VOCABS)
def test_suppress_tokens(vocab, metadata):
    tok = Tokenizer.from_metadata(metadata[vocab])
    always = {tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech}
    assert tok.suppress_tokens("-1") == tuple(sorted(set(tok.non_speech_tokens) | always))
    assert tok.suppress_tokens("") == tuple(sorted(always))
    assert tok.suppress_tokens("3,-1") == tuple(sorted(set(tok.non_speech_tokens) | always | {3}))
    assert tok.suppress_tokens([-1]) == tok.suppress_tokens("-1")
    assert tok.suppress_tokens("5,6") == tuple(sorted(always | {5, 6}))
    assert tok.encode(" -")[0] in tok.non_speech_tokens and tok.encode(" the")[0] not in tok.non_speech_tokens


# ---------------------------------------------------------------------------- PaddleX options


def test_with_options_equals_a_tokenizer_built_with_them(metadata, texts):
    default = Tokenizer.from_metadata(metadata["multilingual"])
    shared = default.with_options(paddlex_lost_merge=True)
    built = Tokenizer.from_metadata(metadata["multilingual"], paddlex_lost_merge=True)
    assert shared.options == built.options and default.options.paddlex_lost_merge is False
    for text in texts[:200]:
        assert shared.encode(text) == built.encode(text), repr(text)
    assert default.encode(" the") == [264] and shared.encode(" the") == [220, 3322]  # memos stay apart


def test_options_defaults_and_their_effects(metadata):
    default = Tokenizer.from_metadata(metadata["multilingual"])
    assert (default.options.paddlex_lost_merge, default.options.paddlex_cleanup) == (False, True)
    lost = Tokenizer.from_metadata(metadata["multilingual"], paddlex_lost_merge=True)
    assert default.encode(" the") == [264] and lost.encode(" the") == [220, 3322]
    english = Tokenizer.from_metadata(metadata["gpt2"], paddlex_lost_merge=True)
    assert english.encode(" the") == exact(metadata["gpt2"]).encode(" the") == [262]
    text = "Hello , world . I do n't know ! It 's"
    ids = default.encode(text)
    assert default.decode(ids) == "Hello, world. I don't know! It's"
    assert exact(metadata["multilingual"]).decode(ids) == text
    spaced = default.decode([default.sot, *default.encode("Hi"), default.transcribe])
    assert spaced == "<|startoftranscript|> Hi <|transcribe|>"


@pytest.mark.parametrize("merges_from", ["model file", "tiktoken ranks"])
@pytest.mark.parametrize("vocab", VOCABS)
def test_equals_paddlex_with_both_options(vocab, merges_from, metadata, paddlex_golden, texts):
    """PaddleX's encodings, with the model file's merge rules (Hugging Face's list, which lacks the
    multilingual "Ġ t") and with the complete list derived from OpenAI's ranks (as a .pt gives)."""
    golden = paddlex_golden[vocab]
    meta = dict(metadata[vocab])
    if merges_from == "tiktoken ranks":
        _, merges = vocab_and_merges_from_ranks(read_tiktoken(OPENAI_VOCABS / f"{vocab}.tiktoken"))
        assert (merges[0] == "Ġ t") and (len(merges) - len(json.loads(meta["tokenizer.merges"])) == (vocab == "multilingual"))
        meta["tokenizer.merges"] = json.dumps(merges)
    tok = Tokenizer.from_metadata(meta, paddlex_lost_merge=True, paddlex_cleanup=True)
    for text, ids, decoded in zip(texts, golden["encode"], golden["decode"]):
        assert tok.encode(text) == ids, repr(text)
        if text == "":
            assert decoded is None and tok.decode(ids) == ""  # PaddleX raises on decode([])
        else:
            assert tok.decode(ids) == decoded, repr(text)
    # PaddleX spells the Hebrew token <|iw|>; numwhisper keeps OpenAI's <|he|>.
    for ids, decoded, with_ts in zip(golden["id_sequences"], golden["id_sequences_decode"],
                                     golden["id_sequences_decode_with_timestamps"]):
        assert tok.decode(ids) == decoded.replace("<|iw|>", "<|he|>"), ids
        assert tok.decode_with_timestamps(ids) == with_ts.replace("<|iw|>", "<|he|>"), ids


@pytest.mark.parametrize("vocab", VOCABS)
def test_special_ids_equal_paddlex(vocab, metadata, paddlex_golden):
    s = paddlex_golden[vocab]["specials"]
    tok = Tokenizer.from_metadata(metadata[vocab], paddlex_lost_merge=True)
    assert (tok.eot, tok.sot, tok.sot_lm, tok.sot_prev, tok.no_speech, tok.no_timestamps, tok.timestamp_begin) == (
        s["eot"], s["sot"], s["sot_lm"], s["sot_prev"], s["no_speech"], s["no_timestamps"], s["timestamp_begin"])
    assert list(tok.sot_sequence()) == s["sot_sequence"]
    assert list(tok.sot_sequence(without_timestamps=True)) == s["sot_sequence_including_notimestamps"]
    assert list(tok.non_speech_tokens) == s["non_speech_tokens"]
    assert list(Tokenizer.from_metadata(metadata[vocab]).non_speech_tokens) == s["non_speech_tokens"]
    assert list(tok.all_language_tokens) == s["all_language_tokens"]
    assert [c if c != "iw" else "he" for c in s["all_language_codes"]] == list(tok.all_language_codes)
    for key, expected in s.get("sot_sequence_by_task", {}).items():
        language, task = key.split("/")
        assert list(tok.sot_sequence(language, task)) == expected, key


# ---------------------------------------------------------------------------- bad metadata


def test_bad_metadata_is_refused(metadata):
    good = metadata["multilingual"]
    with pytest.raises(ModelFileError):
        Tokenizer.from_metadata({k: v for k, v in good.items() if k != "tokenizer.merges"})
    with pytest.raises(ModelFileError):
        Tokenizer.from_metadata({**good, "tokenizer.vocab": "{not json"})
    added = json.loads(good["tokenizer.added_tokens"])
    shifted = {k: (v + 1 if v > added["<|startoftranscript|>"] else v) for k, v in added.items()}
    with pytest.raises(ModelFileError):
        Tokenizer.from_metadata({**good, "tokenizer.added_tokens": json.dumps(shifted)})
    vocab = json.loads(good["tokenizer.vocab"])
    del vocab["Ġt"]
    with pytest.raises(ModelFileError):
        Tokenizer.from_metadata({**good, "tokenizer.vocab": json.dumps(vocab)})
    for stray in (" t", "中", "\x00t"):  # a raw space, a non-Latin-1 character, a byte the table shifts
        vocab = json.loads(good["tokenizer.vocab"])
        vocab[stray] = vocab.pop("Ġt")
        with pytest.raises(ModelFileError, match="not a byte-level token"):
            Tokenizer.from_metadata({**good, "tokenizer.vocab": json.dumps(vocab)})
    merges = json.loads(good["tokenizer.merges"])
    for bad_rule in ("Ġ t h", "Ġt", "Ġ  t"):  # the table of rules is built on first use; the check is not
        with pytest.raises(ModelFileError, match="two symbols joined by one space"):
            Tokenizer.from_metadata({**good, "tokenizer.merges": json.dumps(merges[:7] + [bad_rule] + merges[7:])})
