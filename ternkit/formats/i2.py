"""i2: 2 bits a weight, code = w + 1 (0, 1, 2), four weights a byte, the first in the low bits.

Row-major: row m starts at byte `m * stride`, `stride = round_up(K, k_align) / 4`; weight k of the row
is `((row[k / 4] >> (2 * (k % 4))) & 3) - 1`. Padding weights (k >= K) have code 1 (zero)."""

from __future__ import annotations

import numpy as np

from ternkit.formats import bad_code, round_up

GROUP = 4  # weights a byte
BITS_PER_WEIGHT = 2.0
SUMMARY = "2-bit code w+1, four weights a byte (first in the low bits), row-major"
COMPATIBLE = "bitnet.cpp I2_S-style 2-bit codes (per-row layout, no embedded scale)"
LOOKUP: list[tuple[int, ...]] = []   # codes decode arithmetically: no lookup table


def row_bytes(K: int, k_align: int = 4) -> int:
    return round_up(K, max(k_align, 4)) // 4


def kernel_context(K: int, *, m_block: int = 1, k_align: int = 4) -> dict[str, int]:
    """What a kernel template needs to walk this layout: bytes a row, K padded to whole bytes."""
    rb = row_bytes(K, k_align)
    return {"row_bytes": rb, "k_pad": rb * 4}


def nbytes(M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> int:
    return M * row_bytes(K, k_align)


def pack(w_q: np.ndarray, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    m, k = w_q.shape
    kp = row_bytes(k, k_align) * 4
    codes = np.ones((m, kp), dtype=np.uint8)
    codes[:, :k] = (w_q + 1).astype(np.uint8)
    c = codes.reshape(m, kp // 4, 4)
    return (c[..., 0] | (c[..., 1] << 2) | (c[..., 2] << 4) | (c[..., 3] << 6)).astype(np.uint8).ravel()


def unpack(packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    b = packed.reshape(M, row_bytes(K, k_align))
    codes = np.stack([(b >> s) & 3 for s in (0, 2, 4, 6)], axis=-1).reshape(M, -1)
    if np.any(codes == 3):
        raise bad_code("i2", "code 3")
    return (codes[:, :K].astype(np.int8) - 1).astype(np.int8)


def describe(M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> str:
    s = row_bytes(K, k_align)
    return (f"i2: 2 bits a weight, code = w + 1 (0, 1, 2), four weights a byte with the first in the low\n"
            f"bits. Row-major, {s} bytes a row (K padded to {s * 4} with code 1 = zero weight):\n"
            f"w[m][k] = ((w[m * {s} + k / 4] >> (2 * (k % 4))) & 3) - 1. Total {nbytes(M, K, k_align=k_align)} bytes.")
