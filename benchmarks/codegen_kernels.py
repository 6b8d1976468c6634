"""Time the generated kernels of each native target and format on BitNet b1.58 2B4T shapes.

    python benchmarks/codegen_kernels.py [--shapes 2560x2560,6912x2560,2560x6912] [--tokens 1,8] [--threads 1]

Prints one row per (shape, n, target, format): best-of-R wall time per call and GOPS
(2*M*K*n integer ops). Every kernel is first checked bit-exact against ternary_matmul."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import all_targets
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.kernels import compile_plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="2560x2560,6912x2560,2560x6912")
    ap.add_argument("--tokens", default="1,8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--all", action="store_true", help="include emulated targets (neon via SIMDe)")
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    tokens = [int(v) for v in args.tokens.split(",")]
    rng = np.random.default_rng(0)
    rows = []
    for target in all_targets():
        if target.unavailable_reason() or (not args.all and not target.runs_natively()):
            continue
        specs = [target.specialise(KernelSpec(M, K, n, weight_format=f))
                 for f in target.formats for (M, K) in shapes for n in tokens]
        lib = compile_plan(Plan(target.name, "bench", specs), target)
        for spec in specs:
            w = rng.integers(-1, 2, (spec.M, spec.K)).astype(np.int8)
            x = rng.integers(-128, 128, (spec.N, spec.K)).astype(np.int8)
            kern = lib.kernel(spec, w)
            y = kern(x, threads=args.threads)
            assert np.array_equal(y, ternary_matmul(x, w)), spec.name
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                kern(x, threads=args.threads, out=y)
                best = min(best, time.perf_counter() - t0)
            rows.append((f"{spec.M}x{spec.K}", str(spec.N), target.name, spec.weight_format,
                         f"{best * 1e3:.3f}", f"{spec.ops / best / 1e9:.1f}"))
    header = ("M x K", "n", "target", "format", "ms/call", "GOPS")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
