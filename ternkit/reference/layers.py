"""Float layers of a BitNet transformer block (numpy, float32): RoPE, causal GQA attention, gated FFN
activations. BitLinear and RMSNorm live in `quant.py`."""

from __future__ import annotations

import numpy as np


def rope_tables(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables [T, head_dim] in the rotate-half layout (Llama / HF BitNet)."""
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    freqs = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


def rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x: [T, H, D]; cos/sin: [T, D]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, q_pos: np.ndarray, k_pos: np.ndarray) -> np.ndarray:
    """Grouped-query causal attention.

    q: [T, H, D]; k, v: [S, KVH, D] (already RoPE'd k); q_pos [T], k_pos [S] absolute positions.
    Returns [T, H*D]. A query attends to keys at positions <= its own.
    """
    t, h, d = q.shape
    kvh = k.shape[1]
    group = h // kvh
    kx = np.repeat(k, group, axis=1)  # [S, H, D]
    vx = np.repeat(v, group, axis=1)
    scores = np.einsum("thd,shd->hts", q, kx) / np.float32(np.sqrt(d))
    mask = k_pos[None, :] > q_pos[:, None]  # [T, S]
    scores = np.where(mask[None], np.float32(-np.inf), scores)
    probs = softmax(scores, axis=-1).astype(np.float32)
    out = np.einsum("hts,shd->thd", probs, vx)
    return out.reshape(t, h * d).astype(np.float32)


def relu2(x: np.ndarray) -> np.ndarray:
    r = np.maximum(x, 0)
    return r * r


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def gated_activation(gate: np.ndarray, up: np.ndarray, activation: str) -> np.ndarray:
    """relu2: relu(gate)² * up (BitNet b1.58 2B4T); swiglu: silu(gate) * up."""
    if activation == "relu2":
        return (relu2(gate) * up).astype(np.float32)
    if activation == "swiglu":
        return (silu(gate) * up).astype(np.float32)
    raise ValueError(f"unknown FFN activation {activation!r}")
