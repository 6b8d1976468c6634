"""The portable scalar C target: plain loops that read the packed weights directly. Every format, any
compiler, any CPU; the correct fallback and the readable statement of each layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.targets._base import TemplateTarget


@dataclass(frozen=True)
class ScalarTarget(TemplateTarget):
    name: str = "scalar"
    description: str = "portable C, every format (i2, tl1, tl2, b3), row-major packed weights"

    formats: ClassVar[tuple[str, ...]] = ("i2", "tl1", "tl2", "b3")
    layouts: ClassVar[dict] = {
        "i2": {"m_block": 1, "k_align": 4},
        "tl1": {"m_block": 1},
        "tl2": {"m_block": 1},
        "b3": {"m_block": 1, "k_align": 160},
    }
    priority: ClassVar[int] = 0

    def cflags(self) -> tuple[str, ...]:
        return ("-O2",)
