"""tl2: triples of weights -> a sign bit + a 4-bit index among the 14 triples whose first non-zero
weight is +1 (including all-zero, index 0); the triple is `sign ? -COMBOS[index] : COMBOS[index]`.

K is padded to a multiple of 3 with zero weights (G = ceil(K/3) groups). m_block = 1: row-major, a row
is ceil(G/2) index bytes (group g in byte g/2, even g in the low nibble) followed by ceil(G/8) sign
bytes (group g is bit g%8 of sign byte g/8). m_block > 1 (a multiple of 16): rows in blocks of m_block;
inside a block, group g is m_block/2 index bytes (byte i: row i low nibble, row i + m_block/2 high
nibble) followed by m_block/8 sign bytes (row r is bit r%8 of sign byte r/8)."""

from __future__ import annotations

import itertools

import numpy as np

from ternkit.formats import (bad_code, nibbles_blocked, nibbles_rowmajor, pad_to, round_up, unnibble_blocked,
                             unnibble_rowmajor)

GROUP = 3
BITS_PER_WEIGHT = 5 / 3
SUMMARY = "weight triples -> sign bit + 4-bit index of 14 non-negative-first triples (1.67 bits a weight)"
COMPATIBLE = "bitnet.cpp TL2 index scheme"


def _canonical(t: tuple[int, ...]) -> bool:
    nz = [v for v in t if v]
    return not nz or nz[0] == 1


COMBOS: list[tuple[int, int, int]] = [t for t in itertools.product((-1, 0, 1), repeat=3) if _canonical(t)]
assert len(COMBOS) == 14 and COMBOS[0] == (0, 0, 0)
LOOKUP: list[tuple[int, ...]] = COMBOS + [(0, 0, 0)] * 2   # the kernels' 16-entry decode table


def _lookup() -> tuple[np.ndarray, np.ndarray]:
    """(index, sign) for each of the 27 triples, addressed by 9*(w0+1) + 3*(w1+1) + (w2+1)."""
    index = np.zeros(27, dtype=np.uint8)
    sign = np.zeros(27, dtype=np.uint8)
    for t in itertools.product((-1, 0, 1), repeat=3):
        code = 9 * (t[0] + 1) + 3 * (t[1] + 1) + (t[2] + 1)
        if _canonical(t):
            index[code] = COMBOS.index(t)
        else:
            index[code] = COMBOS.index(tuple(-v for v in t))
            sign[code] = 1
    return index, sign


_INDEX, _SIGN = _lookup()


def groups(K: int) -> int:
    return -(-K // GROUP)


def row_bytes(K: int) -> tuple[int, int]:
    g = groups(K)
    return -(-g // 2), -(-g // 8)


def kernel_context(K: int, *, m_block: int = 1, k_align: int = 4) -> dict[str, int]:
    """What a kernel template needs to walk this layout: groups; row-major index/sign bytes a row;
    blocked: bytes a group of a block (index nibbles + sign bits) and a block."""
    g = groups(K)
    nb, sb = row_bytes(K)
    group_bytes = m_block // 2 + m_block // 8
    return {"groups": g, "index_bytes": nb, "row_bytes": nb + sb, "group_bytes": group_bytes,
            "block_bytes": g * group_bytes}


def nbytes(M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> int:
    if m_block == 1:
        return M * sum(row_bytes(K))
    return round_up(M, m_block) // m_block * groups(K) * (m_block // 2 + m_block // 8)


def index_sign(w_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, k = w_q.shape
    w = pad_to(w_q, m, groups(k) * 3, 0).astype(np.int16) + 1
    code = 9 * w[:, 0::3] + 3 * w[:, 1::3] + w[:, 2::3]
    return _INDEX[code], _SIGN[code]


def pack(w_q: np.ndarray, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    m, _ = w_q.shape
    idx, sign = index_sign(w_q)
    if m_block == 1:
        signs = np.packbits(sign, axis=1, bitorder="little")
        return np.concatenate([nibbles_rowmajor(idx), signs], axis=1).ravel()
    mp = round_up(m, m_block)
    idx = pad_to(idx, mp, idx.shape[1], 0)
    sign = pad_to(sign, mp, sign.shape[1], 0)
    nib = nibbles_blocked(idx, m_block)                                   # [B, G, mb/2]
    s = sign.reshape(mp // m_block, m_block, -1).transpose(0, 2, 1)       # [B, G, mb]
    sb = np.packbits(s, axis=2, bitorder="little")                        # [B, G, mb/8]
    return np.concatenate([nib, sb], axis=2).ravel()


def unpack(packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    g = groups(K)
    if m_block == 1:
        nb, sb = row_bytes(K)
        rows = packed.reshape(M, nb + sb)
        idx = unnibble_rowmajor(rows[:, :nb], g)
        sign = np.unpackbits(rows[:, nb:], axis=1, bitorder="little")[:, :g]
    else:
        h = m_block // 2
        t = packed.reshape(-1, g, h + m_block // 8)
        idx = unnibble_blocked(t[:, :, :h])[:M]
        s = np.unpackbits(t[:, :, h:], axis=2, bitorder="little")         # [B, G, mb]
        sign = s.transpose(0, 2, 1).reshape(-1, g)[:M]
    if np.any(idx > 13):
        raise bad_code("tl2", "an index above 13")
    combos = np.array(COMBOS, dtype=np.int8)[idx]                         # [M, G, 3]
    w = np.where(sign[..., None] == 1, -combos, combos).astype(np.int8)
    return w.reshape(M, 3 * g)[:, :K]


def describe(M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> str:
    g = groups(K)
    head = ("tl2: weight triples -> sign bit s + 4-bit index i into the 14 triples whose first non-zero\n"
            f"weight is +1 (TL2_COMBOS, index 0 = all zero); triple = s ? -TL2_COMBOS[i] : TL2_COMBOS[i].\n"
            f"K padded to a multiple of 3 with zero weights ({g} groups).")
    if m_block == 1:
        nb, sb = row_bytes(K)
        return head + (f" Row-major, {nb + sb} bytes a row: {nb} index bytes\n"
                       f"(group g in byte g / 2, even g in the low nibble) then {sb} sign bytes (group g is bit\n"
                       f"g % 8 of sign byte g / 8). Total {nbytes(M, K)} bytes.")
    h, s = m_block // 2, m_block // 8
    return head + (f" Rows in blocks of {m_block} (M padded with zero rows), block b at\n"
                   f"b * {g * (h + s)}; group g of a block is {h + s} bytes at g * {h + s}: {h} index bytes (byte i\n"
                   f"holds row i in the low nibble, row i + {h} in the high nibble) then {s} sign bytes (row r\n"
                   f"is bit r % 8 of sign byte r / 8). Total {nbytes(M, K, m_block=m_block)} bytes.")
