"""b3: base 3, five weights a byte (1.6 bits a weight), laid out for SIMD decoding.

Row-major; K is padded with zero weights to a multiple of `k_align` (a multiple of 160), a row is
`round_up(K, k_align) / 5` bytes. A block of 160 weights is 32 bytes: byte i of block b holds the
trits t_j = w + 1 of weights 160b + 32j + i, j = 0..4, as the base-3 number v = 81 t_0 + 27 t_1 + 9 t_2
+ 3 t_3 + t_4 stored as the fixed-point fraction q = ceil(v * 256 / 243) (ggml TQ1_0's encoding), so that
t_j = ((q * 3^j mod 256) * 3) >> 8: multiplies by 3 within a byte and the top bits, no division.
Decoding digit j of a whole 32-byte block gives the trits of 32 consecutive weights (no regrouping of
the activations)."""

from __future__ import annotations

import numpy as np

from ternkit.formats import bad_code, round_up

GROUP = 5            # weights a byte
BLOCK = 160          # weights a block of 32 bytes
BITS_PER_WEIGHT = 1.6
SUMMARY = "base 3, five weights a byte as ceil(v*256/243) (1.6 bits), blocks of 160 weights, row-major"
COMPATIBLE = "ternkit's own (TQ1_0's byte encoding, SIMD-friendly weight order, no embedded scale)"

LOOKUP: list[tuple[int, ...]] = []   # digits decode arithmetically: no lookup table

_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.int32)


def row_bytes(K: int, k_align: int = BLOCK) -> int:
    return round_up(K, round_up(max(k_align, BLOCK), BLOCK)) // GROUP


def kernel_context(K: int, *, m_block: int = 1, k_align: int = BLOCK) -> dict[str, int]:
    """What a kernel template needs to walk this layout: bytes a row, K padded, 32-byte blocks a row."""
    rb = row_bytes(K, k_align)
    return {"row_bytes": rb, "k_pad": rb * GROUP, "blocks": rb // 32}


def nbytes(M: int, K: int, *, m_block: int = 1, k_align: int = BLOCK) -> int:
    return M * row_bytes(K, k_align)


def pack(w_q: np.ndarray, *, m_block: int = 1, k_align: int = BLOCK) -> np.ndarray:
    m, k = w_q.shape
    kp = row_bytes(k, k_align) * GROUP
    trits = np.ones((m, kp), dtype=np.int32)
    trits[:, :k] = w_q.astype(np.int32) + 1
    t = trits.reshape(m, kp // BLOCK, 5, 32)                 # [row, block, j, i]
    v = np.einsum("rbji,j->rbi", t, _POW3)
    return ((v * 256 + 242) // 243).astype(np.uint8).ravel()


def unpack(packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = BLOCK) -> np.ndarray:
    q = packed.reshape(M, -1, 1, 32).astype(np.int32)       # [row, block, 1, i]
    if np.any(q != (((q * 243) >> 8) * 256 + 242) // 243):
        raise bad_code("b3", "a byte that is not ceil(v * 256 / 243) for any v < 243")
    pow3 = 3 ** np.arange(5, dtype=np.int32)[None, None, :, None]
    trits = ((((q * pow3) & 0xFF) * 3) >> 8).reshape(M, -1)  # [row, block * 5 * 32]
    return (trits[:, :K] - 1).astype(np.int8)


def describe(M: int, K: int, *, m_block: int = 1, k_align: int = BLOCK) -> str:
    s = row_bytes(K, k_align)
    return (f"b3: base 3, five weights a byte (1.6 bits), row-major, {s} bytes a row (K padded to {s * GROUP}\n"
            f"with zero weights). Byte i of block b (32 bytes) holds weights 160b + 32j + i, j = 0..4, as\n"
            f"q = ceil(v * 256 / 243), v = sum_j 3^(4 - j) (w_j + 1); w_j = (((q * 3^j) & 255) * 3 >> 8) - 1.\n"
            f"Total {nbytes(M, K, k_align=k_align)} bytes.")
