"""A `Target` is one platform: its templates, compiler flags, weight packing and whether this machine
can build and run its kernels. Adding a target = one subclass in its own module under
`ternkit/codegen/targets/` (discovered automatically; template-driven targets derive from
`targets._base.TemplateTarget`) + one template folder `ternkit/templates/<name>/`.

The C ABI every generated kernel keeps, whatever the target:

    void <spec.name>(const uint8_t *w, const int8_t *x, int32_t *y, int32_t n, int32_t m0, int32_t m1);

- `w`: the whole packed weight matrix, laid out by `Target.pack(spec, w_q)` (documented per format in
  the generated header);
- `x`: int8 activations [n][K], row-major; `n >= 1` tokens, any count (spec.N is the token count the
  kernel is tuned for: 1 = decode GEMV, >1 = prefill GEMM; both accept any n);
- `y`: int32 outputs [n][M], row-major; the kernel writes columns m in [m0, m1) of every token, so
  callers can split M across threads. m0 and m1 are multiples of `spec.tile("m_block", 1)` (m1 may be M).
- Kernels must not write outside y[t][m0..m1) and must be bit-exact for every K (tails included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ternkit.codegen.plan import KernelSpec


@dataclass(frozen=True)
class Target:
    name: str
    description: str = ""
    generates_c: ClassVar[bool] = True   # False for modelled hardware (npu): lowering only, no C library

    # -- decisions -------------------------------------------------------------------------------
    def specialise(self, spec: KernelSpec) -> KernelSpec:
        """Choose the weight format and tiling for a spec (autotuned values override defaults)."""
        raise NotImplementedError

    def pack(self, spec: KernelSpec, w_q: np.ndarray) -> np.ndarray:
        """Pack ternary weights [M, K] (int8) into this kernel's layout: a 1-D uint8 array."""
        raise NotImplementedError

    # -- toolchain -------------------------------------------------------------------------------
    def cflags(self) -> tuple[str, ...]:
        return ("-O3",)

    def unavailable_reason(self) -> str | None:
        """None when this machine can build and run the target's kernels, else why not (and the fix)."""
        return None
