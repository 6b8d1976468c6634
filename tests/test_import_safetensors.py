"""Hugging Face BitNet safetensors import: small real files written with the safetensors library."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file

from ternkit.errors import TernkitError
from ternkit.graph import build_graph, init_params, load_model
from ternkit.graph.importers.safetensors import load_safetensors, unpack_hf_ternary
from ternkit.reference import forward, quantize_weights
from tests.test_import_gguf import small_config, ternary_source

HF = {"attn_norm": "input_layernorm", "attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj",
      "attn.v_proj": "self_attn.v_proj", "attn.o_proj": "self_attn.o_proj", "attn.sub_norm": "self_attn.attn_sub_norm",
      "ffn_norm": "post_attention_layernorm", "ffn.gate_proj": "mlp.gate_proj", "ffn.up_proj": "mlp.up_proj",
      "ffn.down_proj": "mlp.down_proj", "ffn.sub_norm": "mlp.ffn_sub_norm"}


def hf_name(node: str) -> str:
    if node.startswith("layers."):
        _, i, rest = node.split(".", 2)
        return f"model.layers.{i}.{HF[rest]}"
    return {"embed": "model.embed_tokens", "final_norm": "model.norm", "lm_head": "lm_head"}[node]


def hf_config(cfg, **extra) -> dict:
    a, f = cfg.layers[0].attention, cfg.layers[0].ffn
    return {"architectures": ["BitNetForCausalLM"], "hidden_size": cfg.hidden, "intermediate_size": f.hidden,
            "num_hidden_layers": cfg.n_layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
            "vocab_size": cfg.vocab_size, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "max_position_embeddings": cfg.max_seq, "hidden_act": "relu2",
            "tie_word_embeddings": cfg.tie_embeddings, **extra}


def pack_hf(w_q: np.ndarray) -> np.ndarray:
    """Test-side packer written from the documented 2B4T layout: row block i -> bits 2i..2i+1."""
    codes = (w_q + 1).astype(np.uint8)
    rows = codes.shape[0] // 4
    out = np.zeros((rows, codes.shape[1]), np.uint8)
    for i in range(4):
        out |= codes[i * rows:(i + 1) * rows] << (2 * i)
    return out


def write_hf(path, model, packed: bool, bf16: bool = False, config: dict | None = None, rename=None):
    tensors = {}
    p = model.params
    for node in model.nodes():
        if f"{node}.weight_q" in p:
            w_q, s = p[f"{node}.weight_q"], float(p[f"{node}.weight_scale"])
            if packed:
                tensors[hf_name(node) + ".weight"] = pack_hf(w_q)
                tensors[hf_name(node) + ".weight_scale"] = np.array([1.0 / s], np.float32)
            else:
                tensors[hf_name(node) + ".weight"] = w_q.astype(np.float32) * np.float32(s)
        elif f"{node}.weight" in p:
            tensors[hf_name(node) + ".weight"] = p[f"{node}.weight"]
    if rename:
        tensors = {rename.get(k, k): v for k, v in tensors.items()}
    if bf16:  # BF16 norms/embeddings, as the 2B4T release stores them
        keep, specs = [], {}
        for k, v in tensors.items():
            buf = np.ascontiguousarray((v.view(np.uint32) >> 16).astype(np.uint16) if v.dtype == np.float32 else v)
            keep.append(buf)
            specs[k] = TensorSpec(dtype="bfloat16" if v.dtype == np.float32 else buf.dtype.name, shape=list(v.shape),
                                  data_ptr=buf.ctypes.data, data_len=buf.nbytes)
        serialize_file(specs, str(path))
    else:
        save_file(tensors, str(path))
    (path.parent / "config.json").write_text(json.dumps(config or hf_config(model.config)))


def test_unpack_matches_packer():
    rng = np.random.default_rng(1)
    w_q = rng.integers(-1, 2, size=(16, 7)).astype(np.int8)
    np.testing.assert_array_equal(unpack_hf_ternary(pack_hf(w_q)), w_q)


@pytest.mark.parametrize("packed", [True, False])
def test_ternary_import_is_exact(tmp_path, packed):
    src = ternary_source(small_config(tie=True))
    path = tmp_path / "model.safetensors"
    write_hf(path, src, packed=packed)
    model = load_model(path)
    assert model.config.tie_embeddings and model.config.n_layers == 2
    for node in src.bitlinears():
        w_q, s = model.quantized_weight(node)
        sq, ss = src.quantized_weight(node)
        np.testing.assert_array_equal(w_q, sq)
        assert s == pytest.approx(ss, rel=1e-6)
    tokens = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    np.testing.assert_allclose(forward(model, tokens), forward(src, tokens), rtol=1e-5, atol=1e-5)


def test_bf16_packed_release_layout(tmp_path):
    """Norms and embeddings in BF16 (widened exactly), ternary weights packed uint8 + scale."""
    src = ternary_source(small_config(tie=True))
    for name, v in src.params.items():
        if name.endswith(".weight_scale"):  # a power of two: 1/s is exact in bf16 too
            src.params[name] = np.float32(2.0 ** np.round(np.log2(v)))
        elif v.dtype == np.float32:  # make them bf16-representable so the import is exact
            src.params[name] = ((v.view(np.uint32) >> 16) << 16).view(np.float32)
    src.set_params(src.params)
    path = tmp_path / "model.safetensors"
    write_hf(path, src, packed=True, bf16=True)
    model = load_safetensors(path)
    np.testing.assert_array_equal(model.params["embed.weight"], src.params["embed.weight"])
    tokens = np.arange(12)
    np.testing.assert_allclose(forward(model, tokens), forward(src, tokens), rtol=1e-5, atol=1e-5)


def test_latent_float_weights_quantize_on_load(tmp_path):
    cfg = small_config(tie=False)
    src = build_graph(cfg)
    src.set_params(init_params(cfg, 5))
    path = tmp_path / "model.safetensors"
    write_hf(path, src, packed=False)
    model = load_safetensors(path)
    node = "layers.1.ffn.down_proj"
    np.testing.assert_array_equal(model.quantized_weight(node)[0], quantize_weights(src.params[f"{node}.weight"])[0])
    np.testing.assert_array_equal(forward(model, np.arange(9)), forward(src, np.arange(9)))


def test_explicit_config_and_errors(tmp_path):
    src = ternary_source(small_config(tie=True))
    path = tmp_path / "model.safetensors"
    write_hf(path, src, packed=True)
    cfg = hf_config(src.config)
    (tmp_path / "config.json").unlink()
    with pytest.raises(TernkitError, match="no config.json beside it"):
        load_safetensors(path)
    assert load_safetensors(path, config=cfg).config.hidden == 256
    with pytest.raises(TernkitError, match="config lacks vocab_size"):
        load_safetensors(path, config={k: v for k, v in cfg.items() if k != "vocab_size"})


def test_unexpected_and_missing_names(tmp_path):
    src = ternary_source(small_config(tie=True))
    path = tmp_path / "model.safetensors"
    write_hf(path, src, packed=True, rename={"model.layers.0.mlp.up_proj.weight": "model.layers.0.mlp.w3.weight"})
    with pytest.raises(TernkitError, match="unexpected tensors, e.g. model.layers.0.mlp.w3.weight; expected only"):
        load_safetensors(path)
    write_hf(path, src, packed=True, rename={"model.norm.weight": "model.layers.0.input_layernorm.weight"})
    with pytest.raises(TernkitError, match="missing 1 tensors.*final_norm.weight"):
        load_safetensors(path)
