"""Static analysis of the AVX-512 kernels' hot loops, for a machine without AVX-512: each kernel is
generated for the given shape, compiled to assembly with the target's real flags (`gcc -O3 -mavx512f
-mavx512bw -mavx512vnni -mavx512vbmi -S`), and its hot loop (`avx512.hot_loops`) is measured per step:
instructions, vector register-to-register copies, spills (stores to the stack), and llvm-mca's predicted cycles on
Sapphire Rapids and Zen 4 with the bottleneck it names. Nothing here runs the kernels; llvm-mca's
cycles assume every load hits L1 (a model's prediction, not a timing).

    python benchmarks/avx512_loops.py [--shape 2560x2560] [--tokens 64] [--tiling rows=2 ...]
"""

from __future__ import annotations

import argparse

from ternkit.codegen.library import cffi_source
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.codegen.targets.avx512 import hot_loops
from ternkit.textable import table
from ternkit.toolchain.asm_loops import compile_to_asm, innermost_loops, llvm_mca, mca

CPUS = ("sapphirerapids", "znver4")


def loop_rows(M: int, K: int, tokens: int, tiling: tuple[tuple[str, int], ...]) -> list[list[str]]:
    target = get_target("avx512")
    rows = []
    for fmt in target.formats:
        spec = target.specialise(KernelSpec(M, K, tokens, weight_format=fmt, tiling=tiling))
        _, source = cffi_source(Plan("avx512", "loops", [spec]), target)
        loops = innermost_loops(compile_to_asm(source, target.cflags()))
        for hot in hot_loops(target.kernel_context(spec)):
            loop, steps = hot.find(loops)
            per = lambda v: f"{v / steps:.1f}"   # noqa: E731
            row = [hot.name, hot.step, per(len(loop.instructions)), per(len(loop.vector_copies)),
                   per(len(loop.spills))]
            if llvm_mca() is not None:
                for cpu in CPUS:
                    r = mca(loop, cpu)
                    row += [per(r.cycles), r.bottleneck]
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="2560x2560", help="M x K")
    ap.add_argument("--tokens", type=int, default=64, help="n of the GEMM kernels")
    ap.add_argument("--tiling", nargs="*", default=[], help="key=value tiling overrides (e.g. rows=2)")
    args = ap.parse_args()
    M, K = (int(v) for v in args.shape.split("x"))
    tiling = tuple((k, int(v)) for k, v in (t.split("=") for t in args.tiling))
    head = ["loop", "a step", "insns / step", "vec copies / step", "spills / step"]
    if llvm_mca() is None:
        print("llvm-mca with Sapphire Rapids / Zen 4 models not found (apt-get install llvm-19): no cycle predictions")
    else:
        for cpu in CPUS:
            head += [f"{cpu} cycles / step", f"{cpu} bottleneck"]
    print(table(head, loop_rows(M, K, args.tokens, tiling)))


if __name__ == "__main__":
    main()
