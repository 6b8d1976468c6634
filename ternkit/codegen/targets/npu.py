"""The `npu` target: lowering for the multiplier-free NPU model (`ternkit.sim`). Its kernels are the
array's tile schedule, not CPU code: the simulator and the generated C cycle model
(`ternkit/templates/npu/`) consume the plan; `ternkit generate`/CPU runtimes refuse it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.target import LoweringTarget
from ternkit.errors import ShapeError


@dataclass(frozen=True)
class NpuTarget(LoweringTarget):
    name: str = "npu"
    description: str = "multiplier-free adder-tree NPU (simulated: ternkit simulate)"
    priority: ClassVar[int] = -1

    @property
    def formats(self) -> tuple[str, ...]:
        return ("i2",)

    def specialise(self, spec: KernelSpec) -> KernelSpec:
        if spec.M < 1 or spec.K < 1 or spec.N < 1:
            raise ShapeError(f"kernel shape must be positive, got M={spec.M} K={spec.K} N={spec.N}")
        return dataclasses.replace(spec, weight_format=spec.weight_format or "i2")

    def unavailable_reason(self) -> str | None:
        return "npu is a simulated accelerator, not a CPU target: use `ternkit simulate MODEL --npu CONFIG`"
