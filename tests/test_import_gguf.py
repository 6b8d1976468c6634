"""GGUF import: small real files written with gguf.GGUFWriter, read back, checked against their source."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from ternkit.errors import TernkitError
from ternkit.graph import ModelConfig, build_graph, config_from_dict, init_params, load_model
from ternkit.graph.importers.gguf import I2_S, load_gguf
from ternkit.reference import forward, quantize_weights
from ternkit.reference.quant import bitlinear_q, quantize_activations
from ternkit.runtime.lowered import check_exact, lower_model

BL = {"attn.q_proj": "attn_q", "attn.k_proj": "attn_k", "attn.v_proj": "attn_v", "attn.o_proj": "attn_output",
      "ffn.gate_proj": "ffn_gate", "ffn.up_proj": "ffn_up", "ffn.down_proj": "ffn_down"}
NORMS = {"attn_norm": "attn_norm", "attn.sub_norm": "attn_sub_norm", "ffn_norm": "ffn_norm",
         "ffn.sub_norm": "ffn_sub_norm"}


def small_config(activation: str = "relu2", tie: bool = False) -> ModelConfig:
    # K of every BitLinear is a multiple of 256 (the TQ block); M of each is too, for I2_S blocks.
    return config_from_dict({"name": "g", "vocab_size": 64, "hidden": 256, "layers": 2, "max_seq": 64,
                             "defaults": {"attention": {"heads": 4, "kv_heads": 2}, "ffn": {"hidden": 512, "activation": activation}},
                             "tie_embeddings": tie, "rope_theta": 5000.0, "norm_eps": 1e-6})


def ternary_source(config: ModelConfig, seed: int = 0):
    """A model whose BitLinears are exact (w_q, f16-representable scale) pairs, as TQ files carry them."""
    model = build_graph(config)
    params = init_params(config, seed)
    rng = np.random.default_rng(seed)
    for node in model.bitlinears():
        w = params.pop(f"{node}.weight")
        w_q, s = quantize_weights(w)
        params[f"{node}.weight_q"] = w_q
        params[f"{node}.weight_scale"] = np.float32(np.float16(s))
    for name in params:
        if params[name].ndim == 1:
            params[name] = (1 + 0.1 * rng.standard_normal(params[name].shape)).astype(np.float32)
    model.set_params(params)
    return model


def gguf_name(param: str) -> str:
    if param.startswith("layers."):
        _, i, rest = param.split(".", 2)
        node = rest.removesuffix(".weight")
        return f"blk.{i}.{BL.get(node) or NORMS[node]}.weight"
    return {"embed.weight": "token_embd.weight", "final_norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight"}[param]


def write_gguf(path, model, kind: str, arch: str = "bitnet-b1.58", drop: str | None = None, extra: str | None = None,
               override_raw: dict[str, np.ndarray] | None = None):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("test-model")
    w.add_block_count(cfg.n_layers)
    w.add_embedding_length(cfg.hidden)
    w.add_feed_forward_length(cfg.layers[0].ffn.hidden)
    w.add_head_count(cfg.layers[0].attention.heads)
    w.add_head_count_kv(cfg.layers[0].attention.kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_context_length(cfg.max_seq)
    p = model.params
    for node in [n for n in model.nodes() if f"{n}.weight" in p or f"{n}.weight_q" in p]:
        name = gguf_name(f"{node}.weight")
        if name == drop:
            continue
        if f"{node}.weight_q" in p:
            w_q, s = p[f"{node}.weight_q"], float(p[f"{node}.weight_scale"])
            if kind in ("TQ1_0", "TQ2_0"):
                qt = gguf.GGMLQuantizationType[kind]
                raw = (override_raw or {}).get(name)
                w.add_tensor(name, gguf.quants.quantize(w_q.astype(np.float32) * s, qt) if raw is None else raw,
                             raw_dtype=qt)
            elif kind == "I2_S":
                w.add_tensor(name, i2s_bytes(w_q, s).view(np.int8), raw_shape=w_q.shape, raw_dtype=I2_S)
            else:
                w.add_tensor(name, (w_q.astype(np.float32) * s).astype(kind))
        else:
            w.add_tensor(name, p[f"{node}.weight"].astype(np.float32))
    if extra:
        w.add_tensor(extra, np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def i2s_bytes(w_q: np.ndarray, scale: float) -> np.ndarray:
    """Test-side I2_S encoder written from the layout description (blocks of 128, 4 groups of 32)."""
    codes = (w_q.reshape(-1, 4, 32).astype(np.uint8) + 1)
    packed = (codes[:, 0] << 6) | (codes[:, 1] << 4) | (codes[:, 2] << 2) | codes[:, 3]
    tail = np.zeros(32, np.uint8)
    tail[:4] = np.array([scale], np.float32).view(np.uint8)
    return np.concatenate([packed.reshape(-1), tail])


@pytest.mark.parametrize("kind", ["TQ2_0", "TQ1_0", "I2_S", "float32", "float16"])
def test_ternary_import_is_exact(tmp_path, kind):
    src = ternary_source(small_config())
    path = tmp_path / "m.gguf"
    write_gguf(path, src, kind)
    model = load_gguf(path)
    assert model.config.n_layers == 2 and model.config.vocab_size == 64 and model.config.rope_theta == 5000.0
    assert model.config.layers[0].attention.kv_heads == 2 and model.config.layers[0].ffn.activation == "relu2"
    for node in src.bitlinears():
        w_q, s = model.quantized_weight(node)
        sq, ss = src.quantized_weight(node)
        np.testing.assert_array_equal(w_q, sq)
        assert s == pytest.approx(ss, rel=1e-6)
    tokens = np.array([1, 5, 9, 63, 0, 7])
    np.testing.assert_allclose(forward(model, tokens), forward(src, tokens), rtol=1e-5, atol=1e-5)


def test_latent_float_weights_are_quantized_on_load(tmp_path):
    cfg = small_config(activation="swiglu", tie=True)
    src = build_graph(cfg)
    src.set_params(init_params(cfg, 3))
    path = tmp_path / "f.gguf"
    write_gguf(path, src, "float32", arch="bitnet")
    model = load_gguf(path)
    assert model.config.tie_embeddings and model.config.layers[0].ffn.activation == "swiglu"
    tokens = np.arange(10)
    np.testing.assert_array_equal(forward(model, tokens), forward(src, tokens))
    assert load_model(path).config.name == "test-model"


def tq_bytes(dense: np.ndarray, kind: str, negate: np.ndarray | None = None) -> np.ndarray:
    """TQ blocks of `dense` written by the gguf package's own quantizer; blocks where `negate` [M, K/256] is
    True get the sign bit of their fp16 `d` flipped (so that block's weights are the negated codes)."""
    qt = gguf.GGMLQuantizationType[kind]
    raw = gguf.quants.quantize(dense, qt)
    if negate is not None:
        blocks = raw.reshape(dense.shape[0], -1, gguf.GGML_QUANT_SIZES[qt][1])
        blocks[..., -1][negate] ^= 0x80        # d is the block's last two bytes, little-endian fp16
    return raw


def scaled_rows(w_q: np.ndarray, row_scales: np.ndarray) -> np.ndarray:
    return w_q.astype(np.float32) * np.float16(row_scales).astype(np.float32)[:, None]


@pytest.mark.parametrize("kind", ["TQ2_0", "TQ1_0"])
@pytest.mark.parametrize("case", ["negative blocks", "per-row scales", "zero block"])
def test_tq_block_scales_import_exactly(tmp_path, kind, case):
    """Negative d, one |d| per row (differing between rows) and all-zero blocks: the imported w_q · scale
    is the file's dequantised weights, and every BitLinear output equals the dequantised-float product."""
    src = ternary_source(small_config())
    node = "layers.0.ffn.down_proj"                     # K = 512: two blocks per row
    w_q, s = src.quantized_weight(node)
    m, k = w_q.shape
    rng = np.random.default_rng(1)
    negate = rng.random((m, k // 256)) < 0.4
    rows = np.full(m, s) if case == "negative blocks" else s * np.exp(rng.uniform(-1, 1, m))
    dense = scaled_rows(w_q, rows)
    if case == "zero block":
        dense[5, :256] = 0                                # gguf writes d = 0 for an all-zero block
    raw = tq_bytes(dense, kind, negate)
    path = tmp_path / "m.gguf"
    write_gguf(path, src, kind, override_raw={"blk.0.ffn_down.weight": raw})
    model = load_gguf(path)
    got_q, got_s = model.quantized_weight(node)
    want = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[kind]).astype(np.float32)
    assert np.count_nonzero(want < 0) and set(np.unique(got_q)) <= {-1, 0, 1}
    np.testing.assert_array_equal(got_q.astype(np.float32) * np.reshape(got_s, (-1, 1)), want)
    assert np.ndim(got_s) == (0 if case == "negative blocks" else 1)
    x = rng.standard_normal((3, k)).astype(np.float32)
    x_q, x_scale = quantize_activations(x)
    exact = (x_q.astype(np.float64) @ want.T.astype(np.float64)) * x_scale[:, None]
    np.testing.assert_allclose(bitlinear_q(x, got_q, got_s), exact, rtol=1e-6, atol=1e-6)
    # and through generated kernels: every BitLinear call bit-exact, logits identical to the reference
    assert check_exact(lower_model(model, "scalar"), np.array([1, 5, 9]), n_new=2).ok


def test_different_scales_within_a_row_are_refused(tmp_path):
    src = ternary_source(small_config())
    w_q, s = src.quantized_weight("layers.0.ffn.down_proj")     # K = 512: two blocks per row
    dense = w_q.astype(np.float32) * s
    dense[7, 256:] *= 2.7                                # row 7's second block gets another scale
    path = tmp_path / "mixed.gguf"
    write_gguf(path, src, "TQ2_0", override_raw={"blk.0.ffn_down.weight": tq_bytes(dense, "TQ2_0")})
    with pytest.raises(TernkitError, match="blk.0.ffn_down.weight: row 7 has TQ2_0 blocks with different scales"):
        load_gguf(path)


def test_unknown_architecture_names_the_supported_ones(tmp_path):
    src = ternary_source(small_config())
    path = tmp_path / "llama.gguf"
    write_gguf(path, src, "TQ2_0", arch="llama")
    with pytest.raises(TernkitError, match="architecture 'llama' is not supported.*bitnet-b1.58"):
        load_gguf(path)


def test_missing_and_unexpected_tensors_are_reported(tmp_path):
    src = ternary_source(small_config())
    path = tmp_path / "missing.gguf"
    write_gguf(path, src, "TQ2_0", drop="blk.1.ffn_up.weight")
    with pytest.raises(TernkitError, match="missing 1 tensors.*layers.1.ffn.up_proj"):
        load_gguf(path)
    path = tmp_path / "extra.gguf"
    write_gguf(path, src, "TQ2_0", extra="blk.0.mystery.weight")
    with pytest.raises(TernkitError, match="unexpected tensors, e.g. blk.0.mystery.weight; expected only"):
        load_gguf(path)
