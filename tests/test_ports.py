"""runtime/ports.py: the vector-pipe probes assemble for AVX2 and AVX-512 on any x86-64 machine with gcc,
the kernels' hot loops are counted as the templates write them, and the probes run where AVX2 does."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ternkit.codegen.targets import get_c_target
from ternkit.runtime import ports
from ternkit.toolchain import compiler, cpu

pytestmark = pytest.mark.skipif(cpu.machine() not in cpu.X86 or shutil.which(compiler()) is None,
                                reason="needs gcc for x86-64")


@pytest.mark.parametrize("isa", sorted(ports.ISAS))
def test_probes_assemble(isa, tmp_path):
    src = tmp_path / "ports.c"
    src.write_text(ports.ports_source(isa))
    r = subprocess.run([compiler(), *get_c_target(isa).cflags(), "-c", str(src), "-o", str(tmp_path / "ports.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _, probes = ports.ISAS[isa]
    for probe in probes:    # every probe writes CHAINS independent destinations a pass
        lines = probe.lines("ymm")
        assert len(lines) == ports.CHAINS * len(probe.unit)
        assert {line.split()[-1] for line in lines} >= {f"%%ymm{c}" for c in range(ports.CHAINS)}


def test_avx2_hot_loops_counted_as_written():
    i2 = ports.loop_cost("avx2", "i2", 2560, 2560, 1)
    # a step of 128 weights: 1 shift, 4 and, 4 maddubs, 4 add; every 8 steps 4 more to widen; the row's end
    assert i2.loop.count("vpmaddubsw") == 4 * 3 * 8 and 13 <= 128 * i2.per_weight <= 14
    tl2 = ports.loop_cost("avx2", "tl2", 2560, 2560, 1)
    # a group (3 weights x 64 rows): 4 lookups, 4 signs, 4 byte adds, 3 for the indices, 2 sign doublings,
    # and every 4 groups 12 to widen
    assert tl2.loop.count("vpshufb") == 32 and 19 <= 192 * tl2.per_weight <= 20.5
    for fmt in ("i2", "tl2"):   # the shared GEMM tile: one maddubs and one add for 8 rows x 4 weights
        tile = ports.loop_cost("avx2", fmt, 2560, 2560, 64)
        assert "_tile" in tile.loop.function and tile.per_weight == 2 / 32


def test_avx512_hot_loops_found():
    for fmt, n, marker in (("i2", 1, "vpdpbusd"), ("tl2", 1, "vpermb"), ("i2", 64, "vpdpbusd")):
        cost = ports.loop_cost("avx512", fmt, 2560, 2560, n)
        assert cost.loop.count(marker) > 0 and 0 < cost.per_weight < 0.1


@pytest.mark.skipif(not get_c_target("avx2").runs_natively(), reason="this CPU does not run AVX2")
def test_avx2_probes_run():
    pipes = ports.measure("avx2", iters=1 << 14, repeat=3)
    assert 0.2 < pipes.clock_ghz < 10
    assert set(pipes.per_cycle) == {p.name for p in ports.AVX2_PROBES}
    assert all(v > 0 for v in pipes.per_cycle.values()) and pipes.widest > 0
