"""tl1: pairs of weights (w0, w1) -> a 4-bit index 3*(w0+1) + (w1+1) in 0..8, two indices a byte.

K is padded to even with a zero weight. m_block = 1: row-major, `ceil(P/2)` bytes a row (P = ceil(K/2)
pairs), pair p in byte p/2, even p in the low nibble. m_block > 1: rows in blocks of m_block (M padded
with zero rows); block b is `P * m_block/2` bytes at `b * P * m_block/2`; inside it pair p is
m_block/2 bytes, byte i holding row i (low nibble) and row i + m_block/2 (high nibble)."""

from __future__ import annotations

import itertools

import numpy as np

from ternkit.formats import (bad_code, nibbles_blocked, nibbles_rowmajor, pad_to, round_up, unnibble_blocked,
                             unnibble_rowmajor)

GROUP = 2
BITS_PER_WEIGHT = 2.0
SUMMARY = "weight pairs -> 4-bit index 3(w0+1)+(w1+1), two a byte (table-lookup kernels)"
COMPATIBLE = "bitnet.cpp TL1 index scheme"
COMBOS: list[tuple[int, int]] = list(itertools.product((-1, 0, 1), repeat=2))  # index 3*(w0+1)+(w1+1)
ZERO_INDEX = COMBOS.index((0, 0))
LOOKUP: list[tuple[int, ...]] = COMBOS + [(0, 0)] * 7   # the kernels' 16-entry decode table


def groups(K: int) -> int:
    return -(-K // GROUP)


def kernel_context(K: int, *, m_block: int = 1, k_align: int = 4) -> dict[str, int]:
    """What a kernel template needs to walk this layout: pairs, bytes a row (m_block 1) or a block."""
    p = groups(K)
    return {"groups": p, "row_bytes": -(-p // 2), "block_bytes": p * m_block // 2}


def nbytes(M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> int:
    p = groups(K)
    if m_block == 1:
        return M * (-(-p // 2))
    return round_up(M, m_block) // m_block * p * (m_block // 2)


def indices(w_q: np.ndarray) -> np.ndarray:
    m, k = w_q.shape
    w = pad_to(w_q, m, groups(k) * 2, 0).astype(np.int16)
    return (3 * (w[:, 0::2] + 1) + (w[:, 1::2] + 1)).astype(np.uint8)


def pack(w_q: np.ndarray, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    m, _ = w_q.shape
    idx = indices(w_q)
    if m_block == 1:
        return nibbles_rowmajor(idx).ravel()
    idx = pad_to(idx, round_up(m, m_block), idx.shape[1], ZERO_INDEX)
    return nibbles_blocked(idx, m_block).ravel()


def unpack(packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    p = groups(K)
    if m_block == 1:
        idx = unnibble_rowmajor(packed.reshape(M, -(-p // 2)), p)
    else:
        idx = unnibble_blocked(packed.reshape(-1, p, m_block // 2))[:M]
    if np.any(idx > 8):
        raise bad_code("tl1", "an index above 8")
    combos = np.array(COMBOS, dtype=np.int8)
    return combos[idx].reshape(M, 2 * p)[:, :K]


def describe(M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> str:
    p = groups(K)
    head = ("tl1: weight pairs (w[2p], w[2p+1]) -> 4-bit index 3*(w0+1) + (w1+1); K padded to even with a\n"
            f"zero weight ({p} pairs).")
    if m_block == 1:
        return head + (f" Row-major, {-(-p // 2)} bytes a row: pair p of row m is nibble p % 2 (0 = low)\n"
                       f"of byte w[m * {-(-p // 2)} + p / 2]. Total {nbytes(M, K)} bytes.")
    h = m_block // 2
    return head + (f" Rows in blocks of {m_block} (M padded with zero rows); block b starts at\n"
                   f"b * {p * h}; pair p of the block is {h} bytes at offset p * {h}; byte i holds row i (low\n"
                   f"nibble) and row i + {h} (high nibble). Total {nbytes(M, K, m_block=m_block)} bytes.")
