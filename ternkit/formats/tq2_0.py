"""tq2_0: ggml's TQ2_0, byte-identical. A block of 256 weights is 66 bytes: `qs[64]` then fp16 `d`.

Code `w + 1` in 2 bits. The block is two halves of 128 weights; byte `32*h + m` of qs holds weights
`128*h + 32*n + m` at bits `2*n` (n = 0..3), so one 32-byte load and a shift give 32 consecutive
weights. 2.0625 bits a weight including `d`.
"""

from __future__ import annotations

import numpy as np

from ternkit.formats import ggml

PAYLOAD = ggml.QK_K // 4
BLOCK_BYTES = PAYLOAD + 2
BITS_PER_WEIGHT = BLOCK_BYTES * 8 / ggml.QK_K
SUMMARY = "ggml TQ2_0: 256-weight blocks, 2-bit codes w+1 (byte 32h+m = weights 128h+32n+m), fp16 d"
COMPATIBLE = "llama.cpp / ggml GGML_TYPE_TQ2_0 (byte-identical)"


def encode(trits: np.ndarray) -> np.ndarray:
    t = trits.reshape(-1, 2, 4, 32)  # [block, half, n, m]
    qs = t[:, :, 0] | (t[:, :, 1] << 2) | (t[:, :, 2] << 4) | (t[:, :, 3] << 6)
    return qs.reshape(-1, PAYLOAD).astype(np.uint8)


def decode(qs: np.ndarray) -> np.ndarray:
    q = qs.reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    return (q & 3).reshape(-1, ggml.QK_K)


def nbytes(M: int, K: int) -> int:
    return ggml.nbytes("tq2_0", BLOCK_BYTES, M, K)


def pack(w_q: np.ndarray, scale) -> np.ndarray:
    return ggml.pack("tq2_0", encode, w_q, scale)


def unpack(data: np.ndarray, M: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    return ggml.unpack("tq2_0", decode, PAYLOAD, data, M, K)
