"""The portable scalar C target: plain loops that read the packed weights directly. Every format, any
compiler, any CPU; the correct fallback and the readable statement of each layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.ctarget import CTarget, FormatKernels
from ternkit.toolchain.isa import Isa


@dataclass(frozen=True)
class ScalarTarget(CTarget):
    name: str = "scalar"
    description: str = "portable C, every format (i2, tl1, tl2, b3), row-major packed weights"

    kernels: ClassVar[dict[str, FormatKernels]] = {
        "i2": FormatKernels({"m_block": 1, "k_align": 4}),
        "tl1": FormatKernels({"m_block": 1}),
        "tl2": FormatKernels({"m_block": 1}),
        "b3": FormatKernels({"m_block": 1, "k_align": 160}),
    }
    isa: ClassVar[Isa] = Isa("C")
    opt: ClassVar[str] = "-O2"
    priority: ClassVar[int] = 0
