"""The AVX2 kernels of issue 11 side by side in one process: decode GEMV hot (one matrix again and
again) and from DRAM (a rotation over copies of the packed weights far larger than the caches), prefill
GEMM, each kernel checked bit-exact first; ratios against the first kernel listed. Medians of
`--repeat` interleaved rounds (every kernel and the roofline see the same machine state), timed by
default in this thread's CPU time (`--clock cpu`: on a machine shared with other jobs, the time the
thread waits descheduled is not counted; `--clock wall` counts it).

The rooflines are measured in the same rounds: `stream` reads as many bytes as the GEMV weights with
plain 256-bit loads (hot: one buffer again and again; dram: the same rotation of copies), and GEMM rows
give the % of the core's int8 peak (`_mm256_maddubs_epi16` chains, 2 ops a weight x token).

    python benchmarks/avx2_kernels.py [--shapes 2560x2560,6912x2560,2560x6912,640x2560]
        [--kernels baseline:i2,avx2:i2,avx2:b3] [--tokens 1,64] [--dram-mb 256] [--repeat 7] [--clock cpu]

A kernel is `target:format` or `target:format:key=value,...` (a tiling, checked like `ternkit tune`'s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.bench import roofline_module, stream_fn
from ternkit.runtime.kernels import Kernel, compile_plan


def build(label: str, M: int, K: int, n: int, w: np.ndarray) -> Kernel:
    tname, fmt, *rest = label.split(":")
    tiling = tuple(sorted((kv.split("=")[0], int(kv.split("=")[1])) for kv in (rest[0] if rest else "").split(",") if kv))
    target = get_target(tname)
    spec = target.specialise(KernelSpec(M, K, n, weight_format=fmt, tiling=tiling))
    return compile_plan(Plan(tname, "bench", [spec]), target).kernel(spec, w)


def copies_of(kern: Kernel, total_bytes: int) -> list[Kernel]:
    """The kernel bound to distinct copies of its packed weights, `total_bytes` in all."""
    count = max(2, total_bytes // kern.packed.nbytes)
    return [Kernel(spec=kern.spec, packed=kern.packed.copy(), _fn=kern._fn, _ffi=kern._ffi, _mod_lib=kern._mod_lib)
            for _ in range(count)]


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def timer(kerns: list[Kernel], x: np.ndarray, out: np.ndarray, calls: int) -> Callable[[], float]:
    """Seconds a call, averaged over `calls` calls rotating through `kerns` (one thread: this one)."""
    def run() -> float:
        t0 = clock()
        for i in range(calls):
            kerns[i % len(kerns)](x, out=out, threads=1)
        return (clock() - t0) / calls
    return run


def stream_timer(buffers: list[np.ndarray], calls: int) -> Callable[[], float]:
    read = stream_fn(buffers)

    def run() -> float:
        t0 = clock()
        for _ in range(calls):
            read()
        return (clock() - t0) / (calls * len(buffers))
    return run


def int8_peak_gops() -> float:
    """The core's int8 peak (GOPS) on the benchmark's clock: independent maddubs + add chains."""
    mod, ctx = roofline_module()
    iters = 1 << 20
    t = []
    for _ in range(7):
        t0 = clock()
        mod.lib.ternkit_peak_int8(iters)
        t.append(clock() - t0)
    return iters * ctx["ops_per_step"] / statistics.median(t) / 1e9


def calls_for(run_once: Callable[[], float], mode: str) -> int:
    return 1 if mode == "dram" else max(3, int(2e-2 // max(run_once(), 1e-6)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="2560x2560,6912x2560,2560x6912,640x2560")
    ap.add_argument("--kernels", default="baseline:i2,avx2:i2,avx2:b3")
    ap.add_argument("--tokens", default="1,64")
    ap.add_argument("--dram-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    labels = args.kernels.split(",")
    rng = np.random.default_rng(0)
    peak = int8_peak_gops()
    print(f"int8 peak (one core, maddubs chains): {peak:.0f} GOPS")
    print(f"{'M x K':>10} {'n':>4} {'kernel':<34} {'mode':<5} {'us':>10} {'GB/s':>6} {'% roof':>7} {'x first':>8}")
    for shape in args.shapes.split(","):
        M, K = (int(v) for v in shape.split("x"))
        w = rng.integers(-1, 2, (M, K)).astype(np.int8)
        for n in (int(v) for v in args.tokens.split(",")):
            x = rng.integers(-128, 128, (n, K)).astype(np.int8)
            ref = ternary_matmul(x, w)
            kerns = {label: build(label, M, K, n, w) for label in labels}
            for label, kern in kerns.items():
                if not np.array_equal(kern(x), ref):
                    raise SystemExit(f"{label} {shape} n={n} differs from ternary_matmul")
            weight_bytes = M * K // 4
            modes = {"hot": {label: [kern] for label, kern in kerns.items()}}
            if n == 1 and args.dram_mb:
                modes["dram"] = {label: copies_of(kern, args.dram_mb << 20) for label, kern in kerns.items()}
            out = np.empty((n, M), np.int32)
            for mode, sets in modes.items():
                runs = {label: timer(ks, x, out, 1) for label, ks in sets.items()}
                runs = {label: timer(sets[label], x, out, len(sets[label]) if mode == "dram" else calls_for(run, mode))
                        for label, run in runs.items()}
                if n == 1:   # the bandwidth roofline: as many bytes, read the same way (hot or rotating copies)
                    bufs = [np.ones(weight_bytes, np.uint8) for _ in range(len(next(iter(sets.values()))))]
                    runs["stream"] = stream_timer(bufs, calls_for(stream_timer(bufs, 1), mode))
                times: dict[str, list[float]] = {label: [] for label in runs}
                for _ in range(args.repeat):     # interleaved rounds: every kernel sees the same noise
                    for label, run in runs.items():
                        times[label].append(run())
                med = {label: statistics.median(ts) for label, ts in times.items()}
                for label in runs:
                    s = med[label]
                    gbs = weight_bytes / s / 1e9
                    roof = 100 * med["stream"] / s if n == 1 else 100 * 2 * M * K * n / s / 1e9 / peak
                    print(f"{shape:>10} {n:>4} {label:<34} {mode:<5} {s * 1e6:>10.1f} "
                          f"{gbs if n == 1 else float('nan'):>6.1f} {roof:>6.0f}% {med[labels[0]] / s:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
