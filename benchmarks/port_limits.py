"""What bounds the kernels on this core: its vector pipes, measured, against each kernel's hot loop.

First the core's clock (a chain of dependent one-cycle additions) and the instructions a cycle of the
kernels' building blocks, each in a register-only asm loop: single instructions, and the mixes the
kernels are made of (`maddubs` + add: the i2 GEMV and every GEMM tile; lookup + sign + byte add: tl2).
Then, for each kernel this CPU runs (avx2; avx512 where it runs natively): its hot loop's vector ALU
instructions a weight (counted in gcc's assembly of the generated C), the **ALU bound** they imply (every
vector pipe busy every cycle), the kernel's measured rate with its weights hot (its bare C call, median
of `--repeat`), that rate as % of the bound, and for a GEMV the DRAM roofline of its format (the fastest
stream read of one core, in weights a second). A GEMV whose ALU bound lies below its DRAM roofline cannot
reach the roofline on one core whatever its memory access does.

    python benchmarks/port_limits.py [--shape 2560x2560] [--tokens 64] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_c_target
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime import ports
from ternkit.runtime.bench import median_time, read_streams
from ternkit.runtime.kernels import compile_plan
from ternkit.textable import table


def hot_rate(target_name: str, fmt: str, M: int, K: int, n: int, repeat: int) -> float:
    """Weights (x tokens) a second of the kernel's bare C call, its weights hot, on one thread."""
    target = get_c_target(target_name)
    spec = target.specialise(KernelSpec(M, K, n, weight_format=fmt))
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    x = rng.integers(-128, 128, (n, K)).astype(np.int8)
    kernel = compile_plan(Plan(target_name, "ports", [spec]), target).kernel(spec, w)
    out = np.empty((n, M), np.int32)
    if not (kernel(x, threads=1, out=out) == ternary_matmul(x, w)).all():
        raise SystemExit(f"{target_name}/{fmt} {M}x{K} n={n} differs from ternary_matmul")
    call = kernel.bound(x, out)
    calls = max(1, int(2e8 // (M * K * n)))    # ~0.1 s a sample at ~100 G weights/s

    def run() -> None:
        for _ in range(calls):
            call()
    return M * K * n * calls / median_time(run, repeat, clock=time.thread_time)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="2560x2560", help="M x K of the kernels")
    ap.add_argument("--tokens", type=int, default=64, help="n of the GEMMs")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    M, K = (int(v) for v in args.shape.split("x"))
    isas = [isa for isa in ports.ISAS if get_c_target(isa).runs_natively()]
    if not isas:
        raise SystemExit("port_limits: this CPU runs neither AVX2 nor AVX-512 natively: nothing to measure")
    roof = max(read_streams().values())
    print(f"one core's fastest DRAM read: {roof:.1f} GB/s")
    rows = []
    for isa in isas:
        pipes = ports.measure(isa)
        print(f"\n{isa}: core clock {pipes.clock_ghz:.2f} GHz (dependent vpaddd); instructions a cycle, register-only:")
        print(table(["instructions", "a cycle"], [[name, f"{v:.2f}"] for name, v in pipes.per_cycle.items()]))
        target = get_c_target(isa)
        for fmt, n in (("i2", 1), ("tl2", 1), ("i2", args.tokens), ("tl2", args.tokens)):
            if fmt not in target.formats:
                continue
            spec = target.specialise(KernelSpec(M, K, n, weight_format=fmt))
            path = ports.path(spec).upper()
            if n > 1 and path == "GEMV":    # no GEMM for this format (avx512 tl2) or this few tokens
                continue
            print(f"  {isa}/{fmt} {path} ...", flush=True)
            cost = ports.loop_cost(isa, fmt, M, K, n)
            bound, rate = cost.bound(pipes), hot_rate(isa, fmt, M, K, n, args.repeat)
            dram = roof * 1e9 * M * K / target.packed_bytes(spec) if n == 1 else None
            rows.append([f"{isa}/{fmt} {path}", f"{n}", f"{cost.per_weight * 128:.2f}", f"{bound / 1e9:.0f}",
                         f"{rate / 1e9:.0f}", f"{100 * rate / bound:.0f} %",
                         f"{dram / 1e9:.0f}" if dram else "-"])
    print(f"\n{M} x {K}, one thread; G weights/s (x tokens for a GEMM):")
    print(table(["kernel", "n", "ALU ops / 128 weights", "ALU bound", "hot", "% of bound", "DRAM roofline"],
                rows))


if __name__ == "__main__":
    main()
