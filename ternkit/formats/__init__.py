"""Ternary weight packings, one module each (`i2`, `tl1`, `tl2`): pack/unpack in numpy.

Every packing takes `w_q` int8 [M, K] in {-1, 0, +1} and returns a 1-D uint8 array. Two layout
parameters come from the kernel's tiling:

- `m_block`: 1 = row-major (row m's bytes are contiguous); > 1 = rows in blocks of `m_block`
  (M padded with zero rows), groups interleaved across the rows of a block so that a SIMD kernel
  loads the indices of `m_block` rows for one group with one load (table-lookup formats only).
- `k_align`: K is padded with zero weights to a multiple of it (i2 only; the row stride in bytes is
  `round_up(K, k_align) / 4`).
"""

from __future__ import annotations

import importlib

import numpy as np

from ternkit.errors import ShapeError, TernkitError
from ternkit.reference.quant import check_ternary

FORMATS = ("i2", "tl1", "tl2")


def get_format(name: str):
    if name not in FORMATS:
        raise TernkitError(f"unknown weight format {name!r}: use one of {', '.join(FORMATS)}")
    return importlib.import_module(f"ternkit.formats.{name}")


def pack(name: str, w_q: np.ndarray, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    w_q = np.asarray(w_q)
    if w_q.ndim != 2 or w_q.size == 0:
        raise ShapeError(f"weights must be a non-empty 2-D matrix [M, K], got shape {w_q.shape}")
    check_ternary(w_q)
    return get_format(name).pack(w_q, m_block=m_block, k_align=k_align)


def unpack(name: str, packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = 4) -> np.ndarray:
    return get_format(name).unpack(np.asarray(packed, dtype=np.uint8), M, K, m_block=m_block, k_align=k_align)


def round_up(a: int, b: int) -> int:
    return -(-a // b) * b


def pad_to(a: np.ndarray, rows: int, cols: int, value: int) -> np.ndarray:
    """Pad a 2-D array at the end of both axes with `value`."""
    out = np.full((rows, cols), value, dtype=a.dtype)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def nibbles_rowmajor(idx: np.ndarray) -> np.ndarray:
    """[M, G] 4-bit values -> [M, ceil(G/2)] bytes: group g in byte g//2, even g in the low nibble."""
    m, g = idx.shape
    idx = pad_to(idx, m, round_up(g, 2), 0)
    return (idx[:, 0::2] | (idx[:, 1::2] << 4)).astype(np.uint8)


def unnibble_rowmajor(b: np.ndarray, groups: int) -> np.ndarray:
    out = np.empty((b.shape[0], b.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = b & 15
    out[:, 1::2] = b >> 4
    return out[:, :groups]


def nibbles_blocked(idx: np.ndarray, m_block: int) -> np.ndarray:
    """[Mp, G] (Mp a multiple of m_block) -> [Mp/m_block, G, m_block/2] bytes: byte i of (block, g)
    holds row i of the block in its low nibble and row i + m_block/2 in its high nibble."""
    mp, g = idx.shape
    h = m_block // 2
    t = idx.reshape(mp // m_block, m_block, g).transpose(0, 2, 1)
    return (t[:, :, :h] | (t[:, :, h:] << 4)).astype(np.uint8)


def unnibble_blocked(b: np.ndarray) -> np.ndarray:
    """Inverse of nibbles_blocked: [B, G, m_block/2] -> [B*m_block, G]."""
    t = np.concatenate([b & 15, b >> 4], axis=2)  # [B, G, m_block]
    nb, g, mb = t.shape
    return t.transpose(0, 2, 1).reshape(nb * mb, g)
