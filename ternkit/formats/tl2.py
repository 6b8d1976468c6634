"""tl2: triples of weights -> a sign bit + a 4-bit index among the 14 triples whose first non-zero
weight is +1 (including all-zero, index 0); the triple is `sign ? -COMBOS[index] : COMBOS[index]`.

K is padded to a multiple of 3 with zero weights (G = ceil(K/3) groups). m_block = 1: row-major, a row
is ceil(G/2) index bytes (group g in byte g/2, even g in the low nibble) followed by ceil(G/8) sign
bytes (group g is bit g%8 of sign byte g/8). m_block > 1 (a multiple of 16): rows in blocks of m_block;
inside a block, group g is m_block/2 index bytes (byte i: row i low nibble, row i + m_block/2 high
nibble) followed by m_block/8 sign bytes (row r is bit r%8 of sign byte r/8).
sign_unit = 8 (with m_block > 1): inside a block, groups in units of 8 (the last unit may be shorter):
the unit's groups' index bytes as above, then m_block sign bytes, byte r holding row r's signs with
group j of the unit in bit 7 - j (so a kernel moves group j's sign to the top bit by j byte doublings)."""

from __future__ import annotations

import itertools

import numpy as np

from ternkit.errors import ShapeError
from ternkit.formats import (bad_code, nibbles_blocked, nibbles_rowmajor, pad_to, round_up, unnibble_blocked,
                             unnibble_rowmajor)

GROUP = 3
UNIT = 8            # groups a sign byte holds in the sign_unit layout
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


def _check_unit(m_block: int, sign_unit: int) -> None:
    if sign_unit not in (0, UNIT) or (sign_unit and m_block == 1):
        raise ShapeError(f"tl2: sign_unit must be 0 or {UNIT} (with m_block > 1), got {sign_unit} (m_block {m_block})")


def units(K: int) -> int:
    return -(-groups(K) // UNIT)


def kernel_context(K: int, *, m_block: int = 1, k_align: int = 4, sign_unit: int = 0) -> dict[str, int]:
    """What a kernel template needs to walk this layout: groups; row-major index/sign bytes a row;
    blocked: bytes a group of a block (index nibbles + sign bits) and a block; sign_unit: units (whole
    ones and the last one's groups), bytes a whole unit."""
    g = groups(K)
    nb, sb = row_bytes(K)
    if sign_unit:
        return {"groups": g, "units": units(K), "full_units": g // UNIT, "tail": g % UNIT,
                "unit_bytes": UNIT * (m_block // 2) + m_block,
                "block_bytes": nbytes(m_block, K, m_block=m_block, sign_unit=sign_unit)}
    group_bytes = m_block // 2 + m_block // 8
    return {"groups": g, "index_bytes": nb, "row_bytes": nb + sb, "group_bytes": group_bytes,
            "block_bytes": g * group_bytes}


def nbytes(M: int, K: int, *, m_block: int = 1, k_align: int = 4, sign_unit: int = 0) -> int:
    _check_unit(m_block, sign_unit)
    if m_block == 1:
        return M * sum(row_bytes(K))
    blocks = round_up(M, m_block) // m_block
    if sign_unit:
        return blocks * (groups(K) * (m_block // 2) + units(K) * m_block)
    return blocks * groups(K) * (m_block // 2 + m_block // 8)


def index_sign(w_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, k = w_q.shape
    w = pad_to(w_q, m, groups(k) * 3, 0).astype(np.int16) + 1
    code = 9 * w[:, 0::3] + 3 * w[:, 1::3] + w[:, 2::3]
    return _INDEX[code], _SIGN[code]


def pack(w_q: np.ndarray, *, m_block: int = 1, k_align: int = 4, sign_unit: int = 0) -> np.ndarray:
    _check_unit(m_block, sign_unit)
    m, _ = w_q.shape
    idx, sign = index_sign(w_q)
    if m_block == 1:
        signs = np.packbits(sign, axis=1, bitorder="little")
        return np.concatenate([nibbles_rowmajor(idx), signs], axis=1).ravel()
    mp = round_up(m, m_block)
    idx = pad_to(idx, mp, idx.shape[1], 0)
    sign = pad_to(sign, mp, sign.shape[1], 0)
    nib = nibbles_blocked(idx, m_block)                                   # [B, G, mb/2]
    if sign_unit:
        return _pack_units(nib, sign.reshape(mp // m_block, m_block, -1))
    s = sign.reshape(mp // m_block, m_block, -1).transpose(0, 2, 1)       # [B, G, mb]
    sb = np.packbits(s, axis=2, bitorder="little")                        # [B, G, mb/8]
    return np.concatenate([nib, sb], axis=2).ravel()


def _pack_units(nib: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """nib [B, G, mb/2] index bytes, sign [B, mb, G] bits -> the sign_unit layout, block by block."""
    parts = []
    for g0 in range(0, nib.shape[1], UNIT):
        unit = sign[:, :, g0:g0 + UNIT]
        unit = np.pad(unit, ((0, 0), (0, 0), (0, UNIT - unit.shape[2])))
        parts += [nib[:, g0:g0 + UNIT].reshape(nib.shape[0], -1),
                  np.packbits(unit, axis=2, bitorder="big")[:, :, 0]]          # group j -> bit 7 - j
    return np.concatenate(parts, axis=1).ravel()


def _unpack_units(packed: np.ndarray, g: int, m_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of _pack_units: (index bytes [B, G, mb/2], sign bits [B, mb, G])."""
    h = m_block // 2
    blocks = packed.reshape(-1, g * h + -(-g // UNIT) * m_block)
    nib, sign, at = [], [], 0
    for g0 in range(0, g, UNIT):
        ng = min(UNIT, g - g0)
        nib.append(blocks[:, at:at + ng * h].reshape(-1, ng, h))
        bits = np.unpackbits(blocks[:, at + ng * h:at + ng * h + m_block, None], axis=2, bitorder="big")
        if bits[:, :, ng:].any():
            raise bad_code("tl2", "a sign bit for a group past K")
        sign.append(bits[:, :, :ng])
        at += ng * h + m_block
    return np.concatenate(nib, axis=1), np.concatenate(sign, axis=2)


def unpack(packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = 4,
           sign_unit: int = 0) -> np.ndarray:
    _check_unit(m_block, sign_unit)
    g = groups(K)
    if m_block == 1:
        nb, sb = row_bytes(K)
        rows = packed.reshape(M, nb + sb)
        idx = unnibble_rowmajor(rows[:, :nb], g)
        sign = np.unpackbits(rows[:, nb:], axis=1, bitorder="little")[:, :g]
    elif sign_unit:
        nib, s = _unpack_units(packed, g, m_block)
        idx = unnibble_blocked(nib)[:M]
        sign = s.reshape(-1, g)[:M]
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


def describe(M: int, K: int, *, m_block: int = 1, k_align: int = 4, sign_unit: int = 0) -> str:
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
    if sign_unit:
        u, tail = units(K), g % UNIT or UNIT
        return head + (f" Rows in blocks of {m_block} (M padded with zero rows), block b at\n"
                       f"b * {nbytes(m_block, K, m_block=m_block, sign_unit=sign_unit)}; groups in {u} units of {UNIT} "
                       f"(the last one {tail}), each unit {UNIT * h + m_block} bytes\n"
                       f"({tail * h + m_block} the last): for each group {h} index bytes (byte i holds row i in the low "
                       f"nibble,\nrow i + {h} in the high nibble), then {m_block} sign bytes (byte r holds row r, "
                       f"group j of the unit\nin bit 7 - j). Total {nbytes(M, K, m_block=m_block, sign_unit=sign_unit)} "
                       f"bytes.")
    return head + (f" Rows in blocks of {m_block} (M padded with zero rows), block b at\n"
                   f"b * {g * (h + s)}; group g of a block is {h + s} bytes at g * {h + s}: {h} index bytes (byte i\n"
                   f"holds row i in the low nibble, row i + {h} in the high nibble) then {s} sign bytes (row r\n"
                   f"is bit r % 8 of sign byte r / 8). Total {nbytes(M, K, m_block=m_block)} bytes.")
