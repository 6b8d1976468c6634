"""Import Hugging Face BitNet safetensors (BitNet b1.58 2B4T naming) into a ModelGraph.

Names: `model.embed_tokens.weight`, `model.layers.N.input_layernorm.weight`,
`model.layers.N.self_attn.{q,k,v,o}_proj.weight`, `model.layers.N.self_attn.attn_sub_norm.weight`,
`model.layers.N.post_attention_layernorm.weight`, `model.layers.N.mlp.{gate,up,down}_proj.weight`,
`model.layers.N.mlp.ffn_sub_norm.weight`, `model.norm.weight`, `lm_head.weight` (absent = tied).
The 1bitLLM spellings `self_attn.inner_attn_ln` and `mlp.ffn_layernorm` are accepted for the sub-norms.

The config comes from `config.json` beside the file (HF keys: hidden_size, intermediate_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size, rms_norm_eps, rope_theta,
max_position_embeddings, hidden_act, tie_word_embeddings, head_dim) or is passed in (a dict of those
keys, or a ModelConfig).

BitLinear weights:
- full precision (F32/F16/BF16): quantized on load (exact when already `{-s, 0, +s}`);
- packed ternary as the 2B4T release stores them: uint8 `[M/4, K]`; row `i*M/4 + r` of the ternary
  matrix is bits `2i..2i+1` of packed row r, value = code - 1; plus `<proj>.weight_scale`, which HF
  divides by (`y = y_int / (x_scale * weight_scale)`), so ternkit's scale is `1 / weight_scale`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from safetensors import deserialize

from ternkit.errors import TernkitError
from ternkit.graph.config import AttentionConfig, FFNConfig, LayerConfig, ModelConfig
from ternkit.graph.importers.common import CheckpointError, ParamSet, bf16_to_f32, finish, unexpected_error
from ternkit.graph.modelgraph import ROLES, ModelGraph

_ACT = {"relu2": "relu2", "silu": "swiglu", "swiglu": "swiglu"}
_GLOBAL = {"model.embed_tokens": "embed", "model.norm": "final_norm", "lm_head": "lm_head"}
_LAYER = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn.q_proj", "self_attn.k_proj": "attn.k_proj",
    "self_attn.v_proj": "attn.v_proj", "self_attn.o_proj": "attn.o_proj", "self_attn.attn_sub_norm": "attn.sub_norm",
    "self_attn.inner_attn_ln": "attn.sub_norm", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn.gate_proj", "mlp.up_proj": "ffn.up_proj", "mlp.down_proj": "ffn.down_proj",
    "mlp.ffn_sub_norm": "ffn.sub_norm", "mlp.ffn_layernorm": "ffn.sub_norm",
}
_PROJ = {f"{role}_proj" for role in ROLES}
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|weight_scale)$")
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "U8": np.uint8, "I8": np.int8,
           "I32": np.int32, "I64": np.int64}


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as numpy (BF16 widened to float32)."""
    try:
        entries = deserialize(path.read_bytes())
    except Exception as exc:  # the Rust core raises its own error type
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    out = {}
    for name, info in entries:
        dtype, shape, data = info["dtype"], info["shape"], info["data"]
        if dtype == "BF16":
            arr = bf16_to_f32(np.frombuffer(data, dtype=np.uint16))
        elif dtype in _DTYPES:
            arr = np.frombuffer(data, dtype=_DTYPES[dtype])
        else:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        out[name] = arr.reshape(shape)
    return out


def _hf_config(path: Path, config) -> tuple[ModelConfig, bool]:
    """(ModelConfig, whether tie_word_embeddings was stated)."""
    if isinstance(config, ModelConfig):
        return config, True
    if config is None:
        cfg_path = path.with_name("config.json")
        if not cfg_path.is_file():
            raise CheckpointError(f"{path}: no config.json beside it: put the model's Hugging Face config.json "
                                  "next to the file or pass a config")
        try:
            config = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from None
    missing = [k for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                           "vocab_size") if k not in config]
    if missing:
        raise CheckpointError(f"{path}: config lacks {', '.join(missing)}")
    act = config.get("hidden_act", "relu2")
    if act not in _ACT:
        raise CheckpointError(f"{path}: hidden_act {act!r} is not supported (use one of {', '.join(_ACT)})")
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    att = AttentionConfig(heads, int(config.get("num_key_value_heads") or heads),
                          int(config.get("head_dim") or hidden // heads))
    layer = LayerConfig(att, FFNConfig(int(config["intermediate_size"]), _ACT[act]))
    cfg = ModelConfig(
        name=str(config.get("_name_or_path") or path.stem).rstrip("/").split("/")[-1] or path.stem,
        vocab_size=int(config["vocab_size"]), hidden=hidden, layers=(layer,) * int(config["num_hidden_layers"]),
        norm_eps=float(config.get("rms_norm_eps", 1e-5)), rope_theta=float(config.get("rope_theta", 10000.0)),
        max_seq=int(config.get("max_position_embeddings", 2048)),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        description=f"imported from {path.name}",
    )
    return cfg, "tie_word_embeddings" in config


def _target(name: str) -> tuple[str, str] | None:
    """HF tensor name -> (ternkit node, suffix) or None when unknown."""
    stem, _, kind = name.rpartition(".")
    if stem in _GLOBAL and kind == "weight":
        return _GLOBAL[stem], kind
    m = _LAYER_RE.match(name)
    if m and m.group(2) in _LAYER:
        is_proj = m.group(2).rpartition(".")[2] in _PROJ
        if m.group(3) == "weight" or is_proj:
            return f"layers.{m.group(1)}.{_LAYER[m.group(2)]}", m.group(3)
    return None


def unpack_hf_ternary(packed: np.ndarray) -> np.ndarray:
    """uint8 [M/4, K] (2B4T packing) -> int8 [M, K] in {-1, 0, +1}."""
    parts = [((packed >> (2 * i)) & 3) for i in range(4)]
    codes = np.concatenate(parts, axis=0)
    if np.any(codes == 3):
        raise CheckpointError("packed ternary weight holds code 3, which is not a ternary value")
    return codes.astype(np.int8) - 1


def load_safetensors(path: str | Path, config: ModelConfig | dict | None = None) -> ModelGraph:
    path = Path(path)
    if not path.is_file():
        raise TernkitError(f"{path}: no such safetensors file")
    tensors = read_tensors(path)
    cfg, tie_stated = _hf_config(path, config)
    unknown = [n for n in tensors if _target(n) is None]
    if unknown:
        raise unexpected_error(path, unknown, [
            "model.embed_tokens.weight", "model.layers.N.{input_layernorm,post_attention_layernorm}.weight",
            "model.layers.N.self_attn.{q,k,v,o}_proj.weight[_scale]", "model.layers.N.self_attn.attn_sub_norm.weight",
            "model.layers.N.mlp.{gate,up,down}_proj.weight[_scale]", "model.layers.N.mlp.ffn_sub_norm.weight",
            "model.norm.weight", "lm_head.weight"])
    if not tie_stated and "lm_head.weight" not in tensors:
        cfg = replace(cfg, tie_embeddings=True)
    has_sub = any(".attn_sub_norm." in n or ".inner_attn_ln." in n for n in tensors)
    if cfg.subln != has_sub:
        cfg = replace(cfg, subln=has_sub)
    ps = ParamSet()
    for name, arr in tensors.items():
        node, kind = _target(name)
        if kind == "weight_scale":
            continue
        if node.rpartition(".")[2] in _PROJ:
            _bitlinear(path, name, node, arr, tensors.get(name + "_scale"), ps)
        elif node == "lm_head" and cfg.tie_embeddings:
            continue
        else:
            ps.params[f"{node}.weight"] = np.ascontiguousarray(arr, dtype=np.float32)
    return finish(path, cfg, ps)


def _bitlinear(path: Path, name: str, node: str, arr: np.ndarray, scale: np.ndarray | None, ps: ParamSet) -> None:
    if arr.dtype == np.uint8:
        if scale is None:
            raise CheckpointError(f"{path}: packed ternary {name} has no {name}_scale tensor beside it")
        inv = float(np.asarray(scale, dtype=np.float32).reshape(-1)[0])
        if not inv > 0:
            raise CheckpointError(f"{path}: {name}_scale must be positive, got {inv}")
        ps.add_ternary(node, unpack_hf_ternary(arr), 1.0 / inv)
    else:
        w = arr.astype(np.float32)
        if scale is not None:  # a float weight with an HF-style inverse scale beside it
            w = w / np.float32(np.asarray(scale, dtype=np.float32).reshape(-1)[0])
        ps.add_float_matrix(node, w)
