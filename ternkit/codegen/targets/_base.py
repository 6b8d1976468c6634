"""Shared machinery of the template-driven targets: format choice and tiling, packing, the context the
templates render from, and how this machine builds the target's C."""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ternkit import formats
from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.target import Target
from ternkit.errors import ShapeError, TernkitError

WARNINGS = ("-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class TemplateTarget(Target):
    """A target whose kernels are `ternkit/templates/<name>/<format>.c.j2`.

    Subclasses set `formats` (supported weight formats, the first is the default), `layouts`
    (format -> tiling: m_block, k_align, chunk) and their compiler flags."""

    formats: ClassVar[tuple[str, ...]] = ()
    layouts: ClassVar[dict[str, dict[str, int]]] = {}
    # format -> tiling key -> allowed values that autotuning (or a preset) may choose freely
    tunables: ClassVar[dict[str, dict[str, tuple]]] = {}
    priority: ClassVar[int] = 0          # best_native_target prefers the highest available
    native_arch: ClassVar[tuple[str, ...]] = ()  # platform.machine() values running it natively; () = any

    # -- decisions -------------------------------------------------------------------------------
    def default_format(self, spec: KernelSpec) -> str:
        return self.formats[0]

    def specialise(self, spec: KernelSpec) -> KernelSpec:
        fmt = spec.weight_format or self.default_format(spec)
        if fmt not in self.formats:
            raise TernkitError(f"target {self.name!r} has no {fmt!r} kernels: use one of {', '.join(self.formats)}")
        if spec.activation_bits not in (8, 4):
            raise TernkitError(f"activation_bits must be 8 or 4, got {spec.activation_bits}")
        if spec.M < 1 or spec.K < 1 or spec.N < 1:
            raise ShapeError(f"kernel shape must be positive, got M={spec.M} K={spec.K} N={spec.N}")
        tiling = dict(self.layouts[fmt])
        tunable = self.tunables.get(fmt, {})
        for key, value in dict(spec.tiling).items():   # autotuned / preset values win where allowed
            if key in tunable:
                if value not in tunable[key]:
                    raise TernkitError(f"{self.name} {fmt}: {key} must be one of {list(tunable[key])}, got {value}")
            elif key == "chunk" and key in tiling:
                # int16 partial sums of `chunk` groups must not overflow: |group sum| <= 128 * GROUP
                limit = 32767 // (128 * formats.get_format(fmt).GROUP)
                if not 1 <= int(value) <= limit:
                    raise TernkitError(f"{self.name} {fmt}: chunk must be in [1, {limit}] (int16 sums), got {value}")
            elif tiling.get(key, value) != value:
                raise TernkitError(f"{self.name} {fmt} kernels need {key}={tiling[key]}, got {value}")
            tiling[key] = value
        return dataclasses.replace(spec, weight_format=fmt, tiling=tuple(sorted(tiling.items())))

    def tune_space(self, spec: KernelSpec) -> list[list[dict[str, Any]]]:
        """Tiling candidates for `ternkit tune`: a list of axes searched one after the other (each axis a
        list of partial tilings, the first its default). [] = nothing to tune."""
        return []

    def layout(self, spec: KernelSpec) -> dict[str, int]:
        return {"m_block": spec.tile("m_block", 1), "k_align": spec.tile("k_align", 4)}

    def pack(self, spec: KernelSpec, w_q: np.ndarray) -> np.ndarray:
        w_q = np.asarray(w_q)
        if w_q.shape != (spec.M, spec.K):
            raise ShapeError(f"{spec.name}: weights must be [{spec.M}, {spec.K}], got {w_q.shape}")
        return formats.pack(spec.weight_format, w_q, **self.layout(spec))

    def packed_bytes(self, spec: KernelSpec) -> int:
        return formats.get_format(spec.weight_format).nbytes(spec.M, spec.K, **self.layout(spec))

    def layout_doc(self, spec: KernelSpec) -> str:
        return formats.get_format(spec.weight_format).describe(spec.M, spec.K, **self.layout(spec))

    def kernel_context(self, spec: KernelSpec) -> dict[str, Any]:
        """Everything a kernel template needs, computed here so templates hold no arithmetic decisions."""
        fmt = formats.get_format(spec.weight_format)
        lay = self.layout(spec)
        ctx: dict[str, Any] = dict(name=spec.name, M=spec.M, K=spec.K, N=spec.N, format=spec.weight_format,
                                   m_block=lay["m_block"], k_align=lay["k_align"], chunk=spec.tile("chunk", 64),
                                   wbytes=self.packed_bytes(spec), doc=self.layout_doc(spec).splitlines())
        if spec.weight_format == "i2":
            ctx.update(row_bytes=fmt.row_bytes(spec.K, lay["k_align"]), k_pad=fmt.row_bytes(spec.K, lay["k_align"]) * 4)
        elif spec.weight_format == "b3":
            rb = fmt.row_bytes(spec.K, lay["k_align"])
            ctx.update(row_bytes=rb, k_pad=rb * fmt.GROUP, blocks=rb // 32)
        elif spec.weight_format == "tl1":
            p = fmt.groups(spec.K)
            ctx.update(groups=p, row_bytes=-(-p // 2), block_bytes=p * lay["m_block"] // 2)
        elif spec.weight_format == "tl2":
            g = fmt.groups(spec.K)
            nb, sb = fmt.row_bytes(spec.K)
            mb = lay["m_block"]
            ctx.update(groups=g, index_bytes=nb, row_bytes=nb + sb, group_bytes=mb // 2 + mb // 8,
                       block_bytes=g * (mb // 2 + mb // 8))
        return ctx

    # -- toolchain -------------------------------------------------------------------------------
    def cflags(self) -> tuple[str, ...]:
        """Flags for building the target's C for the target itself (the emitted Makefile, cross builds)."""
        return ("-O3",)

    def build_options(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(flags, include dirs) for building the kernels on *this* machine with cffi."""
        reason = self.unavailable_reason()
        if reason:
            from ternkit.errors import ToolchainError
            raise ToolchainError(reason)
        return (*self.cflags(), *WARNINGS), ()

    def runs_natively(self) -> bool:
        return not self.native_arch or platform.machine().lower() in self.native_arch
