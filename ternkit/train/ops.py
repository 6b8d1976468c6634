"""Forward and hand-written backward of every reference layer, batched over [B, T, ...].

Each op is a pair `<op>_fwd(...) -> (out, cache)` and `<op>_bwd(dout, cache) -> grads`. Ops keep the
input dtype (float64 for gradient checks) except a quantized BitLinear, which runs the reference's
float32 `bitlinear_q` so training and inference agree. With quantization on, BitLinear's backward is
the straight-through estimator: both quantizers count as the identity, so the gradients are those of
the linear map `x_deq @ w_deq.T` (dequantised activations and weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ternkit.reference.quant import (
    bitlinear_q,
    quantize_activations,
    quantize_activations_a48,
    quantize_weights,
)

# ---------------------------------------------------------------- embedding


def embedding_fwd(table: np.ndarray, tokens: np.ndarray):
    return table[tokens], (tokens, table.shape)


def embedding_bwd(dout: np.ndarray, cache) -> np.ndarray:
    tokens, shape = cache
    d_table = np.zeros(shape, dtype=dout.dtype)
    np.add.at(d_table, tokens.reshape(-1), dout.reshape(-1, shape[1]))
    return d_table


# ---------------------------------------------------------------- RMSNorm


def rmsnorm_fwd(x: np.ndarray, w: np.ndarray, eps: float):
    # same expression and order as reference.quant.rmsnorm, so float32 results match
    den = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    xhat = x / den
    return xhat * w, (xhat, 1.0 / den, w)


def rmsnorm_bwd(dout: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray]:
    xhat, r, w = cache
    dxhat = dout * w
    dw = np.sum(dout * xhat, axis=tuple(range(dout.ndim - 1)))
    dx = r * (dxhat - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True))
    return dx, dw


# ---------------------------------------------------------------- BitLinear (STE)


@dataclass(frozen=True)
class LinearMode:
    """How a BitLinear runs: `weights` None = full precision (no quantization at all)."""

    weights: str | None = "ternary"
    activation_bits: int = 8
    outlier_k: int | None = None


def fake_quant_activations(x2: np.ndarray, bits: int, outlier_k: int | None) -> np.ndarray:
    """The dequantised activations the reference's integer core effectively multiplies."""
    if bits == 8:
        x_q, s = quantize_activations(x2, 8)
        return x_q * s[:, None]
    if outlier_k == 0:
        x_q, s = quantize_activations(x2, 4)
        return x_q * s[:, None]
    x_lo, lo_s, x_hi, hi_s = quantize_activations_a48(x2, outlier_k)
    return x_lo * lo_s[:, None] + x_hi * hi_s[:, None]


def bitlinear_fwd(x: np.ndarray, w: np.ndarray, mode: LinearMode):
    lead, k = x.shape[:-1], x.shape[-1]
    x2 = x.reshape(-1, k)
    if mode.weights is None:
        y = x2 @ w.T
        return y.reshape(*lead, -1), (x2, w, lead)
    w_q, w_scale = quantize_weights(w, mode.weights)
    # forward value: exactly the reference path (integer core, then dequantise)
    y = bitlinear_q(x2, w_q, w_scale, activation_bits=mode.activation_bits, outlier_k=mode.outlier_k)
    x_deq = fake_quant_activations(x2, mode.activation_bits, mode.outlier_k).astype(np.float32)
    w_deq = w_q.astype(np.float32) * np.float32(w_scale)
    return y.reshape(*lead, -1), (x_deq, w_deq, lead)


def bitlinear_bwd(dout: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray]:
    """STE: d/dx and d/dW of `x_eff @ w_eff.T`, passed straight to the latent x and W."""
    x_eff, w_eff, lead = cache
    d2 = dout.reshape(-1, dout.shape[-1])
    dx = (d2 @ w_eff).reshape(*lead, -1)
    dw = d2.T @ x_eff
    return dx, dw


# ---------------------------------------------------------------- attention (RoPE, GQA, causal)


def rope_tables(t: int, head_dim: int, theta: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    # the reference tables are float32; round through float32 so float32 training matches it
    return np.cos(emb).astype(np.float32).astype(dtype), np.sin(emb).astype(np.float32).astype(dtype)


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _rope(x, cos, sin):  # x [B, T, H, D], cos/sin [T, D]
    return x * cos[:, None, :] + _rotate_half(x) * sin[:, None, :]


def _rope_bwd(d, cos, sin):
    # rotate_half is linear with transpose -rotate_half
    return d * cos[:, None, :] - _rotate_half(d * sin[:, None, :])


def attention_fwd(q, k, v, heads: int, kv_heads: int, head_dim: int, theta: float):
    """q [B, T, H*D], k/v [B, T, KVH*D] -> [B, T, H*D]; causal, RoPE on q and k, GQA."""
    b, t, _ = q.shape
    g = heads // kv_heads
    cos, sin = rope_tables(t, head_dim, theta, q.dtype)
    qr = _rope(q.reshape(b, t, heads, head_dim), cos, sin).transpose(0, 2, 1, 3)  # [B, H, T, D]
    kr = _rope(k.reshape(b, t, kv_heads, head_dim), cos, sin)
    kx = np.repeat(kr, g, axis=2).transpose(0, 2, 1, 3)  # [B, H, S, D]
    vx = np.repeat(v.reshape(b, t, kv_heads, head_dim), g, axis=2).transpose(0, 2, 1, 3)
    scale = q.dtype.type(np.sqrt(head_dim))
    scores = (qr @ kx.transpose(0, 1, 3, 2)) / scale
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    scores = np.where(mask, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    p = e / e.sum(axis=-1, keepdims=True)
    out = (p @ vx).transpose(0, 2, 1, 3).reshape(b, t, heads * head_dim)
    return out, (qr, kx, vx, p, cos, sin, heads, kv_heads, head_dim, scale)


def attention_bwd(dout, cache):
    qr, kx, vx, p, cos, sin, heads, kv_heads, head_dim, scale = cache
    b, h, t, d = qr.shape
    g = heads // kv_heads
    do = dout.reshape(b, t, h, d).transpose(0, 2, 1, 3)  # [B, H, T, D]
    dp = do @ vx.transpose(0, 1, 3, 2)
    dvx = p.transpose(0, 1, 3, 2) @ do
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True)) / scale  # masked entries have p = 0
    dqr = ds @ kx
    dkx = ds.transpose(0, 1, 3, 2) @ qr
    # fold the repeated heads of each KV group back onto their KV head
    dkr = dkx.reshape(b, kv_heads, g, t, d).sum(axis=2).transpose(0, 2, 1, 3)  # [B, T, KVH, D]
    dv = dvx.reshape(b, kv_heads, g, t, d).sum(axis=2).transpose(0, 2, 1, 3)
    dq = _rope_bwd(dqr.transpose(0, 2, 1, 3), cos, sin)
    dk = _rope_bwd(dkr, cos, sin)
    return dq.reshape(b, t, h * d), dk.reshape(b, t, kv_heads * d), dv.reshape(b, t, kv_heads * d)


# ---------------------------------------------------------------- gated FFN activation


def ffn_act_fwd(gate: np.ndarray, up: np.ndarray, activation: str):
    if activation == "relu2":
        r = np.maximum(gate, 0)
        a = r * r
        return a * up, (activation, r, a, up)
    if activation == "swiglu":
        with np.errstate(over="ignore"):  # exp overflow for very negative gates gives silu = -0, as the reference
            e = 1.0 + np.exp(-gate)
        a = gate / e  # the reference's silu expression
        return a * up, (activation, (gate, 1.0 / e), a, up)
    raise ValueError(f"unknown FFN activation {activation!r}")


def ffn_act_bwd(dout, cache) -> tuple[np.ndarray, np.ndarray]:
    activation, aux, a, up = cache
    dup = dout * a
    if activation == "relu2":
        dgate = dout * up * 2 * aux
    else:
        gate, s = aux
        dgate = dout * up * s * (1 + gate * (1 - s))
    return dgate, dup


# ---------------------------------------------------------------- losses


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean next-token cross-entropy (nats) over all positions and its gradient w.r.t. the logits."""
    lp = log_softmax(logits)
    n = targets.size
    flat = lp.reshape(-1, lp.shape[-1])
    idx = np.arange(n), targets.reshape(-1)
    loss = -float(np.mean(flat[idx], dtype=np.float64))
    d = np.exp(flat)
    d[idx] -= 1
    return loss, (d / n).reshape(logits.shape).astype(logits.dtype)


def distill_kl(student: np.ndarray, teacher: np.ndarray, temperature: float) -> tuple[float, np.ndarray]:
    """T² · KL(softmax(teacher/T) || softmax(student/T)), mean over positions, and d/d student logits.

    The T² factor (Hinton et al.) keeps the gradient scale independent of the temperature."""
    tau = temperature
    ls = log_softmax(student / tau)
    lt = log_softmax(teacher / tau)
    pt = np.exp(lt)
    n = int(np.prod(student.shape[:-1]))
    kl = float(np.sum(pt * (lt - ls), dtype=np.float64)) / n
    grad = tau * (np.exp(ls) - pt) / n  # T² · (1/T) · (p_s - p_t)
    return tau * tau * kl, grad.astype(student.dtype)
