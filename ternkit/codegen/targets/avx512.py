"""x86-64 AVX-512 (F + BW + VNNI + VBMI): i2 kernels built on `_mm512_dpbusd_epi32`.

Decode GEMV: several rows at once share the regrouped activations; the 2-bit codes are masked in place
(no shifts) and the powers of four they carry are divided out exactly at the end; the activations are
regrouped to match with `vpermb` (VBMI). Prefill GEMM: the
weights of a block of rows are unpacked once to code bytes and reused for every token in a register
tile of rows x 16-token vectors. b3 (1.6 bits): five trits a byte decoded with byte additions and
two compares a digit, _mm512_dpbusd_epi32 with the activations. Chosen over avx2 automatically when
the CPU has the ISA."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, ClassVar

from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.targets._base import TemplateTarget
from ternkit.codegen.targets.avx2 import X86, cpu_flags
from ternkit.errors import TernkitError
from ternkit.formats import round_up

NEEDED = ("avx512f", "avx512bw", "avx512_vnni", "avx512vbmi")
IN_PLACE_MAX_K = 65536   # acc_3 = 64 * sum(code * x) stays inside int32 up to this K


@dataclass(frozen=True)
class Avx512Target(TemplateTarget):
    name: str = "avx512"
    description: str = ("x86-64 AVX-512 VNNI: i2 _mm512_dpbusd_epi32 GEMV (multi-row) and unpack-once GEMM, "
                        "b3 base-3 decoded by byte adds + mask compares")

    formats: ClassVar[tuple[str, ...]] = ("i2", "b3")
    layouts: ClassVar[dict] = {
        # rows: GEMV rows a step; gemm_rows x gemm_tb (16-token vectors): GEMM register tile (measured:
        # tiles of <= 16 accumulators run ~1.6x faster than 24 on Zen 5 with gcc 12);
        # mc: rows unpacked at once; gemm_min: token count from which the GEMM path runs;
        # prefetch: GEMV software prefetch distance in bytes (0 = none)
        "i2": {"m_block": 1, "k_align": 256, "rows": 1, "gemm_rows": 6, "gemm_tb": 2, "mc": 48, "gemm_min": 16,
               "prefetch": 8192},
        "b3": {"m_block": 1, "k_align": 320},     # 64 bytes = two 160-weight blocks a step
    }
    tunables: ClassVar[dict] = {
        "i2": {"rows": (1, 2, 3, 4, 6, 8), "gemm_rows": (2, 3, 4, 5, 6, 7, 8), "gemm_tb": (1, 2, 3, 4),
               "mc": (16, 24, 32, 48, 64, 96, 128, 192, 256), "gemm_min": (2, 4, 8, 16, 32, 64),
               "prefetch": (0, 1024, 2048, 4096, 8192, 16384, 32768)},
    }
    priority: ClassVar[int] = 30
    native_arch: ClassVar[tuple[str, ...]] = X86

    def specialise(self, spec: KernelSpec) -> KernelSpec:
        spec = super().specialise(spec)
        if spec.weight_format == "i2" and spec.tile("gemm_rows") * spec.tile("gemm_tb") > 28:
            raise TernkitError(f"avx512 i2: gemm_rows x gemm_tb must be <= 28 accumulators (32 zmm registers), "
                               f"got {spec.tile('gemm_rows')} x {spec.tile('gemm_tb')}")
        return spec

    def tune_space(self, spec: KernelSpec) -> list[list[dict[str, Any]]]:
        if spec.weight_format != "i2":
            return []
        if spec.N < spec.tile("gemm_min"):
            return [[{"rows": r} for r in (1, 2, 4)],
                    [{"prefetch": p} for p in (8192, 0, 4096, 16384, 32768)]]
        return [[{"gemm_rows": r, "gemm_tb": b} for r, b in ((6, 2), (3, 4), (4, 3), (7, 2), (8, 2), (4, 4))],
                [{"mc": m} for m in (48, 24, 96, 192)]]

    def kernel_context(self, spec: KernelSpec) -> dict[str, Any]:
        ctx = super().kernel_context(spec)
        if spec.weight_format != "i2":
            return ctx
        gr = spec.tile("gemm_rows")
        ctx.update(rows=spec.tile("rows"), gemm_rows=gr, gemm_tb=spec.tile("gemm_tb"), mc=spec.tile("mc"),
                   mc_pad=round_up(spec.tile("mc"), gr), gemm_min=spec.tile("gemm_min"),
                   in_place=spec.K <= IN_PLACE_MAX_K, prefetch=spec.tile("prefetch"))
        return ctx

    def cflags(self) -> tuple[str, ...]:
        return ("-O3", "-mavx512f", "-mavx512bw", "-mavx512vnni", "-mavx512vbmi")

    def unavailable_reason(self) -> str | None:
        if platform.machine().lower() not in X86:
            return f"the avx512 target needs an x86-64 CPU, this is {platform.machine()}: use --target scalar"
        flags = cpu_flags()
        missing = [f for f in NEEDED if f not in flags]
        if missing:
            return (f"this CPU lacks {', '.join(missing)} (not in /proc/cpuinfo flags), which the avx512 target "
                    f"needs: use --target avx2")
        return None

