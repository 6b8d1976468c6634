"""x86-64 AVX2: TL1 (pairs) and TL2 (triples + sign) table lookups with `_mm256_shuffle_epi8` (int16
sums split into low/high byte planes, so lookups are exact) and an i2 path with `_mm256_maddubs_epi16`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.ctarget import CTarget, FormatKernels, chunk_space
from ternkit.toolchain import cpu
from ternkit.toolchain.isa import Isa

ISA = Isa("AVX2", flags=("-mavx2",), arches=cpu.X86, features=("avx2",))


@dataclass(frozen=True)
class Avx2Target(CTarget):
    name: str = "avx2"
    description: str = "x86-64 AVX2: TL1/TL2 _mm256_shuffle_epi8 lookups, i2 _mm256_maddubs_epi16"

    kernels: ClassVar[dict[str, FormatKernels]] = {
        "i2": FormatKernels({"m_block": 1, "k_align": 128}),     # 32 packed bytes = 128 weights a step
        # 32 rows a lookup; int16 sums of <= 64 pairs / triples
        "tl1": FormatKernels({"m_block": 32, "chunk": 64}, tune_space=chunk_space),
        "tl2": FormatKernels({"m_block": 32, "chunk": 64}, tune_space=chunk_space),
    }
    isa: ClassVar[Isa] = ISA
    priority: ClassVar[int] = 20
