"""`CTarget`: a target whose kernels are C, rendered from `ternkit/templates/<name>/<format>.c.j2`.

A subclass declares its instruction set (`isa`) and one `FormatKernels` entry per weight format it
has kernels for (`kernels`, the first is the default). Everything format-specific is dispatched by that
table: the tiling and what autotuning may change, extra checks, the tuning space and the values the
template needs beyond the format's own (`ternkit.formats.<fmt>.kernel_context`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from ternkit import formats
from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.target import Target
from ternkit.errors import ShapeError, TernkitError, ToolchainError
from ternkit.toolchain import CFlags, simde_flags, simde_include
from ternkit.toolchain.isa import Isa


def no_tuning(spec: KernelSpec) -> list[list[dict[str, Any]]]:
    return []


def no_context(spec: KernelSpec) -> dict[str, Any]:
    return {}


def no_check(spec: KernelSpec) -> None:
    return None


@dataclass(frozen=True)
class FormatKernels:
    """One weight format's kernels on one target."""

    layout: Mapping[str, int]                               # default tiling: m_block, k_align, chunk, ...
    tunables: Mapping[str, tuple] = field(default_factory=dict)   # tiling key -> values tuning may pick
    tune_space: Callable[[KernelSpec], list[list[dict[str, Any]]]] = no_tuning
    context: Callable[[KernelSpec], dict[str, Any]] = no_context   # template values beyond the format's
    check: Callable[[KernelSpec], None] = no_check                 # constraints across tiling keys


def chunk_limit(fmt: str) -> int:
    """The most lookup groups whose int16 partial sums stay exact: |group sum| <= 128 * GROUP."""
    return 32767 // (128 * formats.get_format(fmt).GROUP)


def chunk_space(spec: KernelSpec) -> list[list[dict[str, Any]]]:
    """Tuning axis of the table-lookup kernels: groups per int16 chunk (the largest keeps sums exact)."""
    return [[{"chunk": c} for c in (64, 32, 16, chunk_limit(spec.weight_format))]]


@dataclass(frozen=True)
class CTarget(Target):
    kernels: ClassVar[dict[str, FormatKernels]] = {}
    isa: ClassVar[Isa] = Isa("C")
    opt: ClassVar[str] = "-O3"

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(self.kernels)

    # -- decisions -------------------------------------------------------------------------------
    def specialise(self, spec: KernelSpec) -> KernelSpec:
        fmt = spec.weight_format or self.formats[0]
        if fmt not in self.kernels:
            raise TernkitError(f"target {self.name!r} has no {fmt!r} kernels: use one of {', '.join(self.formats)}")
        if spec.activation_bits not in (8, 4):
            raise TernkitError(f"activation_bits must be 8 or 4, got {spec.activation_bits}")
        if spec.M < 1 or spec.K < 1 or spec.N < 1:
            raise ShapeError(f"kernel shape must be positive, got M={spec.M} K={spec.K} N={spec.N}")
        fk = self.kernels[fmt]
        tiling = dict(fk.layout)
        for key, value in dict(spec.tiling).items():   # autotuned / preset values win where allowed
            if key in fk.tunables:
                if value not in fk.tunables[key]:
                    raise TernkitError(f"{self.name} {fmt}: {key} must be one of {list(fk.tunables[key])}, got {value}")
            elif key == "chunk" and key in tiling:
                limit = chunk_limit(fmt)
                if not 1 <= int(value) <= limit:
                    raise TernkitError(f"{self.name} {fmt}: chunk must be in [1, {limit}] (int16 sums), got {value}")
            elif tiling.get(key, value) != value:
                raise TernkitError(f"{self.name} {fmt} kernels need {key}={tiling[key]}, got {value}")
            tiling[key] = value
        spec = dataclasses.replace(spec, weight_format=fmt, tiling=tuple(sorted(tiling.items())))
        fk.check(spec)
        return spec

    def tune_space(self, spec: KernelSpec) -> list[list[dict[str, Any]]]:
        """Tiling candidates for `ternkit tune`: a list of axes searched one after the other (each axis a
        list of partial tilings, the first its default). [] = nothing to tune."""
        return self.kernels[spec.weight_format].tune_space(spec)

    def layout(self, spec: KernelSpec) -> dict[str, int]:
        return {"m_block": spec.tile("m_block", 1), "k_align": spec.tile("k_align", 4)}

    def pack(self, spec: KernelSpec, w_q: np.ndarray) -> np.ndarray:
        """Pack ternary weights [M, K] (int8) into this kernel's layout: a 1-D uint8 array."""
        w_q = np.asarray(w_q)
        if w_q.shape != (spec.M, spec.K):
            raise ShapeError(f"{spec.name}: weights must be [{spec.M}, {spec.K}], got {w_q.shape}")
        return formats.pack(spec.weight_format, w_q, **self.layout(spec))

    def packed_bytes(self, spec: KernelSpec) -> int:
        return formats.get_format(spec.weight_format).nbytes(spec.M, spec.K, **self.layout(spec))

    def layout_doc(self, spec: KernelSpec) -> str:
        return formats.get_format(spec.weight_format).describe(spec.M, spec.K, **self.layout(spec))

    def kernel_context(self, spec: KernelSpec) -> dict[str, Any]:
        """Everything a kernel template needs, computed here so templates hold no arithmetic decisions:
        the common values, the format's own (sizes, groups), then the target's (`FormatKernels.context`)."""
        lay = self.layout(spec)
        ctx: dict[str, Any] = dict(name=spec.name, M=spec.M, K=spec.K, N=spec.N, format=spec.weight_format,
                                   m_block=lay["m_block"], k_align=lay["k_align"], chunk=spec.tile("chunk", 64),
                                   wbytes=self.packed_bytes(spec), doc=self.layout_doc(spec).splitlines())
        ctx.update(formats.get_format(spec.weight_format).kernel_context(spec.K, **lay))
        ctx.update(self.kernels[spec.weight_format].context(spec))
        return ctx

    # -- this machine ----------------------------------------------------------------------------
    def cflags(self) -> tuple[str, ...]:
        """Flags building the target's C for the target itself (the emitted Makefile, cross builds)."""
        return (self.opt, *self.isa.flags)

    def host_cflags(self) -> CFlags:
        """How this machine builds the kernels in-process: natively, or emulated through SIMDe."""
        reason = self.unavailable_reason()
        if reason:
            raise ToolchainError(reason)
        return simde_flags() if self.emulation() else CFlags(self.cflags())

    def runs_natively(self) -> bool:
        return self.isa.missing(self.name) is None

    def emulation(self) -> str | None:
        if self.runs_natively() or not self.isa.simde or simde_include() is None:
            return None
        return f"{self.isa.name} intrinsics emulated with SIMDe"

    def unavailable_reason(self) -> str | None:
        missing = self.isa.missing(self.name)
        if missing is None or self.emulation():
            return None
        if self.isa.simde:
            return f"{missing}: use --target {self.isa.instead}, or pip install simde-py to emulate it"
        return f"{missing}: use --target {self.isa.instead}"
