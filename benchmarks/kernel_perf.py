"""Kernel performance on the BitNet b1.58 2B4T shapes, side by side in one process, for every thread
count asked: our kernels (every native target and format), the faithful ggml TQ2_0 (the reference
point: fp16 block scales, q8_K activations), the I2_S-style `i2s` kernel, our scalar kernel, numpy
float32 matmul (BLAS bounded to the same thread count) and a generated stream-read kernel split by
the same pool (the bandwidth roofline). GEMV is timed with weights hot in cache and streamed from
DRAM (a working set of distinct copies >> caches); GEMM for prefill token counts. Median of repeats.
Progress goes to stderr; the table goes to stdout and to a results file.

    python benchmarks/kernel_perf.py [--shapes 2560x2560,6912x2560,2560x6912] [--tokens 1,64]
                                     [--threads 1,2,...,auto] [--targets avx512,avx2] [--plot gemv.png]
                                     [--out benchmarks/results/kernel_perf-<cpu>-<isa>-<cores>c.txt]
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import sys
from pathlib import Path

from ternkit.codegen import tuning
from ternkit.codegen.targets import get_target, native_target, native_targets
from ternkit.errors import TernkitError
from ternkit.outputs import check_file
from ternkit.runtime import bench, pool

RESULTS = Path(__file__).resolve().parent / "results"


def default_threads() -> str:
    """1, the powers of two below the usable cores, the usable cores, and auto."""
    cores = pool.usable_cores()
    counts = [1 << i for i in range(cores.bit_length()) if 1 << i < cores] + [cores]
    return ",".join(str(c) for c in dict.fromkeys(counts)) + ",auto"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="2560x2560,6912x2560,2560x6912")
    ap.add_argument("--tokens", default="1,64")
    ap.add_argument("--threads", default=None, help=f"thread counts or auto (default here: {default_threads()})")
    ap.add_argument("--targets", default="", help="default: every native x86 SIMD target")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--dram-mb", type=int, default=512)
    ap.add_argument("--no-scalar", action="store_true")
    ap.add_argument("--tuning", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/results/kernel_perf-<cpu>-<isa>-<cores>c.txt)")
    args = ap.parse_args()
    if args.plot:
        check_file(args.plot, "--plot")     # before the ~6 minutes of measuring
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    threads = pool.parse_thread_counts(args.threads or default_threads())
    if args.targets:
        targets = [native_target(t, "benchmark") for t in args.targets.split(",")]
    else:
        targets = [t for t in native_targets() if t.name not in ("scalar", "i2s")]
    rows = bench.measure(shapes, [int(v) for v in args.tokens.split(",")], targets, threads=threads,
                         dram=args.dram_mb > 0, dram_mb=args.dram_mb, scalar=not args.no_scalar, repeat=args.repeat,
                         tuning=tuning.load(args.tuning) if args.tuning else None)
    machine = tuning.machine_name()
    text = "\n".join([
        f"machine: {machine}; {pool.usable_cores()} usable cores; int8 peak {bench.int8_peak_gops():.0f} GOPS/core "
        f"(measured); median of {args.repeat} runs; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"command: python benchmarks/kernel_perf.py {shlex.join(sys.argv[1:])}".rstrip(), bench.streams_line(),
        "", bench.format_table(rows), "", bench.NOTES])
    print(text)
    isa = "avx512" if get_target("avx512").runs_natively() else "avx2"
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = args.out or RESULTS / f"kernel_perf-{slug}-{isa}-{pool.usable_cores()}c.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"wrote {out}")
    if args.plot:
        bench.plot_gemv(rows, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    try:
        main()
    except TernkitError as exc:
        raise SystemExit(f"kernel_perf: error: {exc}") from None
