"""The avx2 tl2 GEMV's hot loop as gcc compiles it (static, like tests/test_avx512_asm.py): one unit of
8 groups x 64 rows a pass, 32 table lookups and 32 signs, and the signs of 7 of the 8 groups taken by
doubling a sign byte that carries a marker bit (no per-group or with the index). (Its four int16 sums,
touched twice a unit, live on the stack: 15 other vectors fill the 16 registers.)"""

from __future__ import annotations

import shutil

import pytest

from ternkit.codegen.library import cffi_source
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.toolchain import compiler, cpu
from ternkit.toolchain.asm_loops import compile_to_asm, innermost_loops

pytestmark = pytest.mark.skipif(cpu.machine() not in cpu.X86 or shutil.which(compiler()) is None,
                                reason="needs gcc for x86-64")
AVX2 = get_target("avx2")


@pytest.mark.parametrize("M, K", [(2560, 2560), (2560, 6912)])
def test_avx2_tl2_gemv_unit_loop(M, K):
    spec = AVX2.specialise(KernelSpec(M, K, 1, weight_format="tl2"))
    _, source = cffi_source(Plan("avx2", "asm", [spec]), AVX2)
    loops = [lp for lp in innermost_loops(compile_to_asm(source, AVX2.cflags())) if lp.count("vpshufb") == 32]
    assert len(loops) == 1, f"{len(loops)} loops with one unit's 32 lookups"
    (loop,) = loops
    where = "\n".join(loop.instructions)
    assert loop.count("vpsignb") == 32 and loop.count("vpmaddubsw") == 8, where
    # 2 markers a unit (rows 0-31, 32-63) and 2 for group 7; a per-group or-with-index would be 16
    assert loop.count("vpor") <= 4, where
    assert not loop.vector_copies, where
