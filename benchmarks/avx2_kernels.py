"""The AVX2 kernels of issue 11 side by side in one process: decode GEMV hot (one matrix again and
again) and from DRAM (a rotation over copies of the packed weights far larger than the caches), prefill
GEMM, each kernel checked bit-exact first; ratios against the first kernel listed. Medians (`--stat
min`: best) of `--repeat` interleaved rounds, every kernel and the roofline seeing the same machine
state; from DRAM their calls alternate one by one, so that all of them see the same memory-bus
contention. Each call is timed as its bare C call (the kernels' `bound()`: operands checked and bound
once), as the stream read is: a checked Python call adds ~2 us, which was 10 % of a 640 x 2560 GEMV from
DRAM. Timed by default in this thread's CPU time (`--clock cpu`: on a machine shared with other
jobs, the time other processes hold this core is left out; `--clock wall` counts it).

`tq2_0` is ggml's TQ2_0 x q8_K kernel, faithfully (ternkit.runtime.ggml_tq2_0: per-block fp16 scales,
all 1 here, so its float results equal the integer core). `bitnet:i2_s` is bitnet.cpp's own I2_S kernel
(ACT_PARALLEL, its default), compiled from the checkout given with `--bitnet-cpp PATH`
(ternkit.runtime.bitnet_cpp; its float sums less sum(x) must equal the integer product). The rooflines
are measured in the same rounds: `stream` reads the i2 weight bytes (M x K / 4) with plain 256-bit loads
as one sequential stream, `stream xS` as the S streams at once that one core reads fastest (Zen 3: 1.25-1.45x
faster than one; header line) (hot: one buffer again and again; dram: the same rotation of copies);
`% roof` is the faster stream read's time over the kernel's, `% 1-str` the one-stream read's; GEMM rows
give the % of the core's int8 peak (`_mm256_maddubs_epi16` + add chains, 2 ops a weight x token).

    python benchmarks/avx2_kernels.py [--shapes 2560x2560,6912x2560,2560x6912,640x2560]
        [--kernels tq2_0,i2s:i2,avx2:i2,avx2:b3,avx2:tl2,bitnet:i2_s] [--tokens 1,64] [--dram-mb 256]
        [--repeat 7] [--clock cpu|wall] [--stat median|min] [--bitnet-cpp PATH]

A kernel is `tq2_0`, `target:format` or `target:format:key=value[:key=value...]` (a tiling, checked
like `ternkit tune`'s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.errors import TernkitError
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime import ggml_tq2_0
from ternkit.runtime import bitnet_cpp
from ternkit.runtime.bitnet_cpp import BitnetI2S
from ternkit.runtime.hugepages import HugeArena
from ternkit.runtime.bench import best_streams, int8_peak_gops, roofline_module, streams_line
from ternkit.runtime.kernels import compile_plan

CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
STATS = {"median": statistics.median, "min": min}
PAGES = {"huge": HugeArena().copy, "base": np.copy}    # every kernel's copies from one arena, in turn
clock, stat, copy_weights = CLOCKS["cpu"], STATS["median"], PAGES["huge"]
bitnet_root = None


class Bench:
    """One kernel of the table: its operands prepared once, `call()` runs it on copy `i` of its weights."""

    def __init__(self, label: str, w: np.ndarray, x: np.ndarray) -> None:
        M, K = w.shape
        n = x.shape[0]
        if label == "tq2_0":
            self.kerns = [ggml_tq2_0.Tq2_0Kernel(w)]
            self.x, self.out = ggml_tq2_0.q8_K_blocks(x), np.empty((n, M), np.float32)
        elif label == "bitnet:i2_s":
            self.kerns = [BitnetI2S(w, bitnet_root)]
            self.x, self.out = x, np.empty((n, M), np.float32)
        else:
            tname, fmt, *rest = label.split(":")
            tiling = tuple(sorted((kv.split("=")[0], int(kv.split("=")[1])) for kv in rest if kv))
            target = get_target(tname)
            spec = target.specialise(KernelSpec(M, K, n, weight_format=fmt, tiling=tiling))
            self.kerns = [compile_plan(Plan(tname, "bench", [spec]), target).kernel(spec, w)]
            self.x, self.out = x, np.empty((n, M), np.int32)
        self.calls = 1
        self.fns = [k.bound(self.x, self.out) for k in self.kerns]   # timed: the C call, not Python's checks

    def result(self) -> np.ndarray:
        raw = self.kerns[0](self.x, threads=1, out=self.out)
        return BitnetI2S.integer(self.x, raw) if isinstance(self.kerns[0], BitnetI2S) else raw

    def start_copies(self, total_bytes: int) -> int:
        """The DRAM mode: drop the bound weights (copies follow, `add_copy`); how many make `total_bytes`."""
        self.first, self.kerns, self.fns = self.kerns[0], [], []
        return max(2, total_bytes // self.first.packed.nbytes)

    def add_copy(self) -> None:
        self.kerns.append(self.first.with_packed(copy_weights(self.first.packed)))
        self.fns.append(self.kerns[-1].bound(self.x, self.out))

    def run(self) -> float:
        """Seconds a call, averaged over `calls` calls rotating through the copies (this thread only)."""
        fns = self.fns
        t0 = clock()
        for i in range(self.calls):
            fns[i % len(fns)]()
        return (clock() - t0) / self.calls

    def once(self, i: int) -> float:
        fn = self.fns[i % len(self.fns)]
        t0 = clock()
        fn()
        return clock() - t0


class StreamRead:
    """The bandwidth roofline: a plain read of as many bytes, over as many buffers, as `streams`
    sequential streams at once."""

    def __init__(self, nbytes: int, streams: int) -> None:
        self.mod, _ = roofline_module()
        self.nbytes, self.bufs, self.ptrs, self.streams = nbytes, [], [], streams
        self.read, self.calls = self.mod.lib.ternkit_stream_read, 1

    def start_copies(self, total_bytes: int) -> int:
        self.bufs, self.ptrs = [], []
        return max(2, total_bytes // self.nbytes)

    def add_copy(self) -> None:
        self.bufs.append(copy_weights(np.ones(self.nbytes, np.uint8)))
        self.ptrs.append(self.mod.ffi.from_buffer("uint8_t[]", self.bufs[-1]))

    def run(self) -> float:
        t0 = clock()
        for i in range(self.calls):
            self.read(self.ptrs[i % len(self.ptrs)], self.nbytes, self.streams)
        return (clock() - t0) / self.calls

    def once(self, i: int) -> float:
        p, n = self.ptrs[i % len(self.ptrs)], self.nbytes
        t0 = clock()
        self.read(p, n, self.streams)
        return clock() - t0


def allocate_in_turn(items: dict, total_bytes: int) -> None:
    """The DRAM mode's copies, `total_bytes` of each item, one copy of each at a time: allocated item by
    item, the first item's copies read DRAM up to 20 % slower than the last's on this VM (one kernel listed
    four times ran 1.00 / 1.14 / 1.18 / 1.20x the first); in turn, within 3 %."""
    counts = {label: item.start_copies(total_bytes) for label, item in items.items()}
    for j in range(max(counts.values())):
        for label, item in items.items():
            if j < counts[label]:
                item.add_copy()


def alternating(items: dict, calls: int) -> dict[str, float]:
    """Seconds a call over one pass of `calls` copies, the items' calls alternating one by one, the order
    rotated every step (the call right after the stream read ran ~10 % slower: no item always takes it)."""
    total = dict.fromkeys(items, 0.0)
    labels = list(items)
    for i in range(calls):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            total[label] += items[label].once(i)
    return {label: t / calls for label, t in total.items()}


def calibrate(item) -> None:
    """Hot: about 20 ms of calls a round."""
    item.calls = max(3, int(2e-2 // max(item.run(), 1e-6)))


def main() -> None:
    global clock, stat, bitnet_root, copy_weights
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="2560x2560,6912x2560,2560x6912,640x2560")
    ap.add_argument("--kernels", default="tq2_0,i2s:i2,avx2:i2,avx2:b3,avx2:tl2")
    ap.add_argument("--tokens", default="1,64")
    ap.add_argument("--dram-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    ap.add_argument("--stat", choices=sorted(STATS), default="median")
    ap.add_argument("--bitnet-cpp", metavar="PATH", help="a bitnet.cpp checkout, for the bitnet:i2_s kernel")
    ap.add_argument("--pages", choices=sorted(PAGES), default="huge",
                    help="the DRAM copies in 2 MiB transparent huge pages (default, as the C runtime's weights) "
                         "or in the allocator's own pages")
    args = ap.parse_args()
    clock, stat, bitnet_root, copy_weights = CLOCKS[args.clock], STATS[args.stat], args.bitnet_cpp, PAGES[args.pages]
    labels = args.kernels.split(",")
    if "bitnet:i2_s" in labels:
        bitnet_cpp.checkout(bitnet_root)      # a missing checkout: one line before any work
    rng = np.random.default_rng(0)
    peak = int8_peak_gops(clock)
    many = best_streams()
    print(f"int8 peak (one core, maddubs + add chains): {peak:.0f} GOPS; {args.clock} time, {args.stat} of {args.repeat}; "
          f"DRAM copies in {args.pages} pages")
    print(streams_line())
    print(f"{'M x K':>10} {'n':>4} {'kernel':<30} {'mode':<5} {'us':>10} {'GB/s':>6} {'% roof':>7} {'% 1-str':>8} "
          f"{'x first':>8}")
    for shape in args.shapes.split(","):
        M, K = (int(v) for v in shape.split("x"))
        w = rng.integers(-1, 2, (M, K)).astype(np.int8)
        i2_bytes = M * K // 4
        for n in (int(v) for v in args.tokens.split(",")):
            x = rng.integers(-128, 128, (n, K)).astype(np.int8)
            ref = ternary_matmul(x, w)
            benches = {label: Bench(label, w, x) for label in labels}
            for label, b in benches.items():
                if not np.array_equal(b.result(), ref):
                    raise SystemExit(f"{label} {shape} n={n} differs from ternary_matmul")
            for mode in ("hot", "dram") if n == 1 and args.dram_mb else ("hot",):
                items: dict[str, Bench | StreamRead] = dict(benches)
                streams = {"stream": 1, f"stream x{many}": many} if n == 1 else {}
                for label, k in streams.items():
                    items[label] = StreamRead(i2_bytes, k)
                    items[label].add_copy()
                copies = 1
                if mode == "dram":
                    copies = max(2, (args.dram_mb << 20) // i2_bytes)
                    allocate_in_turn(items, args.dram_mb << 20)
                if mode == "hot":
                    for item in items.values():
                        calibrate(item)
                calls = min([len(b.kerns) for b in benches.values()] + [copies])
                times: dict[str, list[float]] = {label: [] for label in items}
                for _ in range(args.repeat):     # interleaved rounds: every kernel sees the same noise
                    found = (alternating(items, calls) if mode == "dram" else
                             {label: item.run() for label, item in items.items()})
                    for label, t in found.items():
                        times[label].append(t)
                med = {label: stat(ts) for label, ts in times.items()}
                for label in items:
                    s = med[label]
                    nbytes = benches[label].kerns[0].packed.nbytes if label in benches else i2_bytes
                    gbs = nbytes / s / 1e9 if n == 1 else float("nan")
                    best = min((med[k] for k in streams), default=0.0)      # the faster stream read: the roofline
                    roof = 100 * best / s if n == 1 else 100 * 2 * M * K * n / s / 1e9 / peak
                    one = f"{100 * med['stream'] / s:>7.0f}%" if n == 1 else f"{'-':>8}"
                    print(f"{shape:>10} {n:>4} {label:<30} {mode:<5} {s * 1e6:>10.1f} {gbs:>6.1f} {roof:>6.0f}% {one} "
                          f"{med[labels[0]] / s:>8.2f}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except TernkitError as exc:
        raise SystemExit(f"error: {exc}") from None
