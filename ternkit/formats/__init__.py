"""Ternary weight packings, one module each: pack/unpack in numpy, exact round trips.

Kernel formats (`i2`, `tl1`, `tl2`, `b3`) are what the generated kernels read; the ggml formats (`tq1_0`,
`tq2_0`) are byte-identical to llama.cpp's blocks and carry fp16 block scales (`pack(..., scale=)`,
`unpack` returns `(w_q, scales)`). Every packing takes `w_q` int8 [M, K] in {-1, 0, +1} and returns a
1-D uint8 array. Each module has `BITS_PER_WEIGHT`, `SUMMARY` (one line) and `nbytes(M, K, ...)`; a
kernel format also owns what every target's kernel templates read from it: `kernel_context(K, ...)`
(row/group/block byte counts) and `LOOKUP` (its 16-entry decode table, [] when codes decode
arithmetically), so a target never branches on the format.
Two layout parameters of the kernel formats come from the kernel's tiling:

- `m_block`: 1 = row-major (row m's bytes are contiguous); > 1 = rows in blocks of `m_block`
  (M padded with zero rows), groups interleaved across the rows of a block so that a SIMD kernel
  loads the indices of `m_block` rows for one group with one load (table-lookup formats only).
- `k_align`: K is padded with zero weights to a multiple of it (i2 and b3; the row stride in bytes is
  `round_up(K, k_align) / 4`, b3 `/ 5`).
- `sign_unit` (tl2 only, with m_block > 1): 0 = each group's sign bytes follow its index bytes; 8 = groups
  in units of 8 whose sign bits share one byte a row (see `tl2`).
"""

from __future__ import annotations

import importlib

import numpy as np

from ternkit.errors import ShapeError, TernkitError
from ternkit.reference.quant import check_ternary

KERNEL_FORMATS = ("i2", "tl1", "tl2", "b3")
GGML_FORMATS = ("tq1_0", "tq2_0")
FORMATS = KERNEL_FORMATS + GGML_FORMATS


def get_format(name: str):
    key = name.lower() if isinstance(name, str) else name
    if key not in FORMATS:
        raise TernkitError(f"unknown weight format {name!r}: use one of {', '.join(FORMATS)}")
    return importlib.import_module(f"ternkit.formats.{key}")


def _layout(name: str, m_block: int, k_align: int, sign_unit: int) -> dict:
    if sign_unit and name != "tl2":
        raise TernkitError(f"{name}: sign_unit is a tl2 layout parameter, got sign_unit={sign_unit}")
    return {"m_block": m_block, "k_align": k_align, **({"sign_unit": sign_unit} if sign_unit else {})}


def pack(name: str, w_q: np.ndarray, scale=None, *, m_block: int = 1, k_align: int = 4,
         sign_unit: int = 0) -> np.ndarray:
    """Pack a ternary matrix. `scale` (one number or [M, K/256]) is required by the ggml formats only."""
    fmt, name = get_format(name), name.lower()
    w_q = np.asarray(w_q)
    if w_q.ndim != 2 or w_q.size == 0:
        raise ShapeError(f"{name}: weights must be a non-empty 2-D matrix [M, K], got shape {w_q.shape}")
    check_ternary(w_q, f"{name}: w_q")
    if name in GGML_FORMATS:
        if scale is None:
            raise ShapeError(f"{name}: stores fp16 block scales: pass scale= (one number or [M, K/256])")
        return fmt.pack(w_q, scale)
    return fmt.pack(w_q, **_layout(name, m_block, k_align, sign_unit))


def unpack(name: str, packed: np.ndarray, M: int, K: int, *, m_block: int = 1, k_align: int = 4, sign_unit: int = 0):
    """Exact inverse of `pack`: int8 [M, K] (ggml formats: `(w_q, scales float32 [M, K/256])`).
    A wrong length or a code no ternary weight packs to raises ShapeError."""
    fmt, name = get_format(name), name.lower()
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise ShapeError(f"{name}: packed data must be a 1-D uint8 array, got {packed.dtype} {packed.shape}")
    if not (isinstance(M, (int, np.integer)) and isinstance(K, (int, np.integer)) and M > 0 and K > 0):
        raise ShapeError(f"{name}: M and K must be positive ints, got {M!r}, {K!r}")
    kw = {} if name in GGML_FORMATS else _layout(name, m_block, k_align, sign_unit)
    want = fmt.nbytes(M, K, **kw)
    if packed.size != want:
        raise ShapeError(f"{name}: packed data has {packed.size} bytes but a {M}x{K} matrix needs {want}")
    return fmt.unpack(packed, M, K, **kw)


def bits_per_weight(name: str) -> float:
    return get_format(name).BITS_PER_WEIGHT


def bad_code(name: str, what: str) -> ShapeError:
    return ShapeError(f"{name}: packed data holds {what}, which no ternary weight packs to (corrupt or wrong format)")


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
