"""x86-64 AVX-512 (F + BW + VNNI + VBMI): i2 kernels built on `_mm512_dpbusd_epi32`, tl2 lookups with
`vpermb`.

Decode GEMV: several rows at once share the regrouped activations; the 2-bit codes are masked in place
(no shifts) and the powers of four they carry are divided out exactly at the end; the activations are
regrouped to match with `vpermb` (VBMI). Prefill GEMM: K in blocks (`kc`) and tokens in L2-sized blocks;
the weights of a block of rows are unpacked once per K block to code bytes and reused for every token in
a register tile of rows x 16-token vectors. tl2 (1.67 bits a weight): the avx2 kernel's exact int8
tables of the activations split as 16 h + l, 64 rows looked up at once (`_mm512_permutexvar_epi8`) with
the sign in the index picking a negated copy of the table. b3 (1.6 bits): five trits a byte decoded with
byte additions and two compares a digit, `_mm512_dpbusd_epi32` with the activations. Chosen over avx2
automatically when the CPU has the ISA; on other x86 machines the kernels are built through SIMDe
(emulated, for tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ternkit.codegen.ctarget import CTarget, FormatKernels, chunk_space
from ternkit.codegen.plan import KernelSpec
from ternkit.codegen.targets.avx2 import tl2_plane_len
from ternkit.errors import TernkitError
from ternkit.formats import round_up
from ternkit.toolchain import cpu
from ternkit.toolchain.isa import Isa

ISA = Isa("AVX-512", flags=("-mavx512f", "-mavx512bw", "-mavx512vnni", "-mavx512vbmi"), arches=cpu.X86,
          features=("avx512f", "avx512bw", "avx512_vnni", "avx512vbmi"), simde=True, instead="avx2")
IN_PLACE_MAX_K = 65536   # acc_3 = 64 * sum(code * x) stays inside int32 up to this K
GEMM_X_PANEL = 256 << 10   # bytes of activations a GEMM token block keeps in L2 for one K block


def i2_check(spec: KernelSpec) -> None:
    if spec.tile("gemm_rows") * spec.tile("gemm_tb") > 28:
        raise TernkitError(f"avx512 i2: gemm_rows x gemm_tb must be <= 28 accumulators (32 zmm registers), "
                           f"got {spec.tile('gemm_rows')} x {spec.tile('gemm_tb')}")


def i2_tune_space(spec: KernelSpec) -> list[list[dict[str, Any]]]:
    if spec.N < spec.tile("gemm_min"):
        return [[{"rows": r} for r in (1, 2, 4)],
                [{"prefetch": p} for p in (8192, 0, 4096, 16384, 32768)]]
    return [[{"gemm_rows": r, "gemm_tb": b} for r, b in ((6, 2), (3, 4), (4, 3), (7, 2), (8, 2), (4, 4))],
            [{"mc": m} for m in (48, 24, 96, 192)], [{"kc": c} for c in (1024, 512, 2048, 4096)]]


def i2_context(spec: KernelSpec) -> dict[str, Any]:
    gr, tb = spec.tile("gemm_rows"), spec.tile("gemm_tb")
    kc = min(spec.tile("kc"), round_up(spec.K, spec.tile("k_align")))   # the last K block may be shorter
    return dict(rows=spec.tile("rows"), gemm_rows=gr, gemm_tb=tb, mc=spec.tile("mc"),
                mc_pad=round_up(spec.tile("mc"), gr), kc=kc, nc=16 * tb * max(1, GEMM_X_PANEL // kc // (16 * tb)),
                gemm_min=spec.tile("gemm_min"), in_place=spec.K <= IN_PLACE_MAX_K, prefetch=spec.tile("prefetch"))


def tl2_context(spec: KernelSpec) -> dict[str, Any]:
    return dict(plane_len=tl2_plane_len(spec.K))


@dataclass(frozen=True)
class Avx512Target(CTarget):
    name: str = "avx512"
    description: str = ("x86-64 AVX-512 VNNI: i2 _mm512_dpbusd_epi32 GEMV (multi-row) and unpack-once GEMM, "
                        "tl2 vpermb lookups, b3 base-3 decoded by byte adds + mask compares")

    kernels: ClassVar[dict[str, FormatKernels]] = {
        # rows: GEMV rows a step; gemm_rows x gemm_tb (16-token vectors): GEMM register tile. 6 x 2 was
        # picked when tiles of <= 16 accumulators ran ~1.6x faster than 24 (measured on Zen 5, gcc 12),
        # while gcc still copied every accumulator twice a step; since the tile keeps them in registers,
        # every tile of the tune space and 6 x 4 (24 accumulators) compile without copies or spills and
        # llvm-mca predicts ~1 cycle a vpdpbusd on Sapphire Rapids for each (port 0 bound): static
        # analysis only, not re-timed on an AVX-512 machine;
        # mc: rows unpacked at once; kc: GEMM K block (a multiple of k_align; 1024 keeps the default
        # 32-token tile's activations, 32 KiB, in the 48 KiB L1d of Sapphire Rapids and the 48 KiB unpacked
        # block in L2, and adds y up once per 3072 dpbusd; not measured); gemm_min: token count from which
        # the GEMM path runs; prefetch: GEMV software prefetch distance in bytes (0 = none)
        "i2": FormatKernels(
            {"m_block": 1, "k_align": 256, "rows": 1, "gemm_rows": 6, "gemm_tb": 2, "mc": 48, "kc": 1024,
             "gemm_min": 16, "prefetch": 8192},
            tunables={"rows": (1, 2, 3, 4, 6, 8), "gemm_rows": (2, 3, 4, 5, 6, 7, 8), "gemm_tb": (1, 2, 3, 4),
                      "mc": (16, 24, 32, 48, 64, 96, 128, 192, 256), "kc": (256, 512, 1024, 2048, 4096, 8192),
                      "gemm_min": (2, 4, 8, 16, 32, 64),
                      "prefetch": (0, 1024, 2048, 4096, 8192, 16384, 32768)},
            tune_space=i2_tune_space, context=i2_context, check=i2_check),
        # tl2: 64 rows a lookup in int8 tables of x split as 16 h + l; chunk: groups whose tables are built
        # at once and whose int16 sums (l + 16 h = x: |.| <= 384 a group) are widened together
        "tl2": FormatKernels({"m_block": 64, "chunk": 64}, tune_space=chunk_space, context=tl2_context),
        "b3": FormatKernels({"m_block": 1, "k_align": 320}),     # 64 bytes = two 160-weight blocks a step
    }
    isa: ClassVar[Isa] = ISA
    priority: ClassVar[int] = 30
    # decode_format stays "" (decode GEMVs in the prefill's i2): avx512 tl2 has not been measured against
    # i2 from DRAM on an AVX-512 machine; `ternkit tune` or `--decode-format tl2` choose it


@dataclass(frozen=True)
class HotLoop:
    """Where a kernel spends its time in the compiled code, for static checks of it (no AVX-512 CPU
    needed: tests/test_avx512_asm.py, benchmarks/avx512_loops.py): an innermost loop of function
    `function`, found by its `marker` instructions, `per_step` of them a step of `step`."""
    name: str
    function: str
    marker: str
    per_step: int
    step: str

    def find(self, loops: list[Any]) -> tuple[Any, float]:
        """This loop among the compiled kernel's innermost loops (`asm_loops.innermost_loops`): the one
        whose markers write the most registers (the GEMV's loop over `rows` rows, not the one that
        finishes the last rows one at a time), and the steps one pass through it makes (more than one
        where gcc unrolled it)."""
        loop = max((lp for lp in loops if lp.function == self.function),
                   key=lambda lp: (len(lp.destinations(self.marker)), lp.count(self.marker)))
        return loop, loop.count(self.marker) / self.per_step


def hot_loops(ctx: dict[str, Any]) -> list[HotLoop]:
    """The hot loops of the kernel `ctx` (`kernel_context`) as the templates write them."""
    name = ctx["name"]
    if ctx["format"] == "i2":
        return [HotLoop("i2 GEMV", f"{name}_gemv", "vpdpbusd", 4 * ctx["rows"], f"64 bytes x {ctx['rows']} rows"),
                HotLoop("i2 GEMM tile", f"{name}_tile", "vpdpbusd", ctx["gemm_rows"] * ctx["gemm_tb"],
                        f"4 k x {ctx['gemm_rows']} rows x {16 * ctx['gemm_tb']} tokens")]
    if ctx["format"] == "b3":
        return [HotLoop("b3 GEMV", name, "vpdpbusd", 5, "64 bytes (320 weights) x 1 row")]
    return [HotLoop("tl2 GEMV", name, "vpermb", 10, "5 groups x 64 rows")]
