"""What bounds a kernel on this core's vector pipes: the measured throughput of single instructions and of
the kernels' instruction mixes, and the bound each generated kernel's hot loop implies.

The probes (`templates/bench/ports.c.j2`) are register-only asm loops (no loads, no stores). The core's
clock is measured with a chain of dependent one-cycle additions, so instructions a cycle need no frequency
from the OS (boost clocks, a VM's TSC). A kernel's ALU bound is its hot loop's vector instructions a
weight, counted in gcc's assembly of the generated C, at the widest simple instruction's rate
(`vpand`: every vector pipe): the rate it would reach if it issued one instruction to every pipe every
cycle. Memory is not part of it: with weights hot in L1/L2 a kernel can only be slower."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from ternkit.codegen.jinja import render
from ternkit.codegen.library import cffi_source
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_c_target
from ternkit.runtime.bench import median_time
from ternkit.toolchain.asm_loops import Loop, compile_to_asm, innermost_loops
from ternkit.toolchain.cffi_build import build_module

CHAINS = 12          # independent destinations / accumulators a probe pass (registers 0-11)
CLOCK_CHAIN = 16     # dependent additions a pass of the clock probe


@dataclass(frozen=True)
class Probe:
    name: str
    unit: tuple[str, ...]   # AT&T; {r} the register kind, {d} a destination, {t} a temporary, {a} {b} sources

    def lines(self, reg: str) -> list[str]:
        return [i.format(r=f"%%{reg}", d=c, t=CHAINS + c % 2, a=14, b=15) for c in range(CHAINS) for i in self.unit]


def _one(insn: str) -> Probe:
    return Probe(insn, (f"{insn} {{r}}{{a}}, {{r}}{{b}}, {{r}}{{d}}",))


# the building blocks of the kernels: i2 GEMV/GEMM (maddubs + add), tl2 (lookup + sign + byte add); the
# first probe of each ISA is its simplest instruction (Pipes.widest)
AVX2_PROBES = (
    _one("vpand"), _one("vpaddw"), Probe("vpsrlw (immediate)", ("vpsrlw $4, {r}{b}, {r}{d}",)),
    _one("vpshufb"), _one("vpsignb"), _one("vpmaddubsw"), _one("vpmaddwd"),
    Probe("vpmaddubsw + vpaddw", ("vpmaddubsw {r}{a}, {r}{b}, {r}{t}", "vpaddw {r}{t}, {r}{d}, {r}{d}")),
    Probe("vpshufb + vpsignb + vpaddb", ("vpshufb {r}{a}, {r}{b}, {r}{t}", "vpsignb {r}{a}, {r}{t}, {r}{t}",
                                         "vpaddb {r}{t}, {r}{d}, {r}{d}")),
)
AVX512_PROBES = (
    _one("vpandd"), _one("vpshufb"), _one("vpermb"), _one("vpmaddubsw"),
    Probe("vpdpbusd (accumulating)", ("vpdpbusd {r}{a}, {r}{b}, {r}{d}",)),
)
ISAS = {"avx2": ("ymm", AVX2_PROBES), "avx512": ("zmm", AVX512_PROBES)}


def ports_source(isa: str) -> str:
    reg, probes = ISAS[isa]
    chain = [f"vpaddd %%{reg}0, %%{reg}0, %%{reg}0"] * CLOCK_CHAIN
    return render("bench/ports.c.j2", chain=chain, probes=[dict(name=p.name, lines=p.lines(reg)) for p in probes])


@functools.lru_cache(maxsize=None)
def _module(isa: str):
    _, probes = ISAS[isa]
    cdef = "".join(f"void ternkit_ports_{name}(int64_t iters);\n" for name in ["chain", *range(len(probes))])
    return build_module("ports", cdef, ports_source(isa), flags=("-O2", *get_c_target(isa).isa.flags))


@dataclass(frozen=True)
class Pipes:
    isa: str
    clock_ghz: float
    per_cycle: dict[str, float]    # probe name -> instructions a cycle

    @property
    def widest(self) -> float:
        """Instructions a cycle of the simplest vector instruction (each ISA's first probe, an and): the
        number of vector pipes."""
        return self.per_cycle[ISAS[self.isa][1][0].name]


def measure(isa: str, iters: int = 1 << 21, repeat: int = 5) -> Pipes:
    """Clock and instruction throughput of this core for `isa` ("avx2"; "avx512" where it runs natively),
    each loop's median in this thread's CPU time (other jobs' time slices drop out)."""
    lib = _module(isa).lib

    def seconds(name: str) -> float:
        fn = getattr(lib, f"ternkit_ports_{name}")
        return median_time(lambda: fn(iters), repeat, clock=time.thread_time)

    hz = iters * CLOCK_CHAIN / seconds("chain")
    _, probes = ISAS[isa]
    per_cycle = {p.name: iters * len(p.unit) * CHAINS / seconds(str(i)) / hz for i, p in enumerate(probes)}
    return Pipes(isa, hz / 1e9, per_cycle)


# -- the kernels' hot loops -------------------------------------------------------------------------
@dataclass(frozen=True)
class LoopCost:
    loop: Loop
    alu: int        # vector ALU instructions a pass (loads, stores, broadcasts from memory excluded)
    work: int       # weights a pass (x tokens for a GEMM)

    @property
    def per_weight(self) -> float:
        return self.alu / self.work

    def bound(self, pipes: Pipes) -> float:
        """Weights (x tokens) a second if every vector pipe ran one of these instructions every cycle."""
        return pipes.clock_ghz * 1e9 * pipes.widest / self.per_weight


# a hot loop is the innermost loop with the most of its marker instruction, each `work` weights (x tokens):
# avx2 i2 4 maddubs a 128 weights, tl2 4 lookups a group of 3 weights x 64 rows, the GEMM tile 8 rows x 4
# weights a maddubs; avx512 i2 4 dpbusd a 256 weights, tl2 2 vpermb (l, h) a group x 64 rows, its GEMM
# tile 4 weights x 16 tokens a dpbusd
MARKERS = {("avx2", "i2", "gemv"): ("vpmaddubsw", 32), ("avx2", "tl2", "gemv"): ("vpshufb", 48),
           ("avx2", "i2", "gemm"): ("vpmaddubsw", 32), ("avx2", "tl2", "gemm"): ("vpmaddubsw", 32),
           ("avx512", "i2", "gemv"): ("vpdpbusd", 64), ("avx512", "tl2", "gemv"): ("vpermb", 96),
           ("avx512", "i2", "gemm"): ("vpdpbusd", 64)}
_NOT_ALU = ("vmov", "vbroadcast", "vzero")


def is_vector_alu(insn: str) -> bool:
    op = insn.split()[0]
    return op.startswith("v") and not op.startswith(_NOT_ALU)


def path(spec: KernelSpec) -> str:
    """The path the kernel of `spec` takes for its N tokens: "gemm" from gemm_min on, else "gemv" (also
    where the format has no GEMM)."""
    gemm_min = spec.tile("gemm_min")
    return "gemm" if gemm_min is not None and spec.N >= gemm_min else "gemv"


def loop_cost(target_name: str, fmt: str, M: int, K: int, n: int) -> LoopCost:
    """The hot loop of target `target_name`'s `fmt` kernel for M x K and n tokens, as gcc compiles it."""
    target = get_c_target(target_name)
    spec = target.specialise(KernelSpec(M, K, n, weight_format=fmt))
    _, source = cffi_source(Plan(target_name, "ports", [spec]), target)
    way = path(spec)
    marker, work = MARKERS[target_name, fmt, way]
    # the source holds both paths: the GEMM's register tile is its own function, `<name>_tile`
    loops = [lp for lp in innermost_loops(compile_to_asm(source, target.cflags()))
             if ("_tile" in lp.function) == (way == "gemm")]
    loop = max(loops, key=lambda lp: lp.count(marker))
    return LoopCost(loop, sum(map(is_vector_alu, loop.instructions)), loop.count(marker) * work)
