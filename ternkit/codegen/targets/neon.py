"""AArch64 NEON: TL1 (pairs) and TL2 (triples + sign) table lookups with `vqtbl1q_s8` (int16 sums as
low/high byte planes, so lookups are exact) and an i2 path with `vdotq_s32` (armv8.2-a+dotprod).

On an x86 machine the kernels are built with SIMDe (NEON intrinsics emulated in portable C) for
in-process tests, and cross-built with `aarch64-linux-gnu-gcc` to run under `qemu-aarch64`
(`ternkit.runtime.cross`, the standalone runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.ctarget import CTarget, FormatKernels
from ternkit.toolchain import cpu
from ternkit.toolchain.isa import Cross, Isa

ISA = Isa("NEON", flags=("-march=armv8.2-a+dotprod",), arches=cpu.ARM64, simde=True,
          cross=Cross("aarch64-linux-gnu-gcc", "qemu-aarch64", "/usr/aarch64-linux-gnu",
                      ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-user")))


@dataclass(frozen=True)
class NeonTarget(CTarget):
    name: str = "neon"
    description: str = "AArch64 NEON: TL1/TL2 vqtbl1q_s8 lookups, i2 vdotq_s32 (armv8.2-a+dotprod)"

    kernels: ClassVar[dict[str, FormatKernels]] = {
        "tl2": FormatKernels({"m_block": 32, "chunk": 64}),     # int16 sums of <= 64 triples: |sum| <= 24576
        "tl1": FormatKernels({"m_block": 32, "chunk": 64}),     # int16 sums of <= 64 pairs: |sum| <= 16384
        "i2": FormatKernels({"m_block": 1, "k_align": 64}),     # 16 packed bytes = 64 weights a step
    }
    isa: ClassVar[Isa] = ISA
    priority: ClassVar[int] = 20
