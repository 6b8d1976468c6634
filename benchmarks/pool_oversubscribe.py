"""The thread pool when more threads are forced than the machine has cores: the same GEMV split into
1, 2, 4, 8, 16 parts on as many threads (no cap, like `Kernel.call_split`), against the automatic
choice, with the share of parts the pool's workers ran (the caller runs the rest).
On an oversubscribed machine a split call must not be much slower than one thread, because the
caller runs every chunk no worker has claimed. Median and 90th percentile of many calls.

    python benchmarks/pool_oversubscribe.py [--shape 2560x2560] [--target avx2] [--calls 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import best_native_target, get_target
from ternkit.runtime import pool
from ternkit.runtime.kernels import compile_plan


def percentiles(fn, calls: int) -> tuple[float, float]:
    for _ in range(20):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6, float(np.percentile(times, 90)) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="2560x2560")
    ap.add_argument("--target", default=None)
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args()
    M, K = (int(v) for v in args.shape.split("x"))
    t = get_target(args.target) if args.target else best_native_target()
    spec = t.specialise(KernelSpec(M, K, 1))
    rng = np.random.default_rng(0)
    kern = compile_plan(Plan(t.name, "pool", [spec]), t).kernel(spec, rng.integers(-1, 2, (M, K)).astype(np.int8))
    x = rng.integers(-128, 128, (1, K)).astype(np.int8)
    y = np.empty((1, M), np.int32)
    print(f"{t.name} GEMV {M}x{K}, {pool.usable_cores()} usable cores, {args.calls} calls each")
    print(f"{'threads':>16}  {'median us':>10}  {'p90 us':>8}  {'x 1 thread':>10}  {'parts run by workers':>20}")
    one, _ = percentiles(lambda: kern(x, threads=1, out=y), args.calls)
    rows = [("1", one, _, "-")]
    runner = pool.Runner(kern._ffi, kern._mod_lib, kern.spec.name, kern.packed)
    for parts in (2, 4, 8, 16):
        edges, by_workers = pool.edges_of(kern.split(parts)), [0]

        def call() -> None:
            by_workers[0] += runner.run(x, y, 1, edges, parts)
        med, p90 = percentiles(call, args.calls)
        rows.append((f"{parts} forced", med, p90, f"{by_workers[0] / ((args.calls + 20) * parts):.0%}"))
    for asked in (16, "auto"):
        med, p90 = percentiles(lambda: kern(x, threads=asked, out=y), args.calls)
        rows.append((f"{asked} -> {kern.threads_for(1, asked)} used", med, p90, "-"))
    for label, med, p90, share in rows:
        print(f"{label:>16}  {med:10.1f}  {p90:8.1f}  {one / med:10.2f}  {share:>20}")


if __name__ == "__main__":
    main()
