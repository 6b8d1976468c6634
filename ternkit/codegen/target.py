"""A `Target` is one platform: its templates, compiler flags, weight packing and whether this machine
can build and run its kernels. Adding a target = one subclass here (or in its own module registered in
`codegen/targets.py`) + one template folder `ternkit/templates/<name>/`.

The C ABI every generated kernel keeps, whatever the target:

    void <spec.name>(const uint8_t *w, const int8_t *x, int32_t *y, int32_t m0, int32_t m1);

- `w`: the whole packed weight matrix, laid out by `Target.pack(spec, w_q)` (documented per format in
  the generated header);
- `x`: int8 activations [N][K], row-major (N = spec.N tokens);
- `y`: int32 outputs [N][M], row-major; the kernel writes rows m in [m0, m1) of every token, so callers
  can split M across threads. m0 and m1 are multiples of `spec.tile("m_block", 1)` (m1 may equal M).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ternkit.codegen.plan import KernelSpec


@dataclass(frozen=True)
class Target:
    name: str
    description: str = ""

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
