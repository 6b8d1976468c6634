"""The faithful ggml TQ2_0 kernel (templates/bench/tq2_0.c.j2): the honest reference point for speed.

It reads weights in ggml's `block_tq2_0` (`ternkit.formats.tq2_0`, byte-identical: 2-bit codes and an
fp16 scale per 256 weights) and activations in ggml's `block_q8_K` (a float scale, 256 int8 values
and 16 int16 block sums per 256), and does per block the scale work ggml does, returning float
results. The generated kernels return the integer core `y_int` instead (no per-block scales: the
b1.58 contract has one scale per tensor), so they do a little less work; ratios against this kernel
say how they compare with TQ2_0 as llama.cpp runs it.

What is exact: `model()` repeats the kernel's float arithmetic in numpy float32, step for step
(int16 lane sums, int32 pairs, float32 scale products, the lane-wise accumulation over blocks and the
final horizontal sum in the kernel's order), so the kernel's output must equal it bit for bit; with
all scales 1 the result is the integer core `y_int` itself, exactly.

Not timed: quantizing activations to q8_K (ggml does it once per call, O(K), before the rows).
"""

from __future__ import annotations

import copy
import functools
from typing import Callable

import numpy as np

from ternkit import formats
from ternkit.errors import ShapeError
from ternkit.runtime import pool
from ternkit.toolchain import cpu
from ternkit.toolchain.isa import Isa

QK = 256
Q8_K = np.dtype([("d", "<f4"), ("qs", "i1", QK), ("bsums", "<i2", 16)])   # ggml block_q8_K, 292 bytes
ISA = Isa("AVX2 + F16C", flags=("-mavx2", "-mf16c"), arches=cpu.X86, features=("avx2", "f16c"))   # no -mfma: see the template


def unavailable_reason() -> str | None:
    """None when this machine runs the kernel (AVX2 + F16C, as ggml's AVX2 path), else why not."""
    return ISA.missing("ggml TQ2_0 kernel")


def padded_k(K: int) -> int:
    return -(-K // QK) * QK


def q8_K_blocks(x_q: np.ndarray, scale=1.0) -> np.ndarray:
    """Activations int8 [n, K] as ggml q8_K blocks [n, K/256] (K zero-padded to whole blocks);
    `scale`: the float `d` of every block (one number or [n, K/256])."""
    x_q = np.asarray(x_q)
    if x_q.dtype != np.int8 or x_q.ndim != 2:
        raise ShapeError(f"q8_K activations must be int8 [n, K], got {x_q.dtype} {x_q.shape}")
    n, K = x_q.shape
    kp = padded_k(K)
    qs = np.zeros((n, kp), np.int8)
    qs[:, :K] = x_q
    blocks = np.zeros((n, kp // QK), Q8_K)
    blocks["qs"] = qs.reshape(n, -1, QK)
    blocks["bsums"] = qs.reshape(n, -1, 16, 16).astype(np.int16).sum(axis=-1)
    blocks["d"] = np.broadcast_to(np.asarray(scale, np.float32), (n, kp // QK))
    return blocks


def pack_weights(w_q: np.ndarray, scale=1.0) -> np.ndarray:
    """Ternary weights [M, K] as ggml TQ2_0 rows (K zero-padded to whole blocks; fp16 block scales)."""
    M, K = w_q.shape
    padded = np.zeros((M, padded_k(K)), np.int8)
    padded[:, :K] = w_q
    return formats.pack("tq2_0", padded, scale)


@functools.cache
def _module(M: int, blocks: int):
    from ternkit.codegen.jinja import abi, render
    from ternkit.toolchain.cffi_build import build_module

    cdef = f"{abi().kernel('ternkit_tq2_0')};"
    return build_module("tq2_0", cdef, render("bench/tq2_0.c.j2", M=M, blocks=blocks), flags=("-O3", *ISA.flags))


class Tq2_0Kernel:
    """ggml TQ2_0 x q8_K for one weight matrix: `kern(x_blocks, threads=...)` -> float32 [n, M]."""

    def __init__(self, w_q: np.ndarray, scale=1.0) -> None:
        self.M, self.K = w_q.shape
        self.blocks = padded_k(self.K) // QK
        self._bind(pack_weights(w_q, scale))

    def _bind(self, packed: np.ndarray) -> None:
        mod = self._mod = _module(self.M, self.blocks)
        self.packed = packed
        self._runner = pool.Runner(mod.ffi, mod.lib, "ternkit_tq2_0", packed)
        self._edges: dict[int, tuple[int, ...]] = {}

    def with_packed(self, packed: np.ndarray) -> Tq2_0Kernel:
        """The same kernel on another copy of its packed weights (DRAM benchmarks)."""
        other = copy.copy(self)
        other._bind(packed)
        return other

    def threads_for(self, n: int, threads: int | str = "auto") -> int:
        return pool.choose_threads(pool.check_threads(threads), self.packed.nbytes * n, self.M)

    def _check(self, x_blocks: np.ndarray) -> None:
        if x_blocks.dtype != Q8_K or x_blocks.ndim != 2 or x_blocks.shape[1] != self.blocks \
                or not x_blocks.flags.c_contiguous:
            raise ShapeError(f"tq2_0: activations must be C-contiguous q8_K blocks [n, {self.blocks}] "
                             "(use q8_K_blocks)")

    def bound(self, x_blocks: np.ndarray, out: np.ndarray) -> Callable[[], object]:
        """The C call on one thread with its operands checked and bound once (benchmarks time the kernel,
        not Python)."""
        self._check(x_blocks)
        n = x_blocks.shape[0]
        if out.dtype != np.float32 or out.shape != (n, self.M) or not out.flags.c_contiguous:
            raise ShapeError(f"tq2_0: out must be C-contiguous float32 [{n}, {self.M}]")
        ffi = self._mod.ffi
        return functools.partial(self._mod.lib.ternkit_tq2_0, ffi.from_buffer("uint8_t[]", self.packed),
                                 ffi.from_buffer("int8_t[]", x_blocks.view(np.int8)),
                                 ffi.from_buffer("int32_t[]", out, require_writable=True), n, 0, self.M)

    def __call__(self, x_blocks: np.ndarray, *, threads: int | str = 1, out: np.ndarray | None = None) -> np.ndarray:
        self._check(x_blocks)
        n = x_blocks.shape[0]
        if out is None:
            out = np.empty((n, self.M), np.float32)
        parts = self.threads_for(n, threads)
        edges = self._edges.get(parts)
        if edges is None:
            edges = self._edges[parts] = tuple(self.M * i // parts for i in range(parts + 1))
        self._runner.run(x_blocks.view(np.int8), out, n, edges, parts)
        return out


def model(w_q: np.ndarray, w_scale, x_blocks: np.ndarray) -> np.ndarray:
    """The kernel's arithmetic in numpy float32, in the kernel's order: float32 [n, M]."""
    M, K = w_q.shape
    packed = pack_weights(w_q, w_scale)
    trits, d_w = formats.unpack("tq2_0", packed, M, padded_k(K))          # w_q padded, fp16 d as f32
    nb = d_w.shape[1]
    codes = (trits.astype(np.int32) + 1).reshape(M, nb, 2, 4, 16, 2)   # [m, b, half, plane, lane, pair]
    xs = x_blocks["qs"].astype(np.int32).reshape(-1, nb, 2, 4, 16, 2)  # [t, b, half, plane, lane, pair]
    lanes16 = np.einsum("mbhplj,tbhplj->tmbl", codes, xs) - x_blocks["bsums"].astype(np.int32)[:, None]
    lanes32 = lanes16.reshape(*lanes16.shape[:3], 8, 2).sum(-1).astype(np.float32)   # madd pairs
    d = d_w.astype(np.float32)[None, :, :] * x_blocks["d"].astype(np.float32)[:, None, :]
    acc = np.zeros((x_blocks.shape[0], M, 8), np.float32)
    for b in range(nb):
        acc = lanes32[:, :, b] * d[:, :, b, None] + acc
    s = acc[..., 4:] + acc[..., :4]
    return (s[..., 0] + s[..., 2]) + (s[..., 1] + s[..., 3])
