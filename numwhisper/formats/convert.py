"""Conversions between CTranslate2, Hugging Face, PaddleX and numwhisper's canonical model file.

Every rename and transpose lives in the one table below, ``WEIGHT_TABLE``. Each row maps an
OpenAI state-dict name to its CTranslate2 variable (with the slice of a fused projection it
occupies) and its Hugging Face name, and says whether Paddle stores it transposed (Paddle
``Linear.weight`` is ``[in, out]``, OpenAI's is ``[out, in]``). openai-whisper ``.pt`` and
whisper.cpp files use OpenAI's names themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from ..dims import ModelDims
from ..errors import ModelFileError
from ..languages import n_languages, whisper_added_tokens
from .checkpoint import Checkpoint, expected_shapes, make_metadata, validate_tensors
from .names import default_alignment_heads


@dataclass(frozen=True)
class WeightRule:
    """Where one OpenAI tensor lives in the other formats."""

    ct2: str                 # CTranslate2 variable, "{layer}" stands for encoder/layer_N or decoder/layer_N
    hf: str                  # Hugging Face tensor, "{layer}" stands for model.encoder.layers.N or model.decoder.layers.N
    part: tuple = (0, 1)     # (index, count): slice ``index`` of ``count`` equal row blocks of a fused tensor
    paddle_transposed: bool = False


def _attention_rules(ct2_scope: str, hf_scope: str, fused_qkv: bool) -> dict:
    """Self-attention fuses q/k/v in CT2 (linear_0, out = linear_1); cross-attention keeps q
    (linear_0) apart and fuses k/v (linear_1, out = linear_2). Whisper's key has no bias.
    Hugging Face keeps the four projections apart (q_proj, k_proj, v_proj, out_proj)."""
    if fused_qkv:
        qkv, out = f"{ct2_scope}/linear_0", f"{ct2_scope}/linear_1"
        q, k, v = ((qkv, (0, 3)), (qkv, (1, 3)), (qkv, (2, 3)))
    else:
        kv, out = f"{ct2_scope}/linear_1", f"{ct2_scope}/linear_2"
        q, k, v = ((f"{ct2_scope}/linear_0", (0, 1)), (kv, (0, 2)), (kv, (1, 2)))
    return {
        "query.weight": WeightRule(f"{q[0]}/weight", f"{hf_scope}.q_proj.weight", q[1], True),
        "query.bias": WeightRule(f"{q[0]}/bias", f"{hf_scope}.q_proj.bias", q[1]),
        "key.weight": WeightRule(f"{k[0]}/weight", f"{hf_scope}.k_proj.weight", k[1], True),
        "value.weight": WeightRule(f"{v[0]}/weight", f"{hf_scope}.v_proj.weight", v[1], True),
        "value.bias": WeightRule(f"{v[0]}/bias", f"{hf_scope}.v_proj.bias", v[1]),
        "out.weight": WeightRule(f"{out}/weight", f"{hf_scope}.out_proj.weight", (0, 1), True),
        "out.bias": WeightRule(f"{out}/bias", f"{hf_scope}.out_proj.bias"),
    }


def _layer_norm_rules(ct2_scope: str, hf_scope: str) -> dict:
    return {"weight": WeightRule(f"{ct2_scope}/gamma", f"{hf_scope}.weight"),
            "bias": WeightRule(f"{ct2_scope}/beta", f"{hf_scope}.bias")}


def _linear_rules(ct2_scope: str, hf_scope: str) -> dict:
    return {"weight": WeightRule(f"{ct2_scope}/weight", f"{hf_scope}.weight", paddle_transposed=True),
            "bias": WeightRule(f"{ct2_scope}/bias", f"{hf_scope}.bias")}


def _block_rules(cross_attention: bool) -> dict:
    groups = {
        "attn": _attention_rules("{layer}/self_attention", "{layer}.self_attn", fused_qkv=True),
        "attn_ln": _layer_norm_rules("{layer}/self_attention/layer_norm", "{layer}.self_attn_layer_norm"),
        "mlp.0": _linear_rules("{layer}/ffn/linear_0", "{layer}.fc1"),
        "mlp.2": _linear_rules("{layer}/ffn/linear_1", "{layer}.fc2"),
        "mlp_ln": _layer_norm_rules("{layer}/ffn/layer_norm", "{layer}.final_layer_norm"),
    }
    if cross_attention:
        groups["cross_attn"] = _attention_rules("{layer}/attention", "{layer}.encoder_attn", fused_qkv=False)
        groups["cross_attn_ln"] = _layer_norm_rules("{layer}/attention/layer_norm", "{layer}.encoder_attn_layer_norm")
    return {f"{group}.{leaf}": rule for group, leaves in groups.items() for leaf, rule in leaves.items()}


# OpenAI name (with "blocks.N" written "blocks.*") -> rule.
WEIGHT_TABLE = {
    "encoder.conv1.weight": WeightRule("encoder/conv1/weight", "model.encoder.conv1.weight"),
    "encoder.conv1.bias": WeightRule("encoder/conv1/bias", "model.encoder.conv1.bias"),
    "encoder.conv2.weight": WeightRule("encoder/conv2/weight", "model.encoder.conv2.weight"),
    "encoder.conv2.bias": WeightRule("encoder/conv2/bias", "model.encoder.conv2.bias"),
    "encoder.positional_embedding": WeightRule("encoder/position_encodings/encodings",
                                               "model.encoder.embed_positions.weight"),
    **{f"encoder.blocks.*.{k}": v for k, v in _block_rules(cross_attention=False).items()},
    "encoder.ln_post.weight": WeightRule("encoder/layer_norm/gamma", "model.encoder.layer_norm.weight"),
    "encoder.ln_post.bias": WeightRule("encoder/layer_norm/beta", "model.encoder.layer_norm.bias"),
    "decoder.token_embedding.weight": WeightRule("decoder/embeddings/weight", "model.decoder.embed_tokens.weight"),
    "decoder.positional_embedding": WeightRule("decoder/position_encodings/encodings",
                                               "model.decoder.embed_positions.weight"),
    **{f"decoder.blocks.*.{k}": v for k, v in _block_rules(cross_attention=True).items()},
    "decoder.ln.weight": WeightRule("decoder/layer_norm/gamma", "model.decoder.layer_norm.weight"),
    "decoder.ln.bias": WeightRule("decoder/layer_norm/beta", "model.decoder.layer_norm.bias"),
}

_BLOCK = re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.")


def table_key(name: str) -> str:
    """The ``WEIGHT_TABLE`` row of an OpenAI tensor name ("decoder.blocks.3.x" -> "decoder.blocks.*.x")."""
    return _BLOCK.sub(r"\1.blocks.*.", name)


def rule_for(name: str) -> tuple:
    """(rule, CT2 layer scope) for an OpenAI tensor name."""
    match = _BLOCK.match(name)
    scope = f"{match.group(1)}/layer_{match.group(2)}" if match else ""
    return WEIGHT_TABLE[table_key(name)], scope


def hf_tensor_name(name: str) -> str:
    """The Hugging Face name (``WhisperForConditionalGeneration``'s) of an OpenAI tensor name."""
    match = _BLOCK.match(name)
    layer = f"model.{match.group(1)}.layers.{match.group(2)}" if match else ""
    return WEIGHT_TABLE[table_key(name)].hf.format(layer=layer)


# ---------------------------------------------------------------- CTranslate2 -> canonical

def _ct2_scalar(variables: dict, name: str, where: str) -> int:
    if name not in variables:
        raise ModelFileError(f"{where}: variable {name} is missing")
    return int(np.asarray(variables[name]).reshape(()))


def _ct2_dims(variables: dict, where: str) -> ModelDims:
    def shape(name):
        if name not in variables:
            raise ModelFileError(f"{where}: variable {name} is missing")
        return variables[name].shape

    def count_layers(side):
        return len({m.group(1) for k in variables for m in [re.match(rf"{side}/layer_(\d+)/", k)] if m})

    conv1, audio_pos = shape("encoder/conv1/weight"), shape("encoder/position_encodings/encodings")
    embed, text_pos = shape("decoder/embeddings/weight"), shape("decoder/position_encodings/encodings")
    return ModelDims.from_dict({
        "n_mels": conv1[1], "n_audio_ctx": audio_pos[0], "n_audio_state": audio_pos[1],
        "n_audio_head": _ct2_scalar(variables, "encoder/num_heads", where),
        "n_audio_layer": count_layers("encoder"), "n_vocab": embed[0],
        "n_text_ctx": text_pos[0], "n_text_state": text_pos[1],
        "n_text_head": _ct2_scalar(variables, "decoder/num_heads", where),
        "n_text_layer": count_layers("decoder"),
    }, where=f"{where}: dims")


def _ct2_tensor(variables: dict, name: str, where: str) -> np.ndarray:
    rule, layer = rule_for(name)
    source = rule.ct2.format(layer=layer)
    if source not in variables:
        raise ModelFileError(f"{where}: variable {source} (for {name}) is missing")
    fused = variables[source]
    index, count = rule.part
    if fused.shape[0] % count:
        raise ModelFileError(f"{where}: variable {source} has shape {list(fused.shape)}, not {count} fused parts")
    rows = fused.shape[0] // count
    return fused[index * rows:(index + 1) * rows]


def _check_key_bias_is_zero(variables: dict, dims: ModelDims, where: str) -> None:
    """CT2 stores a bias slot for the fused key projection; Whisper's key has none, so it must be zero."""
    for side, n_layers in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(n_layers):
            slots = [("self_attention/linear_0/bias", 1, 3)] + ([("attention/linear_1/bias", 0, 2)] if side == "decoder" else [])
            for suffix, index, count in slots:
                bias = variables[f"{side}/layer_{i}/{suffix}"]
                n = bias.shape[0] // count
                if np.any(bias[index * n:(index + 1) * n] != 0):
                    raise ModelFileError(f"{where}: {side}/layer_{i}/{suffix} has a non-zero key bias")


def tokenizer_from_hf_json(tokenizer: dict, where: str) -> tuple:
    """(vocab, merges, added_tokens) from a Hugging Face ``tokenizer.json`` dict."""
    try:
        model = tokenizer["model"]
        vocab, merges = model["vocab"], model["merges"]
        added = {t["content"]: int(t["id"]) for t in tokenizer["added_tokens"]}
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"{where}: tokenizer.json lacks {err}") from None
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return dict(vocab), merges, added


def ct2_to_checkpoint(variables: dict, config: dict, tokenizer: dict, source: str) -> Checkpoint:
    """Build a canonical checkpoint from a parsed CTranslate2 Whisper model (tensors keep their dtype)."""
    where = source
    dims = _ct2_dims(variables, where)
    _check_key_bias_is_zero(variables, dims, where)
    tensors = {name: _ct2_tensor(variables, name, where) for name in expected_shapes(dims)}
    validate_tensors(tensors, dims, where)
    vocab, merges, added = tokenizer_from_hf_json(tokenizer, where)
    heads = config.get("alignment_heads") or default_alignment_heads(dims)
    metadata = make_metadata(dims, heads, vocab, merges, added, source)
    return Checkpoint(tensors=tensors, dims=dims, metadata=metadata)


# ---------------------------------------------------------------- Paddle <-> canonical

def to_paddle_state(checkpoint: Checkpoint, dtype=np.float32) -> dict:
    """OpenAI-named tensors in Paddle's layout (Linear weights transposed to [in, out])."""
    state = {}
    for name, tensor in checkpoint.tensors.items():
        rule, _ = rule_for(name)
        array = tensor.T if rule.paddle_transposed else tensor
        state[name] = np.ascontiguousarray(array, dtype=dtype)
    return state


def from_paddle_state(state: dict, dims: ModelDims, where: str, dtype=None) -> dict:
    """Paddle-layout tensors -> canonical layout; ``dtype`` None keeps each tensor's dtype."""
    tensors = {}
    for name in expected_shapes(dims):
        if name not in state:
            raise ModelFileError(f"{where}: tensor {name} is missing")
        array = np.asarray(state[name])
        if array.dtype.kind != "f":
            raise ModelFileError(f"{where}: tensor {name} has dtype {array.dtype}, expected a float")
        if rule_for(name)[0].paddle_transposed:
            if array.ndim != 2:
                raise ModelFileError(f"{where}: tensor {name} has shape {list(array.shape)}, expected 2-D")
            array = array.T
        tensors[name] = np.ascontiguousarray(array if dtype is None else _exact_cast(array, dtype, name, where))
    validate_tensors(tensors, dims, where)
    return tensors


def _exact_cast(array: np.ndarray, dtype, name: str, where: str) -> np.ndarray:
    """Cast, refusing a cast that changes any value (so float16 output stays lossless)."""
    cast = array.astype(dtype)
    if not np.array_equal(cast.astype(array.dtype), array, equal_nan=True):
        raise ModelFileError(f"{where}: tensor {name} is not exactly representable as {np.dtype(dtype).name}")
    return cast


def hf_vocab_files(checkpoint: Checkpoint) -> tuple:
    """(vocab.json dict, merges.txt text) for PaddleX's GPTTokenizer.

    PaddleX needs <|endoftext|> inside vocab.json and a ``#version`` header on merges.txt (its
    reader drops the first line), otherwise every special id shifts by one.
    """
    vocab = json.loads(checkpoint.metadata["tokenizer.vocab"])
    merges = json.loads(checkpoint.metadata["tokenizer.merges"])
    return vocab, "#version: 0.2\n" + "".join(m + "\n" for m in merges)


def tokenizer_from_vocab_files(vocab: dict, merges_text: str, where: str, n_vocab: int) -> tuple:
    """(vocab, merges, added_tokens) from PaddleX's vocab.json and merges.txt, for a model of
    ``n_vocab`` entries (whose language tokens number 99 or 100)."""
    lines = merges_text.splitlines()
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = [line for line in lines if line]
    if "<|endoftext|>" not in vocab:
        raise ModelFileError(f"{where}: vocab.json has no <|endoftext|>")
    return vocab, merges, whisper_added_tokens(int(vocab["<|endoftext|>"]), n_languages(n_vocab))
