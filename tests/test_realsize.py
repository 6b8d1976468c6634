"""Real sizes: random weights drawn as packed ternary codes (float16 embedding), run through the
Python runtime and the standalone C runtime (thread pool, GEMM prefill), and `ternkit speed`.
Tests use a scaled-down 2B4T shape (same code path); the slow test runs 2B4T itself."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from ternkit import formats
from ternkit.cli import main
from ternkit.codegen.targets import best_native_target
from ternkit.graph import build_graph, config_from_dict, load_model
from ternkit.graph.random_weights import FLOAT_RANDOM_MAX_PARAMS, packed_random_params, random_i2
from ternkit.reference.forward import forward, greedy_generate
from ternkit.runtime import speed
from ternkit.runtime.lowered import lower_model

needs_cc = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")


def small_2b4t(vocab: int = 1000, layers: int = 2, hidden: int = 256):
    """2B4T's structure (relu2 FFN, SubLN, GQA 4:1, tied fp16 embedding, theta 5e5), scaled down."""
    cfg = config_from_dict({"name": "2b4t-small", "vocab_size": vocab, "hidden": hidden, "layers": layers,
                            "defaults": {"attention": {"heads": 4, "kv_heads": 1}, "ffn": {"hidden": 704, "activation": "relu2"}},
                            "subln": True, "rope_theta": 500000.0, "max_seq": 160, "tie_embeddings": True})
    model = build_graph(cfg)
    model.set_params(packed_random_params(cfg, seed=3))
    return model


@pytest.mark.parametrize("K", [1, 3, 4, 5, 130])
def test_random_i2_codes_are_valid_ternary_with_zero_padding(K):
    packed = random_i2(np.random.default_rng(K), 37, K)
    w = formats.unpack("i2", packed, 37, K)           # raises on code 3
    assert w.shape == (37, K) and set(np.unique(w)) <= {-1, 0, 1}
    np.testing.assert_array_equal(formats.pack("i2", w), packed)   # padding holds code 1 (zero)


def test_random_i2_is_uniform_over_the_three_values():
    w = formats.unpack("i2", random_i2(np.random.default_rng(0), 512, 512), 512, 512)
    assert np.allclose(np.bincount(w.ravel() + 1) / w.size, 1 / 3, atol=0.01)


def test_models_above_the_float_cap_get_packed_weights_only_when_asked(tmp_path):
    spec = {"name": "wide", "vocab_size": 100_000, "hidden": 512, "layers": 1,
            "defaults": {"attention": {"heads": 4}, "ffn": {"hidden": 1024}}, "tie_embeddings": True}
    assert build_graph(config_from_dict(spec)).parameter_count() > FLOAT_RANDOM_MAX_PARAMS
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert load_model(path).params is None
    model = load_model(path, packed_random=True)
    p = model.params
    assert p["embed.weight"].dtype == np.float16 and "layers.0.attn.q_proj.weight_i2" in p
    assert not any(k.endswith(".weight_q") or k == "layers.0.attn.q_proj.weight" for k in p)
    assert sum(a.nbytes for a in p.values()) < 0.51 * model.parameter_count() * 4   # fp16 embedding, 2-bit codes
    w_q, s = model.quantized_weight("layers.0.attn.q_proj")
    assert w_q.shape == (512, 512) and s == model.weight_scale("layers.0.attn.q_proj")


@needs_cc
def test_python_runtime_on_packed_weights_gives_the_reference_tokens():
    model = small_2b4t()
    lowered = lower_model(model, best_native_target().name, tokens=(1, 64))
    prompt = np.arange(40) * 7 % 1000
    np.testing.assert_array_equal(forward(model, prompt, core=lowered.core), forward(model, prompt))
    assert greedy_generate(model, prompt, 6, core=lowered.core) == greedy_generate(model, prompt, 6)


@needs_cc
@pytest.mark.parametrize("threads", [1, 2])
def test_c_runtime_with_fp16_head_gemm_prefill_and_threads_matches_python(tmp_path, threads):
    model = small_2b4t()
    target = best_native_target()
    speed.build_c_runtime(model, target, tmp_path)
    prompt = np.arange(70) * 13 % 1000           # > one 64-token prefill chunk
    row = speed.c_runtime(tmp_path, prompt, 5, threads, target.name)
    assert row.tokens == greedy_generate(model, prompt, 6)
    assert row.prompt_tokens == 70 and row.decode_tokens == 5 and row.peak_rss_bytes > 0
    # Logits: C and numpy floats differ in the last bit (rmsnorm, softmax), and a random ternary model
    # amplifies that: a 1-ulp change flips an int8 rounding somewhere after ~20 tokens (perturbing one
    # norm weight by 1e-7 moves the reference's own logits by 2e-2). Short prompts stay within float noise.
    from ternkit.runtime.standalone import Toolchain, run_program
    short = prompt[:5]
    np.testing.assert_allclose(run_program(tmp_path, short, Toolchain("cc", ())), forward(model, short)[-1],
                               rtol=1e-4, atol=1e-5)


@needs_cc
def test_speed_reports_both_runtimes_and_the_roofline(monkeypatch):
    monkeypatch.setattr(speed, "STREAM_MB", 64)
    model = small_2b4t()
    report = speed.measure_speed(model, "random packed", prompt_tokens=20, decode_tokens=4)
    assert [r.runtime.split()[0] for r in report.rows] == ["python", "C"]
    assert report.rows[0].tokens == report.rows[1].tokens == greedy_generate(model, (np.arange(20) * 7 + 1) % 1000, 5)
    assert report.head_bytes == 1000 * 256 * 2   # tied float16 embedding
    codes = sum(m * k // 4 for m, k in [(256, 256), (64, 256), (64, 256), (256, 256), (704, 256), (704, 256),
                                        (256, 704)]) * 2
    one_copy, _ = speed.weight_traffic(model, speed.runtime_plan(model, best_native_target(), "same"),
                                       best_native_target())
    assert codes <= one_copy <= 1.1 * codes   # i2: 2 bits a weight, K padded to the kernel's k_align
    if best_native_target().decode_format == "tl2":   # decode reads the 1.67-bit copy, prefill too: one copy
        assert report.bitlinear_bytes < 0.9 * one_copy and "BitLinears packed once (tl2" in report.weights_file
    else:
        assert report.bitlinear_bytes == one_copy
    assert report.stream_gbs > 0 and all(0 < report.fraction(r) and 0 < report.cpu_fraction(r) for r in report.rows)
    text = report.text()
    assert "% of roofline" in text and "MiB read per decoded token" in text


@pytest.mark.slow
@needs_cc
def test_2b4t_runs_end_to_end_in_c(capsys):
    assert main(["speed", "bitnet-b1.58-2b4t", "--runtime", "c", "--prompt", "2", "--decode", "1"]) == 0
    out = capsys.readouterr().out
    assert "2,41" in out and "C runtime" in out and "% of roofline" in out


def test_compiled_float16_widening_is_numpys_and_keeps_the_logits_identical():
    from ternkit.reference.forward import lm_head
    from ternkit.runtime.widen import widen_f16

    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    ok = ~np.isnan(every)
    np.testing.assert_array_equal(widen_f16(every)[ok].view(np.uint32), every[ok].astype(np.float32).view(np.uint32))
    assert np.isnan(widen_f16(every)[~ok]).all()
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((5000, 96), dtype=np.float32) * 0.02).astype(np.float16)
    x = rng.standard_normal((3, 96), dtype=np.float32)
    np.testing.assert_array_equal(lm_head(x, w, widen_f16), lm_head(x, w))
