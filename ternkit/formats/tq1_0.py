"""tq1_0: ggml's TQ1_0, byte-identical. A block of 256 weights is 54 bytes: `qs[48]`, `qh[4]`, fp16 `d`.

Five trits `t = w + 1` make a base-3 number `q = 81*t0 + 27*t1 + 9*t2 + 3*t3 + t4` (0..242), stored as
`ceil(q * 256 / 243)`: the byte is a fixed-point fraction of 243, so trit n comes back as
`((byte * 3^n) mod 256) * 3 >> 8` with multiplies and shifts only.
  - qs[0:32]:  byte m holds weights m + 32*n        (n = 0..4, weights 0..159)
  - qs[32:48]: byte m holds weights 160 + m + 16*n  (n = 0..4, weights 160..239)
  - qh[0:4]:   byte m holds weights 240 + m + 4*n   (n = 0..3, t4 = 0; weights 240..255)
1.6875 bits a weight including `d`.
"""

from __future__ import annotations

import numpy as np

from ternkit.formats import ggml

PAYLOAD = 48 + 4
BLOCK_BYTES = PAYLOAD + 2
BITS_PER_WEIGHT = BLOCK_BYTES * 8 / ggml.QK_K
SUMMARY = "ggml TQ1_0: 256-weight blocks, 5 trits a byte as ceil(q*256/243), fp16 d"
COMPATIBLE = "llama.cpp / ggml GGML_TYPE_TQ1_0 (byte-identical)"

_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.uint16)
_PARTS = ((0, 32, 5), (160, 16, 5), (240, 4, 4))  # (first weight, bytes, trits a byte), in storage order


def encode(trits: np.ndarray) -> np.ndarray:
    out = []
    for first, width, n in _PARTS:
        t = trits[:, first:first + width * n].reshape(-1, n, width).astype(np.uint16)
        q = np.einsum("bnm,n->bm", t, _POW3[:n])
        out.append(((q * 256 + 242) // 243).astype(np.uint8))
    return np.concatenate(out, axis=1)


def decode(qs: np.ndarray) -> np.ndarray:
    trits = np.empty((qs.shape[0], ggml.QK_K), dtype=np.uint8)
    pos = 0
    for first, width, n in _PARTS:
        b = qs[:, pos:pos + width].astype(np.uint16)
        pos += width
        for i in range(n):  # trit i: multiply the fraction by 3^i (mod 256), the integer part of *3
            trits[:, first + i * width:first + (i + 1) * width] = (((b * 3 ** i) & 0xFF) * 3) >> 8
    return trits


def nbytes(M: int, K: int) -> int:
    return ggml.nbytes("tq1_0", BLOCK_BYTES, M, K)


def pack(w_q: np.ndarray, scale) -> np.ndarray:
    return ggml.pack("tq1_0", encode, w_q, scale)


def unpack(data: np.ndarray, M: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    return ggml.unpack("tq1_0", decode, PAYLOAD, data, M, K)
