"""Hugging Face Whisper folders against transformers itself.

Run with the bench environment (torch + transformers):

    /work/benchenv/bin/python bench/formats_hf.py check     # base and tiny.en, see check()
    /work/benchenv/bin/python bench/formats_hf.py fixture   # rewrite tests/data/formats/hf_tiny/

``check``: (a) a ``WhisperForConditionalGeneration`` holding our canonical tensors is written by
transformers' ``save_pretrained`` (with a ``WhisperTokenizer`` of our vocabulary) and read back with
``read_hf_dir``: every tensor bit-identical, the metadata equal. (b) transformers'
``from_pretrained`` loads that folder (no missing or unexpected weight) and greedy ``generate`` on
golden/audio/en_jfk.wav (no timestamps) gives the text numwhisper's greedy decoding gives on the same
folder.

``fixture``: a random ``WhisperForConditionalGeneration`` of tiny dims (d_model 8, 2 + 2 layers, a
260-token BPE vocabulary plus Whisper's special and timestamp tokens) saved by ``save_pretrained``
in float16 with its tokenizer, and ``hf_tiny_expected.npz`` beside it: transformers' float32
logits for a fixed mel and token prefix, and its encoding of a fixed text, for
tests/test_format_hf.py to compare numwhisper against.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from numwhisper.formats import checkpoint  # noqa: E402
from numwhisper.formats.convert import hf_tensor_name  # noqa: E402
from numwhisper.formats.hf import read_hf_dir  # noqa: E402
from numwhisper.languages import LANGUAGES  # noqa: E402
from numwhisper.tokenizer import N_TIMESTAMPS, Tokenizer, bytes_to_unicode  # noqa: E402

MODELS = {"base": Path("/work/models/base.safetensors"), "tiny.en": Path("/work/models/tiny.en.safetensors")}
AUDIO = REPO / "golden" / "audio" / "en_jfk.wav"
FIXTURE = REPO / "tests" / "data" / "formats" / "hf_tiny"
FIXTURE_EXPECTED = FIXTURE.parent / "hf_tiny_expected.npz"
FIXTURE_TEXT = " the thin hen in the tin"
FIXTURE_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n")]


# ---------------------------------------------------------------- building a transformers model

def whisper_config(dims, eot: int, sot: int):
    """A WhisperConfig of these dims (one d_model: numwhisper's dims must agree)."""
    from transformers import WhisperConfig

    assert dims.n_audio_state == dims.n_text_state
    return WhisperConfig(
        vocab_size=dims.n_vocab, num_mel_bins=dims.n_mels, d_model=dims.n_audio_state,
        encoder_layers=dims.n_audio_layer, encoder_attention_heads=dims.n_audio_head,
        decoder_layers=dims.n_text_layer, decoder_attention_heads=dims.n_text_head,
        encoder_ffn_dim=4 * dims.n_audio_state, decoder_ffn_dim=4 * dims.n_text_state,
        max_source_positions=dims.n_audio_ctx, max_target_positions=dims.n_text_ctx,
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        begin_suppress_tokens=[220, eot],
    )


def fill_generation_config(generation, tokenizer: Tokenizer, heads: list, max_length: int, languages: bool) -> None:
    """What WhisperForConditionalGeneration.generate needs to know about the vocabulary.

    A config marked ``_from_model_config`` drops these fields when it is read back, so it is unmarked.
    ``languages``: whether to list the language and task tokens, as the Hub's multilingual models do
    (given them, generate detects a language even for an English-only model)."""
    generation._from_model_config = False
    generation.alignment_heads = heads
    generation.is_multilingual = tokenizer.is_multilingual
    if languages:
        generation.lang_to_id = {f"<|{code}|>": tokenizer.sot + 1 + i for i, code in enumerate(tokenizer.all_language_codes)}
        generation.task_to_id = {"translate": tokenizer.translate, "transcribe": tokenizer.transcribe}
    generation.no_timestamps_token_id = tokenizer.no_timestamps
    generation.prev_sot_token_id = tokenizer.sot_prev
    generation.decoder_start_token_id = tokenizer.sot
    generation.suppress_tokens = list(tokenizer.non_speech_tokens)
    generation.begin_suppress_tokens = [tokenizer.encode(" ")[0], tokenizer.eot]
    generation.max_initial_timestamp_index = 50
    generation.max_length = max_length  # the text context (transformers' default is 20 tokens)


def hf_tokenizer(vocab: dict, merges: list, added: dict):
    """A transformers WhisperTokenizer of our vocabulary, special tokens and timestamps added in id order."""
    from transformers import WhisperTokenizer

    pairs = [tuple(m.split(" ")) for m in merges]
    tok = WhisperTokenizer(vocab=dict(vocab), merges=pairs)
    eot = added["<|endoftext|>"]
    specials = [text for text, i in sorted(added.items(), key=lambda kv: kv[1]) if i > eot]
    tok.add_tokens(specials, special_tokens=True)
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)], special_tokens=False)
    return tok


def model_from_checkpoint(ckpt):
    """A WhisperForConditionalGeneration holding the checkpoint's tensors in their own dtype."""
    from transformers import WhisperForConditionalGeneration

    tokenizer = Tokenizer.from_metadata(ckpt.metadata)
    model = WhisperForConditionalGeneration(whisper_config(ckpt.dims, tokenizer.eot, tokenizer.sot))
    dtype = {np.dtype("float16"): torch.float16, np.dtype("float32"): torch.float32}[ckpt.tensors["decoder.ln.bias"].dtype]
    model.to(dtype)
    state = {hf_tensor_name(name): torch.from_numpy(np.array(tensor)) for name, tensor in ckpt.tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"proj_out.weight"}, (missing, unexpected)
    model.tie_weights()
    fill_generation_config(model.generation_config, tokenizer, ckpt.alignment_heads, ckpt.dims.n_text_ctx,
                           languages=tokenizer.is_multilingual)
    return model, tokenizer


# ---------------------------------------------------------------- check: base and tiny.en

def compare(ckpt, back) -> dict:
    """Tensors bit for bit (and dtype), metadata key by key (all but ``source``)."""
    assert set(back.tensors) == set(ckpt.tensors)
    worst = 0.0
    for name, tensor in ckpt.tensors.items():
        got = back.tensors[name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape, name
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - tensor.astype(np.float64)))))
        assert np.array_equal(got.view(np.uint8), np.ascontiguousarray(tensor).view(np.uint8)), name
    differing = [k for k in ckpt.metadata if k != "source" and ckpt.metadata[k] != back.metadata[k]]
    return {"tensors": len(ckpt.tensors), "max_abs_diff": worst, "metadata_differing": differing}


def hf_transcribe(folder: Path, multilingual: bool, our_mel: bool = False) -> str:
    """transformers' own greedy transcription of en_jfk.wav from the folder (float32), on its
    feature extractor's log-mel or (``our_mel``) on numwhisper's, which pads the clip differently."""
    import soundfile
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer

    model, info = WhisperForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    assert not problems, problems
    tok = WhisperTokenizer.from_pretrained(folder)
    audio, rate = soundfile.read(AUDIO, dtype="float32")
    features = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)(
        audio, sampling_rate=rate, return_tensors="pt").input_features  # [1, n_mels, 3000]
    if our_mel:
        from numwhisper.mel import N_FRAMES, log_mel_spectrogram, pad_or_trim
        mel = pad_or_trim(log_mel_spectrogram(audio, model.config.num_mel_bins), N_FRAMES)  # [n_mels, 3000]
        features = torch.from_numpy(np.ascontiguousarray(mel))[None]
    options = {"language": "en", "task": "transcribe"} if multilingual else {}
    with torch.no_grad():
        ids = model.generate(features, num_beams=1, do_sample=False, **options)
    return tok.decode(ids[0], skip_special_tokens=True).strip()


def our_transcribe(folder: Path, multilingual: bool) -> dict:
    """numwhisper's transcriptions of en_jfk.wav from the checkpoint read_hf_dir makes of the folder:
    greedy without timestamps (as the transformers run) and with numwhisper's defaults (beam 5, timestamps)."""
    from numwhisper.devices import resolve_device
    from numwhisper.transcription import WhisperModel

    model = WhisperModel.from_checkpoint(read_hf_dir(folder), resolve_device("cpu"))
    language = {"language": "en"} if multilingual else {}
    greedy = model.transcribe(str(AUDIO), beam_size=None, without_timestamps=True, **language)
    default = model.transcribe(str(AUDIO), **language)
    return {"greedy": greedy["result"]["text"].strip(), "default": default["result"]["text"].strip()}


def check() -> None:
    for name, path in MODELS.items():
        ckpt = checkpoint.load(path)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / name
            model, tokenizer = model_from_checkpoint(ckpt)
            model.save_pretrained(folder)
            vocab, merges, added = (json.loads(ckpt.metadata[f"tokenizer.{k}"]) for k in ("vocab", "merges", "added_tokens"))
            hf_tokenizer(vocab, merges, added).save_pretrained(folder)
            files = sorted(p.name for p in folder.iterdir())
            back = read_hf_dir(folder)
            result = {"model": name, "files": files, **compare(ckpt, back)}
            result["transformers_text"] = hf_transcribe(folder, tokenizer.is_multilingual)
            result["transformers_text_on_our_mel"] = hf_transcribe(folder, tokenizer.is_multilingual, our_mel=True)
            ours = our_transcribe(folder, tokenizer.is_multilingual)
            result["numwhisper_greedy_text"], result["numwhisper_default_text"] = ours["greedy"], ours["default"]
            result["same_text"] = result["transformers_text"] == ours["greedy"]
            result["same_text_on_our_mel"] = result["transformers_text_on_our_mel"] == ours["greedy"]
            print(json.dumps(result, ensure_ascii=False), flush=True)


# ---------------------------------------------------------------- fixture

def fixture_mel(n_mels: int, n_frames: int) -> np.ndarray:
    """A fixed, smooth log-mel-like input [n_mels, n_frames] (a formula, so the test rebuilds it)."""
    m = np.arange(n_mels, dtype=np.float64)[:, None]
    t = np.arange(n_frames, dtype=np.float64)[None, :]
    return (0.5 * np.sin(0.013 * t * (1 + m / 7)) + 0.25 * np.cos(0.5 * m + 0.002 * t)).astype(np.float32)  # [n_mels, T]


def fixture_vocab() -> tuple:
    """(vocab, merges, added tokens) of a 260-token byte-level BPE vocabulary with Whisper's specials."""
    from numwhisper.languages import whisper_added_tokens

    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    for left, right in FIXTURE_MERGES:
        vocab[left + right] = len(vocab)
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot
    return vocab, [" ".join(m) for m in FIXTURE_MERGES], whisper_added_tokens(eot, len(LANGUAGES))


def fixture() -> None:
    """Write tests/data/formats/hf_tiny/ (save_pretrained, float16) and its expected outputs."""
    from transformers import WhisperForConditionalGeneration

    vocab, merges, added = fixture_vocab()
    tok = hf_tokenizer(vocab, merges, added)
    n_vocab = len(tok)
    eot = added["<|endoftext|>"]
    from numwhisper.dims import ModelDims
    dims = ModelDims(n_mels=80, n_audio_ctx=1500, n_audio_state=8, n_audio_head=2, n_audio_layer=2,
                     n_vocab=n_vocab, n_text_ctx=32, n_text_state=8, n_text_head=2, n_text_layer=2)
    torch.manual_seed(20)
    model = WhisperForConditionalGeneration(whisper_config(dims, eot, eot + 1))
    with torch.no_grad():  # larger-than-default random weights, so that every tensor matters to the logits
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    model = model.half()
    ours = Tokenizer(vocab, merges, added)
    fill_generation_config(model.generation_config, ours, [[1, 0], [1, 1]], dims.n_text_ctx, languages=True)
    if FIXTURE.exists():
        shutil.rmtree(FIXTURE)
    model.save_pretrained(FIXTURE)
    tok.save_pretrained(FIXTURE)
    for extra in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        (FIXTURE / extra).unlink(missing_ok=True)  # transformers' settings, not read by numwhisper
    for path in FIXTURE.iterdir():
        path.chmod(0o644)

    reference = model.float().eval()
    mel = torch.from_numpy(fixture_mel(dims.n_mels, 2 * dims.n_audio_ctx))[None]  # [1, n_mels, 3000]
    prefix = [ours.sot, ours.sot + 1 + list(LANGUAGES).index("yue"), ours.transcribe, *ours.encode(FIXTURE_TEXT)]
    with torch.no_grad():
        features = reference.model.encoder(mel).last_hidden_state  # [1, 1500, d]
        logits = reference(encoder_outputs=(features,), decoder_input_ids=torch.tensor([prefix])).logits  # [1, T, V]
    np.savez_compressed(
        FIXTURE_EXPECTED,
        prefix=np.array(prefix, np.int64),
        text_ids=np.array(tok.encode(FIXTURE_TEXT, add_special_tokens=False), np.int64),
        features_head=features[0, :4].numpy(),  # [4, d]
        logits_tail=logits[0, -3:].numpy(),  # [3, V]: the last positions, which see every token before them
    )
    sizes = {p.name: p.stat().st_size for p in sorted(FIXTURE.iterdir())}
    print(json.dumps({"fixture": str(FIXTURE), "files": sizes, "expected_bytes": FIXTURE_EXPECTED.stat().st_size,
                      "prefix": prefix, "text_ids": tok.encode(FIXTURE_TEXT, add_special_tokens=False)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("check", "fixture"))
    args = parser.parse_args()
    {"check": check, "fixture": fixture}[args.what]()


if __name__ == "__main__":
    main()
