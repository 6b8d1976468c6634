"""x86-64 AVX2: TL1 (pairs) table lookups with `_mm256_shuffle_epi8` (int16 sums split into low/high
byte planes, so lookups are exact), i2 kernels on `_mm256_maddubs_epi16` (a
multi-row GEMV keeping int16 sums for several steps, and a prefill GEMM that unpacks each weight block
once and reuses it across a register tile of tokens, K in blocks), and b3 (five trits a byte) decoded
by byte additions and signed compares. tl2 (1.67 bits) looks up 64 rows a load in int8 tables of the
activations split as 16 h + l, so that it reads DRAM faster than i2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ternkit import formats
from ternkit.codegen.ctarget import CTarget, FormatKernels, chunk_space
from ternkit.codegen.plan import KernelSpec
from ternkit.errors import TernkitError
from ternkit.formats import round_up
from ternkit.toolchain import cpu
from ternkit.toolchain.isa import Isa

ISA = Isa("AVX2", flags=("-mavx2",), arches=cpu.X86, features=("avx2",))
I2_WIDEN = 8     # int16 GEMV sums: 8 steps of |1x pair sum| <= 1024 plus |4x pair sum / 4| <= 1024
B3_CHUNK = 12    # int16 b3 sums: 12 blocks x 5 maddubs of |pair| <= 512 stay below 32768
GEMM_X_PANEL = 256 << 10   # bytes of activations a GEMM token block keeps in L2 for one K block


def unrolled_chunks(total: int, size: int) -> list[tuple[int, int, int]]:
    """`total` steps as (steps a chunk, first step, chunks) runs: whole chunks of `size`, then the rest;
    the templates unroll each chunk fully (int16 sums widened once a chunk)."""
    runs = [(size, 0, total // size), (total % size, total - total % size, 1)]
    return [r for r in runs if r[0] and r[2]]


def gemm_check(spec: KernelSpec) -> None:
    gr, tb = spec.tile("gemm_rows"), spec.tile("gemm_tb")
    if gr * tb + gr + 2 > 16:
        raise TernkitError(f"avx2 {spec.weight_format}: gemm_rows x gemm_tb + gemm_rows + 2 must be <= 16 "
                           f"(16 ymm registers), got {gr} x {tb}")


def gemm_context(spec: KernelSpec, k_slots: int, slot_align: int, row_align: int) -> dict[str, Any]:
    """The shared GEMM's (templates/avx2/gemm.c.j2): k_slots K slots in equal blocks of at most `kc`, each a
    multiple of slot_align; row blocks (mc) a multiple of row_align and of the register tile's rows."""
    gr, tb = spec.tile("gemm_rows"), spec.tile("gemm_tb")
    blocks = -(-k_slots // spec.tile("kc"))
    kc = round_up(-(-k_slots // blocks), slot_align)
    return dict(gemm_rows=gr, gemm_tb=tb, gemm_min=spec.tile("gemm_min"), gemm_k=k_slots, kc=kc,
                mc=spec.tile("mc"), mc_pad=round_up(spec.tile("mc"), max(row_align, 8 * gr)),
                nc=max(tb, GEMM_X_PANEL // kc // tb * tb),
                # a call on N tokens ends in N % gemm_tb: that tile gets its own, narrower register tile
                gemm_tail=spec.N % tb if spec.N >= spec.tile("gemm_min") else 0)


# the shared GEMM's defaults, tunables and tune space (formats add their own row blocks and K blocks)
GEMM_DEFAULTS = {"gemm_rows": 2, "gemm_tb": 6, "mc": 64, "kc": 4096, "gemm_min": 4}
GEMM_TUNABLES = {"gemm_tb": tuple(range(1, 13)), "gemm_min": (2, 3, 4, 6, 8, 16)}
GEMM_SPACE = [[{"gemm_rows": r, "gemm_tb": b} for r, b in ((2, 6), (1, 12), (2, 5), (1, 8))],
              [{"kc": c} for c in (4096, 2048, 1024)]]


def i2_tune_space(spec: KernelSpec) -> list[list[dict[str, Any]]]:
    if spec.N < spec.tile("gemm_min"):
        return [[{"rows": r} for r in (3, 2, 1, 4)], [{"prefetch": p} for p in (16384, 4096, 8192, 32768)],
                [{"prefetch_l1": p} for p in (0, 2048, 4096)]]
    return [GEMM_SPACE[0] + [{"gemm_rows": 3, "gemm_tb": 3}], [{"mc": m} for m in (64, 32, 128)], GEMM_SPACE[1]]


def i2_context(spec: KernelSpec) -> dict[str, Any]:
    k_pad = round_up(spec.K, spec.tile("k_align"))
    return dict(rows=spec.tile("rows"), widen=I2_WIDEN, chunks=unrolled_chunks(k_pad // 128, I2_WIDEN),
                prefetch=spec.tile("prefetch"), prefetch_l1=spec.tile("prefetch_l1"),
                **gemm_context(spec, k_pad, 128, 8))


def tl2_tune_space(spec: KernelSpec) -> list[list[dict[str, Any]]]:
    if spec.N >= spec.tile("gemm_min"):
        return GEMM_SPACE
    return [[{"prefetch": p} for p in (8192, 4096, 16384, 0)]]


def tl2_plane_len(K: int) -> int:
    """Bytes of each activation plane tl2_split writes: tl2_tables reads 16 bytes from 3 g (shared with avx512)."""
    return round_up(3 * formats.get_format("tl2").groups(K) + 13, 32)


def tl2_context(spec: KernelSpec) -> dict[str, Any]:
    tl2 = formats.get_format("tl2")
    g, units = tl2.groups(spec.K), tl2.units(spec.K)
    chunks = -(-units // spec.tile("k_units"))
    k_units = -(-units // chunks)          # K chunks of equal size, none larger than k_units
    return dict(k_units=k_units, chunk_groups=min(g, tl2.UNIT * k_units), plane_len=tl2_plane_len(spec.K),
                prefetch=spec.tile("prefetch"), **gemm_context(spec, 3 * tl2.UNIT * units, 3 * tl2.UNIT, 64))


def b3_context(spec: KernelSpec) -> dict[str, Any]:
    blocks = round_up(spec.K, spec.tile("k_align")) // 160
    return dict(b3_chunk=B3_CHUNK, b3_chunks=unrolled_chunks(blocks, B3_CHUNK))


@dataclass(frozen=True)
class Avx2Target(CTarget):
    name: str = "avx2"
    description: str = ("x86-64 AVX2: i2 _mm256_maddubs_epi16 GEMV (multi-row) and unpack-once GEMM, b3 base-3 "
                        "decoded by byte adds + signed compares, TL1/TL2 lookups")

    kernels: ClassVar[dict[str, FormatKernels]] = {
        # i2: 32 packed bytes = 128 weights a step; rows: GEMV rows a step; gemm_rows x gemm_tb: GEMM
        # register tile (int16 sums, groups of 8 rows x tokens); mc: rows unpacked at once; kc: K block
        # (a multiple of 128); gemm_min: token count from which the GEMM path runs;
        # prefetch / prefetch_l1: GEMV software prefetch distances in bytes into L2 / L1 (0 = none)
        # (measured on Zen 3: rows from `rows` equal spans of the range, so that each is a sequential stream:
        # one core reads DRAM at 18-20 GB/s from one stream and 24-29 GB/s from three; 3 rows read DRAM 1.10-1.22x
        # and hot 1.03-1.09x faster than 1 (2 rows: 1.10-1.17x, 1.06-1.10x; 4: slower), where adjacent rows at
        # once had read DRAM 0.7x as fast; prefetching a line into L2 16 KiB ahead and into L1 2 KiB ahead
        # (prefetch_l1) had read one stream up to 1.15x faster than into L2 alone; with 3 spans it costs
        # instructions for nothing: none into L1 ran 1.01-1.06x hot and 1.01-1.04x from DRAM in two runs)
        "i2": FormatKernels(
            {"m_block": 1, "k_align": 128, "rows": 3, **GEMM_DEFAULTS, "prefetch": 16384, "prefetch_l1": 0},
            tunables={"rows": (1, 2, 3, 4, 6), **GEMM_TUNABLES, "gemm_rows": (1, 2, 3),
                      "mc": (8, 16, 24, 32, 40, 48, 64, 96, 128, 192, 256), "kc": (128, 256, 384, 512, 1024, 2048, 4096),
                      "prefetch": (0, 1024, 2048, 4096, 8192, 16384, 32768), "prefetch_l1": (0, 1024, 2048, 4096)},
            tune_space=i2_tune_space, context=i2_context, check=gemm_check),
        # 32 rows a lookup; int16 sums of <= 64 pairs
        "tl1": FormatKernels({"m_block": 32, "chunk": 64}, tune_space=chunk_space),
        # tl2: 64 rows a lookup (both nibbles of one 32-byte load), sign bits in units of 8 groups;
        # k_units: units whose tables are built at once (<= 128 KiB of tables on the stack; fewer K
        # chunks stream DRAM better: 2560 x 6912 read 1.2x faster in one chunk than in two);
        # prefetch: software prefetch distance in bytes, into L2 (0 = none; on Zen 3 8 KiB into L2 read DRAM
        # ~1.1x faster than 4 KiB into L1, the default before)
        # gemm_*, mc, kc: its prefill GEMM, the i2 GEMM's over 64-row blocks decoded once (mc a multiple of 64)
        "tl2": FormatKernels({"m_block": 64, "sign_unit": 8, "k_units": 512, "prefetch": 8192, **GEMM_DEFAULTS},
                             tunables={"prefetch": (0, 512, 1024, 2048, 4096, 8192, 16384),
                                       "k_units": (1, 2, 8, 32, 64, 128, 256, 512), **GEMM_TUNABLES,
                                       "gemm_rows": (1, 2), "mc": (64, 128, 192, 256), "kc": (384, 1024, 2048, 4096)},
                             tune_space=tl2_tune_space, context=tl2_context, check=gemm_check),
        "b3": FormatKernels({"m_block": 1, "k_align": 160}, context=b3_context),   # 32 bytes = 160 weights a block
    }
    isa: ClassVar[Isa] = ISA
    priority: ClassVar[int] = 20
    # tl2 GEMVs read the 2B4T shapes from DRAM about as fast as i2 since i2 reads 3 streams (0.95-1.01x on
    # one thread, 0.98-1.16x on two; before: 1.10-1.14x faster), in 17 % fewer bytes (Zen 3, README "This
    # machine"); its GEMM decodes into the i2 GEMM's tile and runs as fast (1.00-1.05x), so a runtime keeps
    # one tl2 copy for both
    decode_format: ClassVar[str] = "tl2"
    prefill_format: ClassVar[str] = "tl2"

    def layout(self, spec: KernelSpec) -> dict[str, int]:
        lay = super().layout(spec)
        if spec.tile("sign_unit", 0):       # tl2: sign bits in units of groups
            lay["sign_unit"] = spec.tile("sign_unit")
        return lay
