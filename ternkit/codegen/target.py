"""A `Target` is one platform a model is lowered for. Two kinds, kept apart:

- `CTarget` (`ternkit/codegen/ctarget.py`): C kernels from templates, for an instruction set (`Isa`),
  built here natively, through SIMDe emulation, or cross-built and run under an emulator;
- `LoweringTarget`: modelled hardware (the NPU) that only consumes the Plan, no C library.

Every target answers the same questions: its formats and priority, whether this machine can run it
(`unavailable_reason`, `runs_natively`, `emulation`), and how a kernel spec is specialised.
Adding a target = one module under `ternkit/codegen/targets/` (discovered automatically) + for a
`CTarget` one template folder `ternkit/templates/<name>/`.

The C ABI every generated kernel keeps is spelled once, in `ternkit/templates/common/abi.j2`:

- `w`: the whole packed weight matrix, laid out by `CTarget.pack(spec, w_q)` (documented per format in
  the generated header);
- `x`: int8 activations [n][K], row-major; `n >= 1` tokens, any count (spec.N is the token count the
  kernel is tuned for: 1 = decode GEMV, >1 = prefill GEMM; both accept any n);
- `y`: int32 outputs [n][M], row-major; the kernel writes columns m in [m0, m1) of every token, so
  callers can split M across threads. m0 and m1 are multiples of `spec.tile("m_block", 1)` (m1 may be M).
- Kernels must not write outside y[t][m0..m1) and must be bit-exact for every K (tails included).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from ternkit.codegen.plan import KernelSpec


@dataclass(frozen=True)
class Target(ABC):
    name: str
    description: str = ""
    priority: ClassVar[int] = 0      # best_native_target prefers the highest available
    # The weight format of one-token (decode) GEMVs under `--decode-format auto` when no tuning result
    # picks one ("" = the same format as the prefill kernels); see `codegen/decode_format.py`.
    decode_format: ClassVar[str] = ""
    # Likewise the prefill GEMMs' format under `--decode-format auto` ("" = the plan's own); a target whose
    # decode format's GEMM is as fast as its default's sets both, and a runtime keeps one packed copy.
    prefill_format: ClassVar[str] = ""

    @property
    @abstractmethod
    def formats(self) -> tuple[str, ...]:
        """The weight formats this target has kernels for; the first is the default."""

    @abstractmethod
    def specialise(self, spec: KernelSpec) -> KernelSpec:
        """Choose the weight format and tiling for a spec (autotuned values override defaults)."""

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when this machine can build and run the target's kernels (natively or emulated), else
        why not and the fix."""

    def runs_natively(self) -> bool:
        """Whether this machine runs the kernels at full speed (not emulated): what bench/tune need."""
        return False

    def emulation(self) -> str | None:
        """How this machine runs the kernels when not natively (e.g. SIMDe), None when native or never."""
        return None


@dataclass(frozen=True)
class LoweringTarget(Target):
    """Modelled hardware: lowering (a Plan) only, no C library to build or run on this machine."""

    def unavailable_reason(self) -> str | None:
        return f"{self.name} is a modelled accelerator with no C kernels (lowering only)"
