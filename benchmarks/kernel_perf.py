"""Kernel performance on the BitNet b1.58 2B4T shapes, side by side in one process:
our kernels (every native target and format), the baseline (TQ2_0 / I2_S-style AVX2: the established
approach), our scalar kernel, numpy float32 matmul (1 BLAS thread) and a generated stream-read kernel
(the bandwidth roofline). GEMV is timed with weights hot in cache and streamed from DRAM (a working set
of distinct copies >> caches); GEMM for prefill token counts. Median of repeated runs.

    python benchmarks/kernel_perf.py [--shapes 2560x2560,6912x2560,2560x6912] [--tokens 1,64,128,512]
                                     [--threads 1,2] [--targets avx512,avx2] [--plot gemv.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ternkit.codegen import tuning
from ternkit.codegen.targets import native_target, native_targets
from ternkit.errors import TernkitError
from ternkit.runtime import bench


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="2560x2560,6912x2560,2560x6912")
    ap.add_argument("--tokens", default="1,64,128,512")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--targets", default="", help="default: every SIMD target this CPU runs natively")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--dram-mb", type=int, default=512)
    ap.add_argument("--no-scalar", action="store_true")
    ap.add_argument("--tuning", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    if args.targets:
        targets = [native_target(t, "benchmark") for t in args.targets.split(",")]
    else:
        targets = [t for t in native_targets() if t.name not in ("scalar", "baseline")]
    rows = bench.measure(shapes, [int(v) for v in args.tokens.split(",")], targets,
                         threads=[int(v) for v in args.threads.split(",")], dram=args.dram_mb > 0,
                         dram_mb=args.dram_mb, scalar=not args.no_scalar, repeat=args.repeat,
                         tuning=tuning.load(args.tuning) if args.tuning else None)
    print(f"machine: {tuning.machine_name()}; int8 peak {bench.int8_peak_gops():.0f} GOPS/core (measured)")
    print(bench.format_table(rows))
    if args.plot:
        bench.plot_gemv(rows, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    try:
        main()
    except TernkitError as exc:
        raise SystemExit(f"error: {exc}") from None
