"""What ggml's two ternary formats share: 256-weight super-blocks (QK_K), each closed by an fp16 scale `d`.

A row of K weights is K/256 consecutive blocks and rows follow each other (ggml's row-major tensor
layout), so the packed array is exactly the tensor's bytes in a GGUF file. Weight j of a block decodes
to `d * w_q[j]`. A format module supplies `encode(trits [B, 256] of 0..2) -> [B, payload]` and
`decode([B, payload]) -> trits [B, 256]`; the helpers here do the rest.
"""

from __future__ import annotations

import numpy as np

from ternkit.errors import ShapeError

QK_K = 256
FP16_MAX = 65504.0


def check_k(name: str, K: int) -> None:
    if K % QK_K:
        raise ShapeError(f"{name}: K = {K} is not a multiple of {QK_K} (ggml's QK_K super-block)")


def nbytes(name: str, block_bytes: int, M: int, K: int) -> int:
    check_k(name, K)
    return M * (K // QK_K) * block_bytes


def scales(name: str, scale, M: int, K: int) -> np.ndarray:
    """One fp16 `d` a block, from one number or anything broadcastable to [M, K/256]."""
    shape = (M, K // QK_K)
    try:
        d = np.broadcast_to(np.asarray(scale, dtype=np.float64), shape)
    except ValueError:
        raise ShapeError(f"{name}: scale must be one number or broadcastable to [M, K/256] = {list(shape)}, "
                         f"got shape {np.shape(scale)}") from None
    if not np.all(np.isfinite(d)) or np.any(np.abs(d) > FP16_MAX):
        raise ShapeError(f"{name}: scales must be finite and within fp16 range (|d| <= {FP16_MAX:g})")
    return np.ascontiguousarray(d.astype("<f2"))


def pack(name: str, encode, w_q: np.ndarray, scale) -> np.ndarray:
    m, k = w_q.shape
    check_k(name, k)
    d = scales(name, scale, m, k)
    trits = (w_q.reshape(-1, QK_K).astype(np.int16) + 1).astype(np.uint8)   # one row a block
    blocks = np.concatenate([encode(trits), d.reshape(-1, 1).view(np.uint8)], axis=1)
    return np.ascontiguousarray(blocks).reshape(-1)


def unpack(name: str, decode, payload: int, data: np.ndarray, M: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = data.reshape(-1, payload + 2)
    trits = decode(blocks[:, :payload])
    if np.any(trits > 2):
        raise ShapeError(f"{name}: packed data holds a code no ternary weight packs to (corrupt or wrong format)")
    d = np.ascontiguousarray(blocks[:, payload:]).view("<f2").astype(np.float32)
    return (trits.astype(np.int8) - 1).reshape(M, K), d.reshape(M, K // QK_K)
