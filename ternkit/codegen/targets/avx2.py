"""x86-64 AVX2: TL1 (pairs) and TL2 (triples + sign) table lookups with `_mm256_shuffle_epi8` (int16
sums split into low/high byte planes, so lookups are exact) and i2 kernels on `_mm256_maddubs_epi16`:
a multi-row GEMV keeping int16 sums for several steps, and a prefill GEMM that unpacks each weight block
once and reuses it across a register tile of tokens, K in blocks."""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ternkit import formats
from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.targets._base import TemplateTarget
from ternkit.errors import TernkitError
from ternkit.formats import round_up

X86 = ("x86_64", "amd64", "i686", "i386")
GEMM_X_PANEL = 256 << 10   # bytes of activations a GEMM token block keeps in L2 for one K block


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


def unrolled_chunks(total: int, size: int) -> list[tuple[int, int, int]]:
    """`total` steps as (steps a chunk, first step, chunks) runs: whole chunks of `size`, then the rest;
    the templates unroll each chunk fully (int16 sums widened once a chunk)."""
    runs = [(size, 0, total // size), (total % size, total - total % size, 1)]
    return [r for r in runs if r[0] and r[2]]


@dataclass(frozen=True)
class Avx2Target(TemplateTarget):
    name: str = "avx2"
    description: str = ("x86-64 AVX2: i2 _mm256_maddubs_epi16 GEMV (multi-row) and unpack-once GEMM, b3 base-3 "
                        "decoded by byte adds + signed compares, TL1/TL2 lookups")

    formats: ClassVar[tuple[str, ...]] = ("i2", "tl1", "tl2", "b3")
    layouts: ClassVar[dict] = {
        # i2: 32 packed bytes = 128 weights a step; rows: GEMV rows a step; gemm_rows x gemm_tb: GEMM
        # register tile (int16 sums, rows x tokens); mc: rows unpacked at once; kc: K block (<= 2048:
        # 64 maddubs per int16 sum); gemm_min: token count from which the GEMM path runs;
        # prefetch: GEMV software prefetch distance in bytes (0 = none)
        # (measured on Zen 3: one row at a time is fastest hot and from DRAM, several rows at once interleave
        # short streams, which the hardware prefetcher follows badly; a prefetch a line 4 KiB ahead reads
        # from DRAM at ~90 % of a plain stream read, 1 KiB at ~85 %)
        "i2": {"m_block": 1, "k_align": 128, "rows": 1, "gemm_rows": 3, "gemm_tb": 4, "mc": 48, "kc": 2048,
               "gemm_min": 4, "prefetch": 4096},
        "tl1": {"m_block": 32, "chunk": 64},      # 32 rows a lookup; int16 sums of <= 64 pairs
        "tl2": {"m_block": 32, "chunk": 64},      # 32 rows a lookup; int16 sums of <= 64 triples
        "b3": {"m_block": 1, "k_align": 160},     # 32 bytes = 160 weights a block
    }
    tunables: ClassVar[dict] = {
        "i2": {"rows": (1, 2, 3, 4, 6), "gemm_rows": (1, 2, 3, 4), "gemm_tb": (1, 2, 3, 4, 5, 6, 8),
               "mc": (12, 24, 48, 96, 192), "kc": (512, 1024, 2048), "gemm_min": (2, 3, 4, 6, 8, 16),
               "prefetch": (0, 512, 1024, 2048, 4096, 8192)},
    }
    priority: ClassVar[int] = 20
    native_arch: ClassVar[tuple[str, ...]] = X86

    def default_format(self, spec: KernelSpec) -> str:
        return "i2"

    def _tiled_i2(self, spec: KernelSpec) -> bool:
        """The templates/avx2 i2 kernel (subclasses with their own i2 kernel have no GEMM tiling)."""
        return spec.weight_format == "i2" and "gemm_rows" in self.layouts["i2"]

    def specialise(self, spec: KernelSpec) -> KernelSpec:
        spec = super().specialise(spec)
        if self._tiled_i2(spec) and spec.tile("gemm_rows") * (spec.tile("gemm_tb") + 1) > 15:
            raise TernkitError(f"{self.name} i2: gemm_rows x (gemm_tb + 1) must be <= 15 (16 ymm registers), "
                               f"got {spec.tile('gemm_rows')} x {spec.tile('gemm_tb')}")
        return spec

    def tune_space(self, spec: KernelSpec) -> list[list[dict]]:
        if spec.weight_format in ("tl1", "tl2"):   # the largest chunk keeps int16 sums exact
            top = 32767 // (128 * formats.get_format(spec.weight_format).GROUP)
            return [[{"chunk": c} for c in (64, 32, 16, top)]]
        if self._tiled_i2(spec):
            if spec.N < spec.tile("gemm_min"):
                return [[{"rows": r} for r in (1, 2, 4)], [{"prefetch": p} for p in (4096, 1024, 2048, 8192)]]
            return [[{"gemm_rows": r, "gemm_tb": b} for r, b in ((3, 4), (2, 6), (1, 8), (4, 2), (2, 4))],
                    [{"mc": m} for m in (48, 24, 96)], [{"kc": c} for c in (2048, 1024)]]
        return []

    def kernel_context(self, spec: KernelSpec) -> dict[str, Any]:
        ctx = super().kernel_context(spec)
        if self._tiled_i2(spec):
            k_pad = ctx["k_pad"]
            blocks = -(-k_pad // spec.tile("kc"))      # equal K blocks, each a multiple of 128 weights
            gr, tb = spec.tile("gemm_rows"), spec.tile("gemm_tb")
            kc = round_up(-(-k_pad // blocks), 128)
            steps, widen = k_pad // 128, 8     # int16: 8 steps of |1x sum| <= 1024 plus |4x sum / 4| <= 1024
            ctx.update(rows=spec.tile("rows"), widen=widen, chunks=unrolled_chunks(steps, widen),
                       prefetch=spec.tile("prefetch"),
                       gemm_rows=gr, gemm_tb=spec.tile("gemm_tb"), mc=spec.tile("mc"),
                       mc_pad=round_up(spec.tile("mc"), gr), kc=kc, nc=max(tb, GEMM_X_PANEL // kc // tb * tb),
                       gemm_min=spec.tile("gemm_min"))
        if spec.weight_format == "b3":
            blocks, chunk = ctx["blocks"], 12   # int16: 12 blocks x 5 maddubs of |pair| <= 512 stay below 32768
            ctx.update(b3_chunk=chunk, b3_chunks=unrolled_chunks(blocks, chunk))
        return ctx

    def cflags(self) -> tuple[str, ...]:
        return ("-O3", "-mavx2")

    def unavailable_reason(self) -> str | None:
        if platform.machine().lower() not in X86:
            return f"the avx2 target needs an x86-64 CPU, this is {platform.machine()}: use --target scalar"
        flags = cpu_flags()
        if flags and "avx2" not in flags:
            return "this CPU has no AVX2 (no 'avx2' in /proc/cpuinfo flags): use --target scalar"
        return None
