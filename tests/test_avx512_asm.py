"""The AVX-512 kernels' hot loops as gcc compiles them with the target's real flags (static: no AVX-512
CPU needed). gcc 12 is prone to copying loop-carried zmm sums to another register and back every step
(two moves a sum, on the sum's dependency chain) and to letting a loop's sums spill: the templates keep
them in registers (TK_KEEP / TK_ZMM in the avx512 prelude; the GEMM tile in a function of its own).
These tests fail when a template or compiler change brings either back, or puts a step's multiply-adds
on one chain. llvm-mca's prediction is checked where an llvm-mca with Sapphire Rapids' model exists
(`.ci/run` installs llvm-19)."""

from __future__ import annotations

import shutil

import pytest

from ternkit.codegen.library import cffi_source
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.codegen.targets.avx512 import hot_loops, i2_tune_space
from ternkit.toolchain import compiler, cpu
from ternkit.toolchain.asm_loops import compile_to_asm, innermost_loops, llvm_mca, mca

pytestmark = pytest.mark.skipif(cpu.machine() not in cpu.X86 or shutil.which(compiler()) is None,
                                reason="needs gcc for x86-64")
AVX512 = get_target("avx512")
SHAPES = [(2560, 2560), (2560, 6912)]   # BitNet b1.58 2B4T: attention / FFN-down (K past gcc's full unroll)


def _tilings(n: int) -> list[dict]:
    """The first axis of the i2 tune space: GEMV rows a step, or the GEMM register tiles."""
    return i2_tune_space(AVX512.specialise(KernelSpec(2560, 2560, n)))[0]


CASES = ([("i2", M, K, 1, t) for M, K in SHAPES for t in _tilings(1)]
         + [("i2", 2560, 2560, 64, t) for t in _tilings(64)]
         + [(fmt, M, K, 1, {}) for fmt in ("b3", "tl2") for M, K in SHAPES])


def compiled_hot_loops(fmt: str, M: int, K: int, n: int, tiling: dict):
    spec = AVX512.specialise(KernelSpec(M, K, n, weight_format=fmt, tiling=tuple(tiling.items())))
    _, source = cffi_source(Plan("avx512", "asm", [spec]), AVX512)
    loops = innermost_loops(compile_to_asm(source, AVX512.cflags()))
    hot = hot_loops(AVX512.kernel_context(spec))
    if fmt == "i2":   # the loop this n runs: the GEMV below gemm_min tokens, the GEMM tile from it
        hot = [h for h in hot if (h.name == "i2 GEMV") == (n < spec.tile("gemm_min"))]
    return [(h, *h.find(loops)) for h in hot]


@pytest.mark.parametrize("fmt, M, K, n, tiling", CASES, ids=lambda v: str(v).replace(" ", ""))
def test_avx512_hot_loops_keep_their_sums_in_registers(fmt, M, K, n, tiling):
    for hot, loop, steps in compiled_hot_loops(fmt, M, K, n, tiling):
        where = f"{hot.name} ({M}x{K}, n={n}, {tiling}), loop {loop.label}:\n" + "\n".join(loop.instructions)
        # a sum copied each step costs two copies a step; gcc's own register shuffles in an unrolled
        # loop (the K = 2560 GEMV) stay well under one a step
        assert len(loop.vector_copies) < steps, f"{len(loop.vector_copies)} vector copies in {steps:g} steps: {where}"
        assert not loop.spills, f"spills {loop.spills}: {where}"
        if hot.marker == "vpdpbusd":   # each multiply-add of a step into a sum of its own: no chain
            sums = loop.destinations("vpdpbusd")
            assert len(sums) >= hot.per_step, f"{hot.per_step} vpdpbusd a step into {len(sums)} sums: {where}"


@pytest.mark.skipif(llvm_mca() is None,
                    reason="no llvm-mca with Sapphire Rapids / Zen 4 models (apt-get install llvm-19)")
@pytest.mark.parametrize("fmt, n", [("i2", 64), ("b3", 1), ("tl2", 1)])
def test_avx512_hot_loops_are_not_latency_bound_on_sapphire_rapids(fmt, n):
    """llvm-mca (a model, not a timing) does not find the GEMM tile, b3 and tl2 steps limited by chains
    of dependent instructions (b3 with one sum for its five vpdpbusd a step was
    predicted at 42 cycles a step, 17 with five)."""
    for hot, loop, steps in compiled_hot_loops(fmt, 2560, 2560, n, {}):
        result = mca(loop, "sapphirerapids")
        assert not result.bottleneck.startswith("dependencies"), \
            f"{hot.name}: {result.cycles / steps:.1f} cycles a step, {result.bottleneck}"


def test_innermost_loops_skip_empty_inline_asm():
    """An empty `__asm__("" : "+x"(v))` (the avx2 tl2 GEMV keeps its sums so) leaves a blank line between
    #APP and #NO_APP in gcc's assembly: it is not an instruction (it used to break `Loop.count`)."""
    asm = ("kern:\n.L3:\n\tvpshufb\t%ymm1, %ymm2, %ymm3\n#APP\n# 40 \"k.c\" 1\n\t\n# 0 \"\" 2\n#NO_APP\n"
           "\tvpaddb\t%ymm3, %ymm4, %ymm4\n\tcmpq\t%rax, %rdx\n\tjne\t.L3\n\tret\n")
    (loop,) = innermost_loops(asm)
    assert loop.instructions == ("vpshufb\t%ymm1, %ymm2, %ymm3", "vpaddb\t%ymm3, %ymm4, %ymm4",
                                 "cmpq\t%rax, %rdx", "jne\t.L3")
    assert loop.count("vpshufb") == 1 and loop.count("vpaddb") == 1
