"""The AVX2 kernels of issue 11 side by side in one process: decode GEMV hot (one matrix again and
again) and from DRAM (a rotation over copies of the packed weights far larger than the caches), prefill
GEMM, each kernel checked bit-exact first; ratios against the first kernel listed. Best of `--repeat`
interleaved rounds (min, not median: on a shared machine the other processes only ever add time); from
DRAM the kernels' calls alternate one by one, so that all of them see the same memory-bus contention.
`--clock cpu` times with this thread's CPU time (time.thread_time), which leaves out the time other
processes hold this core: steadier on a loaded machine, the same on an idle one.

    python benchmarks/avx2_kernels.py [--shapes 2560x2560,6912x2560,2560x6912,640x2560]
        [--kernels i2s:i2,avx2:i2,avx2:b3,avx2:tl2] [--tokens 1,64] [--dram-mb 256] [--repeat 5]
        [--clock wall|cpu]

A kernel is `target:format` or `target:format:key=value[:key=value...]` (a tiling, checked like
`ternkit tune`'s).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.kernels import Kernel, compile_plan


def build(label: str, M: int, K: int, n: int, w: np.ndarray) -> Kernel:
    tname, fmt, *rest = label.split(":")
    tiling = tuple(sorted((kv.split("=")[0], int(kv.split("=")[1])) for kv in rest if kv))
    target = get_target(tname)
    spec = target.specialise(KernelSpec(M, K, n, weight_format=fmt, tiling=tiling))
    return compile_plan(Plan(tname, "bench", [spec]), target).kernel(spec, w)


def copies_of(kern: Kernel, total_bytes: int) -> list[Kernel]:
    """The kernel bound to distinct copies of its packed weights, `total_bytes` in all."""
    count = max(2, total_bytes // kern.packed.nbytes)
    return [kern.with_packed(kern.packed.copy()) for _ in range(count)]


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = CLOCKS["wall"]


def per_call(kerns: list[Kernel], x: np.ndarray, out: np.ndarray, calls: int) -> float:
    t0 = clock()
    for i in range(calls):
        kerns[i % len(kerns)](x, threads=1, out=out)
    return (clock() - t0) / calls


def per_call_alternating(sets: dict[str, list[Kernel]], x: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """One pass over every kernel's copies, the kernels' calls alternating one by one."""
    total = dict.fromkeys(sets, 0.0)
    calls = min(len(ks) for ks in sets.values())
    for i in range(calls):
        for label, ks in sets.items():
            t0 = clock()
            ks[i](x, threads=1, out=out)
            total[label] += clock() - t0
    return {label: t / calls for label, t in total.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="2560x2560,6912x2560,2560x6912,640x2560")
    ap.add_argument("--kernels", default="i2s:i2,avx2:i2,avx2:b3,avx2:tl2")
    ap.add_argument("--tokens", default="1,64")
    ap.add_argument("--dram-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    labels = args.kernels.split(",")
    rng = np.random.default_rng(0)
    print(f"{'M x K':>10} {'n':>4} {'kernel':<28} {'mode':<5} {'us':>10} {'GB/s':>6} {'x first':>8}")
    for shape in args.shapes.split(","):
        M, K = (int(v) for v in shape.split("x"))
        w = rng.integers(-1, 2, (M, K)).astype(np.int8)
        for n in (int(v) for v in args.tokens.split(",")):
            x = rng.integers(-128, 128, (n, K)).astype(np.int8)
            ref = ternary_matmul(x, w)
            kerns = {label: build(label, M, K, n, w) for label in labels}
            for label, kern in kerns.items():
                if not np.array_equal(kern(x, threads=1), ref):
                    raise SystemExit(f"{label} {shape} n={n} differs from ternary_matmul")
            modes = {"hot": {label: [kern] for label, kern in kerns.items()}}
            if n == 1 and args.dram_mb:
                modes["dram"] = {label: copies_of(kern, args.dram_mb << 20) for label, kern in kerns.items()}
            out = np.empty((n, M), np.int32)
            for mode, sets in modes.items():
                calls = {label: (len(ks) if mode == "dram" else max(3, int(2e-2 // max(per_call(ks, x, out, 1), 1e-6))))
                         for label, ks in sets.items()}
                best = {label: float("inf") for label in labels}
                for _ in range(args.repeat):     # interleaved rounds: every kernel sees the same noise
                    times = (per_call_alternating(sets, x, out) if mode == "dram" else
                             {label: per_call(sets[label], x, out, calls[label]) for label in labels})
                    best = {label: min(best[label], times[label]) for label in labels}
                for label in labels:
                    s = best[label]
                    gbs = kerns[label].packed.nbytes / s / 1e9 if n == 1 else float("nan")
                    print(f"{shape:>10} {n:>4} {label:<28} {mode:<5} {s * 1e6:>10.1f} {gbs:>6.1f} "
                          f"{best[labels[0]] / s:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
