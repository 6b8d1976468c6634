"""`i2s`: the established AVX2 ternary kernel style of bitnet.cpp's I2_S (2-bit codes w + 1 in groups
of 4 x 32, shift + mask unpack, `_mm256_maddubs_epi16` block by block, one row at a time, no
per-block scales: the integer contract). Never chosen automatically (lowest x86 priority).
It is *not* TQ2_0: it skips TQ2_0's per-block scale work. The faithful TQ2_0 reference point that
`ternkit bench` and `benchmarks/kernel_perf.py` measure against is `ternkit.runtime.ggml_tq2_0`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ternkit import formats
from ternkit.codegen.ctarget import CTarget, FormatKernels
from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.targets import avx2
from ternkit.errors import ShapeError
from ternkit.toolchain.isa import Isa


def tq2_order(K: int) -> np.ndarray:
    """Column permutation: i2 position 4j + l of each 128-weight half holds weight 32l + j (TQ2_0 order)."""
    kp = formats.round_up(K, 256)
    j, l = np.meshgrid(np.arange(32), np.arange(4), indexing="ij")
    half = (32 * l + j).ravel()                  # position 4j + l -> weight 32l + j
    return (np.arange(0, kp, 128)[:, None] + half[None, :]).ravel()


@dataclass(frozen=True)
class I2sTarget(CTarget):
    name: str = "i2s"
    description: str = "x86-64 AVX2, bitnet.cpp I2_S style: 2-bit unpack + _mm256_maddubs_epi16, row by row, no block scales"

    kernels: ClassVar[dict[str, FormatKernels]] = {"i2": FormatKernels({"m_block": 1, "k_align": 256})}
    isa: ClassVar[Isa] = avx2.ISA
    priority: ClassVar[int] = 10

    def pack(self, spec: KernelSpec, w_q: np.ndarray) -> np.ndarray:
        w_q = np.asarray(w_q)
        if w_q.shape != (spec.M, spec.K):
            raise ShapeError(f"{spec.name}: weights must be [{spec.M}, {spec.K}], got {w_q.shape}")
        kp = formats.round_up(spec.K, 256)
        padded = np.zeros((spec.M, kp), dtype=np.int8)
        padded[:, : spec.K] = w_q
        formats.pack("i2", w_q, k_align=256)       # validates the values (ternary) with the usual error
        return formats.pack("i2", padded[:, tq2_order(spec.K)], k_align=256)

    def layout_doc(self, spec: KernelSpec) -> str:
        rb = formats.round_up(spec.K, 256) // 4
        return (f"TQ2_0 order: {rb} bytes a row (K padded to {rb * 4} with zero weights), blocks of 256\n"
                f"weights = two halves of 32 bytes; weight 32l + j of a half is code w + 1 in bits 2l of its byte j.")
