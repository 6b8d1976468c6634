"""x86-64 AVX2: TL1 (pairs) and TL2 (triples + sign) table lookups with `_mm256_shuffle_epi8` (int16
sums split into low/high byte planes, so lookups are exact) and an i2 path with `_mm256_maddubs_epi16`."""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ternkit import formats
from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.targets._base import TemplateTarget

X86 = ("x86_64", "amd64", "i686", "i386")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (Linux /proc/cpuinfo); empty when unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@dataclass(frozen=True)
class Avx2Target(TemplateTarget):
    name: str = "avx2"
    description: str = "x86-64 AVX2: TL1/TL2 _mm256_shuffle_epi8 lookups, i2 _mm256_maddubs_epi16"

    formats: ClassVar[tuple[str, ...]] = ("i2", "tl1", "tl2")
    layouts: ClassVar[dict] = {
        "i2": {"m_block": 1, "k_align": 128},     # 32 packed bytes = 128 weights a step
        "tl1": {"m_block": 32, "chunk": 64},      # 32 rows a lookup; int16 sums of <= 64 pairs
        "tl2": {"m_block": 32, "chunk": 64},      # 32 rows a lookup; int16 sums of <= 64 triples
    }
    priority: ClassVar[int] = 20
    native_arch: ClassVar[tuple[str, ...]] = X86

    def default_format(self, spec: KernelSpec) -> str:
        return "i2"

    def tune_space(self, spec: KernelSpec) -> list[list[dict]]:
        if spec.weight_format in ("tl1", "tl2"):   # the largest chunk keeps int16 sums exact
            top = 32767 // (128 * formats.get_format(spec.weight_format).GROUP)
            return [[{"chunk": c} for c in (64, 32, 16, top)]]
        return []

    def cflags(self) -> tuple[str, ...]:
        return ("-O3", "-mavx2")

    def unavailable_reason(self) -> str | None:
        if platform.machine().lower() not in X86:
            return f"the avx2 target needs an x86-64 CPU, this is {platform.machine()}: use --target scalar"
        flags = cpu_flags()
        if flags and "avx2" not in flags:
            return "this CPU has no AVX2 (no 'avx2' in /proc/cpuinfo flags): use --target scalar"
        return None
