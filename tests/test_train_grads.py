"""Hand-written gradients vs central finite differences (float64, quantization off), and STE semantics
(quantization on)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ternkit.reference.quant import bitlinear, quantize_weights
from ternkit.train import ops

SETTINGS = settings(max_examples=15, deadline=None)


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        hi = f()
        x[idx] = old - h
        lo = f()
        x[idx] = old
        g[idx] = (hi - lo) / (2 * h)
    return g


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


dims = st.integers(1, 5)


@SETTINGS
@given(b=dims, t=dims, d=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_rmsnorm_grad(b, t, d, seed):
    rng = np.random.default_rng(seed)
    x, w, dout = rng.standard_normal((b, t, d)), rng.standard_normal(d), rng.standard_normal((b, t, d))
    dx, dw = ops.rmsnorm_bwd(dout, ops.rmsnorm_fwd(x, w, 1e-5)[1])
    f = lambda: float(np.sum(ops.rmsnorm_fwd(x, w, 1e-5)[0] * dout))
    close(dx, numeric_grad(f, x))
    close(dw, numeric_grad(f, w))


@SETTINGS
@given(b=dims, t=dims, k=st.integers(1, 6), m=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_full_precision_linear_grad(b, t, k, m, seed):
    rng = np.random.default_rng(seed)
    x, w, dout = rng.standard_normal((b, t, k)), rng.standard_normal((m, k)), rng.standard_normal((b, t, m))
    mode = ops.LinearMode(weights=None)
    dx, dw = ops.bitlinear_bwd(dout, ops.bitlinear_fwd(x, w, mode)[1])
    f = lambda: float(np.sum(ops.bitlinear_fwd(x, w, mode)[0] * dout))
    close(dx, numeric_grad(f, x))
    close(dw, numeric_grad(f, w))


@SETTINGS
@given(b=st.integers(1, 2), t=st.integers(1, 5), kvh=st.integers(1, 2), group=st.integers(1, 3),
       half=st.integers(1, 3), theta=st.sampled_from([10.0, 10000.0]), seed=st.integers(0, 2**16))
def test_attention_grad(b, t, kvh, group, half, theta, seed):
    rng = np.random.default_rng(seed)
    h, d = kvh * group, 2 * half
    q, k, v = (rng.standard_normal((b, t, n * d)) for n in (h, kvh, kvh))
    dout = rng.standard_normal((b, t, h * d))
    dq, dk, dv = ops.attention_bwd(dout, ops.attention_fwd(q, k, v, h, kvh, d, theta)[1])
    f = lambda: float(np.sum(ops.attention_fwd(q, k, v, h, kvh, d, theta)[0] * dout))
    close(dq, numeric_grad(f, q))
    close(dk, numeric_grad(f, k))
    close(dv, numeric_grad(f, v))


@SETTINGS
@given(shape=st.tuples(dims, dims, dims), act=st.sampled_from(["relu2", "swiglu"]), seed=st.integers(0, 2**16))
def test_ffn_activation_grad(shape, act, seed):
    rng = np.random.default_rng(seed)
    gate = rng.standard_normal(shape)
    gate = np.where(np.abs(gate) < 1e-3, 0.5, gate)  # keep finite differences off relu's kink
    up, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    dg, du = ops.ffn_act_bwd(dout, ops.ffn_act_fwd(gate, up, act)[1])
    f = lambda: float(np.sum(ops.ffn_act_fwd(gate, up, act)[0] * dout))
    close(dg, numeric_grad(f, gate))
    close(du, numeric_grad(f, up))


@SETTINGS
@given(b=dims, t=dims, vocab=st.integers(2, 9), d=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_embedding_grad(b, t, vocab, d, seed):
    rng = np.random.default_rng(seed)
    table, tokens = rng.standard_normal((vocab, d)), rng.integers(0, vocab, (b, t))
    dout = rng.standard_normal((b, t, d))
    f = lambda: float(np.sum(ops.embedding_fwd(table, tokens)[0] * dout))
    close(ops.embedding_bwd(dout, ops.embedding_fwd(table, tokens)[1]), numeric_grad(f, table))


@SETTINGS
@given(b=dims, t=dims, vocab=st.integers(2, 9), tau=st.sampled_from([1.0, 2.0, 4.5]), seed=st.integers(0, 2**16))
def test_cross_entropy_and_distill_kl_grads(b, t, vocab, tau, seed):
    rng = np.random.default_rng(seed)
    logits, teacher = rng.standard_normal((b, t, vocab)) * 3, rng.standard_normal((b, t, vocab)) * 3
    targets = rng.integers(0, vocab, (b, t))
    loss, d = ops.cross_entropy(logits, targets)
    close(d, numeric_grad(lambda: ops.cross_entropy(logits, targets)[0], logits))
    p = np.exp(ops.log_softmax(logits))
    assert np.isclose(loss, -np.mean(np.log(np.take_along_axis(p, targets[..., None], -1))))
    kl, dkl = ops.distill_kl(logits, teacher, tau)
    close(dkl, numeric_grad(lambda: ops.distill_kl(logits, teacher, tau)[0], logits))
    assert kl >= -1e-12 and np.isclose(ops.distill_kl(teacher, teacher, tau)[0], 0, atol=1e-12)


@SETTINGS
@given(n=st.integers(1, 6), k=st.integers(1, 40), m=st.integers(1, 8), mode=st.sampled_from(["ternary", "binary"]),
       bits=st.sampled_from([8, 4]), seed=st.integers(0, 2**16))
def test_bitlinear_ste(n, k, m, mode, bits, seed):
    """Quantization on: the forward is the reference BitLinear, and the gradients are exactly those of the
    linear map with dequantised activations and weights (the quantizers pass gradients straight through)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, n, k)).astype(np.float32)
    w = rng.standard_normal((m, k)).astype(np.float32)
    dout = rng.standard_normal((1, n, m)).astype(np.float32)
    lm = ops.LinearMode(mode, bits, None)
    y, cache = ops.bitlinear_fwd(x, w, lm)
    np.testing.assert_array_equal(y[0], bitlinear(x[0], w, weights=mode, activation_bits=bits))
    dx, dw = ops.bitlinear_bwd(dout, cache)
    w_q, scale = quantize_weights(w, mode)
    x_deq = ops.fake_quant_activations(x[0], bits, None).astype(np.float64)
    w_deq = w_q.astype(np.float64) * scale
    d64 = dout[0].astype(np.float64)
    # gradient of W' -> <dout, x_deq W'^T> at W' = w_deq, and of x' -> <dout, x' w_deq^T>, numerically
    gw = numeric_grad(lambda: float(np.sum(d64 * (x_deq @ w_deq.T))), w_deq)
    gx = numeric_grad(lambda: float(np.sum(d64 * (x_deq @ w_deq.T))), x_deq)
    np.testing.assert_allclose(dw, gw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx[0], gx, rtol=1e-4, atol=1e-4)
    assert dw.shape == w.shape and dx.shape == x.shape


@SETTINGS
@given(b=st.integers(1, 2), t=st.integers(1, 5), heads=st.integers(1, 3), ds=st.integers(1, 3), dt=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_attention_relation_kl_grad(b, t, heads, ds, dt, seed):
    from ternkit.train.relation import relation_kl

    rng = np.random.default_rng(seed)
    s, tt = rng.standard_normal((b, t, heads * ds)), rng.standard_normal((b, t, heads * dt))
    loss, g = relation_kl(s, tt, heads)
    close(g, numeric_grad(lambda: relation_kl(s, tt, heads)[0], s))
    assert loss >= -1e-12 and abs(relation_kl(tt, tt, heads)[0]) < 1e-12
