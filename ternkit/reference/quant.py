"""Quantizers and the integer core of BitLinear (the kernel contract of design.md).

Conventions (every target keeps them):
- weights: `w_q` int8 in {-1, 0, +1} (b1.58 ternary) or {-1, +1} (BitNet v1 binary), one float scale
  per matrix; `W ≈ w_q * w_scale`.
- activations: `x_q` int8, absmax per token (row); `x ≈ x_q * x_scale[:, None]`, so the scale returned
  here already includes the 1/Qb factor.
- integer core: `y_int = x_q @ w_q.T`, exact int32; dequantised `y = y_int * w_scale * x_scale[:, None]`.
"""

from __future__ import annotations

import numpy as np

from ternkit.errors import ShapeError

EPS = 1e-5
WEIGHT_MODES = ("ternary", "binary")
ACTIVATION_BITS = (8, 4)


def quantize_weights(w: np.ndarray, mode: str = "ternary") -> tuple[np.ndarray, float]:
    """Quantize a full-precision weight matrix.

    ternary (BitNet b1.58): γ = mean|W|, w_q = clip(round(W / (γ + ε)), -1, 1), scale γ.
    binary (BitNet v1): centre by the mean α, w_q = Sign(W - α) with Sign(0) = -1 (v1 eq. 2: +1 if > 0,
    -1 if <= 0), scale β = mean|W|.
    """
    w = np.asarray(w)
    if w.ndim != 2 or w.size == 0:
        raise ShapeError(f"weights must be a non-empty 2-D matrix [out, in], got shape {w.shape}")
    # float32 at least: dividing float16 weights in float16 rounds 0.4287 / 0.857 to 0.5 and then to 0
    w = w.astype(np.promote_types(w.dtype, np.float32) if np.issubdtype(w.dtype, np.floating) else np.float32)
    if not np.all(np.isfinite(w)):
        raise ShapeError("weights contain NaN or inf")
    gamma = float(np.mean(np.abs(w, dtype=np.float64)))
    if mode == "ternary":
        w_q = np.clip(np.rint(w / (gamma + EPS)), -1, 1).astype(np.int8)
    elif mode == "binary":
        alpha = float(np.mean(w, dtype=np.float64))
        w_q = np.where(w - alpha > 0, 1, -1).astype(np.int8)
    else:
        raise ShapeError(f"unknown weight mode {mode!r}: use one of {', '.join(WEIGHT_MODES)}")
    return w_q, max(gamma, EPS)


def _check_bits(bits: int) -> int:
    if bits not in ACTIVATION_BITS:
        raise ShapeError(f"activation bits must be 8 or 4, got {bits!r}")
    return 2 ** (bits - 1)


def quantize_activations(x: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Absmax per token: Qb = 2^(b-1), x_q = clip(round(x * Qb / γ), -Qb, Qb-1) with γ = max|x| per row.

    Returns `(x_q int8 [N, K], x_scale float32 [N])` with `x ≈ x_q * x_scale[:, None]` (x_scale = γ/Qb).
    An all-zero row gets x_q = 0 and a tiny positive scale, never NaN.
    """
    qb = _check_bits(bits)
    x = _as_rows(x)
    gamma = np.maximum(np.max(np.abs(x), axis=1), EPS).astype(np.float32)
    x_q = np.clip(np.rint(x * (qb / gamma)[:, None]), -qb, qb - 1).astype(np.int8)
    return x_q, (gamma / qb).astype(np.float32)


def default_outlier_k(k_dim: int) -> int:
    """a4.8 default: keep 1 in 64 entries per token (at least one) at 8 bits."""
    return max(1, k_dim // 64)


def quantize_activations_a48(x: np.ndarray, outlier_k: int | None = None):
    """BitNet a4.8-style hybrid: the `outlier_k` largest-magnitude entries of each token stay int8, the
    rest are int4 absmax over the remaining (inlier) entries.

    Returns `(x_lo, lo_scale, x_hi, hi_scale)`: `x_lo` int8 in [-8, 7] with outliers zeroed, `x_hi` int8
    in [-128, 127] holding only the outliers, so that `x ≈ x_lo*lo_scale + x_hi*hi_scale` and
    `y_int` is computed for both parts by the same ternary kernel.
    """
    x = _as_rows(x)
    n, k = x.shape
    kk = default_outlier_k(k) if outlier_k is None else int(outlier_k)
    if not 0 <= kk <= k:
        raise ShapeError(f"outlier_k must be in [0, {k}], got {kk}")
    mask = np.zeros_like(x, dtype=bool)
    if kk:
        idx = np.argpartition(-np.abs(x), kk - 1, axis=1)[:, :kk]
        np.put_along_axis(mask, idx, True, axis=1)
    x_lo, lo_scale = quantize_activations(np.where(mask, 0.0, x), bits=4)
    x_hi, hi_scale = quantize_activations(np.where(mask, x, 0.0), bits=8)
    return x_lo, lo_scale, x_hi, hi_scale


def check_ternary(w_q: np.ndarray, name: str = "w_q") -> None:
    if w_q.dtype != np.int8:
        raise ShapeError(f"{name} must be int8, got {w_q.dtype}")
    if w_q.size and (w_q.min() < -1 or w_q.max() > 1):
        raise ShapeError(f"{name} is not ternary: values must be in {{-1, 0, +1}}")


def ternary_matmul(x_q: np.ndarray, w_q: np.ndarray) -> np.ndarray:
    """Exact integer core: `y_int[n, m] = Σ_k w_q[m, k] * x_q[n, k]` as int32.

    Uses float BLAS where that is provably exact (every partial sum is an integer of magnitude
    < 128*K, representable in float32 for K < 2^17 and in float64 beyond), so it is exact and fast.
    """
    x_q = np.asarray(x_q)
    w_q = np.asarray(w_q)
    if x_q.dtype != np.int8:
        raise ShapeError(f"x_q must be int8, got {x_q.dtype}")
    check_ternary(w_q)
    if x_q.ndim != 2 or w_q.ndim != 2:
        raise ShapeError(f"x_q must be [N, K] and w_q [M, K], got {x_q.shape} and {w_q.shape}")
    if x_q.shape[1] != w_q.shape[1]:
        raise ShapeError(f"K mismatch: x_q is {x_q.shape} but w_q is {w_q.shape}")
    k = x_q.shape[1]
    ftype = np.float32 if 128 * k < 2**24 else np.float64
    y = x_q.astype(ftype) @ w_q.astype(ftype).T
    return y.astype(np.int32)


def dequantize(y_int: np.ndarray, w_scale, x_scale: np.ndarray) -> np.ndarray:
    """`y = y_int · w_scale · x_scale`: `w_scale` one float or float32 [M] (one per output row)."""
    return (y_int.astype(np.float32) * np.asarray(w_scale, dtype=np.float32)) * x_scale[:, None]


def rmsnorm(x: np.ndarray, weight: np.ndarray | None = None, eps: float = 1e-5) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y if weight is None else y * weight


def bitlinear_q(x, w_q, w_scale, *, activation_bits=8, outlier_k=None, matmul=ternary_matmul):
    """BitLinear with already-quantized weights. `matmul(x_q, w_q) -> y_int` is the integer core;
    the runtime swaps in a generated kernel here."""
    x = _as_rows(x)
    _check_bits(activation_bits)
    if activation_bits == 8:
        x_q, x_scale = quantize_activations(x, 8)
        return dequantize(matmul(x_q, w_q), w_scale, x_scale)
    if outlier_k == 0:
        x_q, x_scale = quantize_activations(x, 4)
        return dequantize(matmul(x_q, w_q), w_scale, x_scale)
    x_lo, lo_scale, x_hi, hi_scale = quantize_activations_a48(x, outlier_k)
    return dequantize(matmul(x_lo, w_q), w_scale, lo_scale) + dequantize(matmul(x_hi, w_q), w_scale, hi_scale)


def bitlinear(x, w, *, weights="ternary", activation_bits=8, outlier_k=None, norm_weight=None,
              norm=False, eps=1e-5):
    """Full BitLinear: optional RMSNorm/SubLN in front, quantize weights and activations, exact integer
    matmul, dequantise. `x` is [N, K] (or [K]); `w` is the latent full-precision [M, K] matrix."""
    x = _as_rows(x)
    if norm or norm_weight is not None:
        x = rmsnorm(x, norm_weight, eps)
    w_q, w_scale = quantize_weights(w, weights)
    return bitlinear_q(x, w_q, w_scale, activation_bits=activation_bits, outlier_k=outlier_k)


def _as_rows(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ShapeError(f"activations must be [N, K] (or [K]), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ShapeError("activations contain NaN or inf")
    return x
