"""AArch64 NEON: TL1 (pairs) and TL2 (triples + sign) table lookups with `vqtbl1q_s8` (int16 sums as
low/high byte planes, so lookups are exact) and an i2 path with `vdotq_s32` (armv8.2-a+dotprod).

On an x86 machine the kernels are built with SIMDe (NEON intrinsics emulated in portable C) for
in-process tests, and cross-built with `aarch64-linux-gnu-gcc -static` to run under `qemu-aarch64`
(`ternkit.runtime.cross`)."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.targets._base import WARNINGS, TemplateTarget
from ternkit.errors import ToolchainError

ARM64 = ("aarch64", "arm64")
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"


def simde_include() -> str | None:
    try:
        import simde_py
    except ImportError:
        return None
    return simde_py.get_include()


@dataclass(frozen=True)
class NeonTarget(TemplateTarget):
    name: str = "neon"
    description: str = "AArch64 NEON: TL1/TL2 vqtbl1q_s8 lookups, i2 vdotq_s32 (armv8.2-a+dotprod)"

    formats: ClassVar[tuple[str, ...]] = ("tl2", "tl1", "i2")
    layouts: ClassVar[dict] = {
        "i2": {"m_block": 1, "k_align": 64},      # 16 packed bytes = 64 weights a step
        "tl1": {"m_block": 32, "chunk": 64},      # int16 sums of <= 64 pairs: |sum| <= 16384
        "tl2": {"m_block": 32, "chunk": 64},      # int16 sums of <= 64 triples: |sum| <= 24576
    }
    priority: ClassVar[int] = 20
    native_arch: ClassVar[tuple[str, ...]] = ARM64

    def default_format(self, spec: KernelSpec) -> str:
        return "tl2"

    def cflags(self) -> tuple[str, ...]:
        return ("-O3", "-march=armv8.2-a+dotprod")

    def unavailable_reason(self) -> str | None:
        if platform.machine().lower() in ARM64:
            return None
        if simde_include() is None:
            return (f"the neon target needs an AArch64 CPU, or SIMDe to emulate it on {platform.machine()}: "
                    "pip install simde-py")
        return None

    def emulated(self) -> bool:
        return platform.machine().lower() not in ARM64

    def build_options(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        reason = self.unavailable_reason()
        if reason:
            raise ToolchainError(reason)
        if self.emulated():
            return ("-O2", "-DTERNKIT_SIMDE", *WARNINGS), (simde_include(),)
        return (*self.cflags(), *WARNINGS), ()

    def cross_tools(self) -> tuple[str, str]:
        """(compiler, emulator) for running these kernels on a non-AArch64 host."""
        for tool, pkg in ((CROSS_CC, "gcc-aarch64-linux-gnu"), (QEMU, "qemu-user")):
            if shutil.which(tool) is None:
                raise ToolchainError(f"{tool} not found: install it (apt-get install {pkg})")
        return CROSS_CC, QEMU
