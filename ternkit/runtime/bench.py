"""Side-by-side kernel measurements in one process, for every thread count asked: our kernels per
target and format, the faithful ggml TQ2_0 (`runtime.ggml_tq2_0`: the reference point), the I2_S-style
`i2s` kernel, our scalar kernel, numpy float32 matmul (its BLAS bounded to the same thread count) and
a generated stream-read kernel split by the same thread pool (the bandwidth roofline of that thread
count; plus a one-core int8 multiply-accumulate peak).

Every kernel is checked before it is timed (ours bit-exact against `ternary_matmul`; TQ2_0 with unit
scales equals it exactly too); times are medians of repeated runs. GEMV is measured with its weights
hot in cache (one matrix, called again and again) and streamed from DRAM (a working set of distinct
copies far larger than the caches, called in turn, as in real decoding)."""

from __future__ import annotations

import functools
import io
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ternkit.codegen.jinja import abi, render
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.target import Target
from ternkit.outputs import write_file
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime import ggml_tq2_0, pool
from ternkit.runtime.hugepages import HugeArena
from ternkit.runtime.kernels import compile_plan
from ternkit.textable import table
from ternkit.toolchain.cffi_build import build_module

STREAM_CHAINS = 12
TQ2_0 = "tq2_0 (ggml)"


@dataclass
class Row:
    shape: str            # "M x K"
    n: int                # tokens
    kernel: str           # "avx2/i2", "tq2_0 (ggml)", "i2s/i2", "numpy f32", "stream read"
    mode: str             # hot | dram
    threads: str          # as asked: "1", "2", "auto"
    used: int             # threads the call used (capped by usable cores and work)
    seconds: float
    weight_bytes: int     # packed weight bytes read per call (0 for numpy)
    ops: int
    roofline: float | None = None   # stream-read GB/s, same mode and thread count
    numpy: float | None = None      # numpy f32 seconds, same shape/n and thread count
    tq2_0: float | None = None      # faithful TQ2_0 seconds, same shape/n/mode/thread count
    single: float | None = None     # this kernel's seconds on 1 thread, same mode

    @property
    def us(self) -> float:
        return self.seconds * 1e6

    @property
    def gbs(self) -> float | None:
        return self.weight_bytes / self.seconds / 1e9 if self.weight_bytes else None

    @property
    def gops(self) -> float:
        return self.ops / self.seconds / 1e9


def median_time(fn: Callable[[], object], repeat: int, *, min_seconds: float = 0.0,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of `fn` over `repeat` runs (after one warm-up run), by `clock` (default: wall time)."""
    fn()
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < repeat or time.perf_counter() < t_end:
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


# -- the machine: roofline kernels ----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def roofline_module():
    """The stream-read / int8-peak kernels for the widest vector ISA this CPU runs natively (AVX-512,
    AVX2, else portable C), built with that target's flags."""
    from ternkit.codegen.targets import get_c_target

    width = next((w for name, w in (("avx512", 512), ("avx2", 256)) if get_c_target(name).runs_natively()), 0)
    target = get_c_target({512: "avx512", 256: "avx2", 0: "scalar"}[width])
    lanes = {512: 128, 256: 64, 0: 32}[width]   # int8 ops a chain a step (a multiply-add = 2)
    ctx = dict(width=width, vnni=width == 512, chains=STREAM_CHAINS, ops_per_step=STREAM_CHAINS * lanes)
    source = render("bench/roofline.c.j2", **ctx)
    cdef = ("uint64_t ternkit_stream_read(const uint8_t *p, size_t nbytes, int32_t streams);\n"
            "int64_t ternkit_peak_int8(int64_t iters);\n"
            f"{abi().kernel('ternkit_stream_rows')};")
    return build_module("roofline", cdef, source, flags=("-O3", *target.isa.flags)), ctx


def int8_peak_gops(clock: Callable[[], float] = time.perf_counter) -> float:
    """Measured int8 multiply-accumulate peak of one core (GOPS, a MAC = 2 ops), timed by `clock`."""
    mod, ctx = roofline_module()
    iters = 1 << 20
    t = median_time(lambda: mod.lib.ternkit_peak_int8(iters), 5, clock=clock)
    return iters * ctx["ops_per_step"] / t / 1e9


MAX_STREAMS = 4


@functools.lru_cache(maxsize=1)
def read_streams(mb: int = 256) -> dict[int, float]:
    """One core's DRAM read rate (GB/s, median of 3) over `mb` MiB read as 1 .. MAX_STREAMS sequential
    streams at once: a core may read faster from several (Zen 3 VM: 18-20 GB/s from one, 24-29 from three;
    a 64 MiB buffer read faster still, part of it from the 32 MiB L3)."""
    mod, _ = roofline_module()
    buf = HugeArena().empty(mb << 20)
    buf[:] = 1
    ptr = mod.ffi.from_buffer("uint8_t[]", buf)
    return {k: buf.nbytes / median_time(lambda: mod.lib.ternkit_stream_read(ptr, buf.nbytes, k), 3) / 1e9
            for k in range(1, MAX_STREAMS + 1)}


def best_streams() -> int:
    """The stream count of the roofline: the fastest read of `read_streams`."""
    rates = read_streams()
    return max(rates, key=rates.__getitem__)


def streams_line() -> str:
    """What `read_streams` found, for a benchmark's header."""
    rates = read_streams()
    return (f"one core reads DRAM at {', '.join(f'{v:.1f}' for v in rates.values())} GB/s from 1 .. {MAX_STREAMS} "
            f"sequential streams at once: the stream read (roofline) reads each thread's part as {best_streams()}")


class Stream:
    """Read `buffers` in turn, each split into `ROWS` rows across up to `threads` pool threads, each
    thread's rows read as `streams` sequential streams (default: the fastest count, `best_streams`)."""

    ROWS = 256

    def __init__(self, buffers: Sequence[np.ndarray], streams: int | None = None) -> None:
        mod, _ = roofline_module()
        self.streams = streams or best_streams()
        self.row_bytes = -(-buffers[0].nbytes // self.ROWS)
        arena = HugeArena()     # in huge pages, as the kernels' DRAM copies (_copies)
        self.buffers = [self._padded(arena, b, self.row_bytes * self.ROWS) for b in buffers]
        self.runners = [pool.Runner(mod.ffi, mod.lib, "ternkit_stream_rows", b) for b in self.buffers]
        self._x, self._y = np.array([self.streams], np.int8), np.zeros(self.ROWS, np.int32)

    @staticmethod
    def _padded(arena: HugeArena, b: np.ndarray, nbytes: int) -> np.ndarray:
        """`b`'s bytes then zeros up to `nbytes`."""
        out = arena.empty(nbytes)
        out[:b.nbytes] = b.reshape(-1).view(np.uint8)
        return out

    @staticmethod
    def threads_for(threads) -> int:
        """As many threads as asked (capped by the usable cores only): the machine's roofline."""
        return used_threads(threads)

    def runner(self, threads) -> Callable[[], None]:
        t = self.threads_for(threads)
        edges = tuple(self.ROWS * i // t for i in range(t + 1))

        def run() -> None:
            for r in self.runners:
                r.run(self._x, self._y, self.row_bytes, edges, t)
        return run


# -- measurements -------------------------------------------------------------------------------
def _alternate(kernel: Callable[[], object], stream: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    """Median times of `kernel` and `stream`, run alternately so both see the same machine state
    (other processes share the memory bus of this machine)."""
    kernel(), stream()
    kt, st = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        stream()
        t1 = time.perf_counter()
        kernel()
        t2 = time.perf_counter()
        st.append(t1 - t0)
        kt.append(t2 - t1)
    return statistics.median(kt), statistics.median(st)


def _copy_count(nbytes: int, dram_bytes: int) -> int:
    return max(2, -(-dram_bytes // nbytes))


def _copies(packed: np.ndarray, dram_bytes: int) -> list[np.ndarray]:
    """The DRAM mode's copies, in huge pages as the C runtime's weights (every format alike: numpy gives
    huge pages to large arrays only, see runtime/hugepages.py)."""
    arena = HugeArena()
    return [arena.copy(packed) for _ in range(_copy_count(packed.nbytes, dram_bytes))]


@dataclass
class _Candidate:
    """One kernel to time: its label, packed weights, and how to call it on (a copy of) them."""

    label: str
    packed: np.ndarray
    ops: int
    bind: Callable[[np.ndarray], Callable[[object], object]]   # packed copy -> call(threads)
    threads_for: Callable[[object], int]
    one_thread_only: bool = False


def _ours(t: Target, fmt: str, M: int, K: int, n: int, w, x, ref, y, tuning) -> _Candidate:
    spec = KernelSpec(M, K, n, weight_format=fmt)
    tiles = (tuning or {}).get(t.name, {}).get(spec.name)
    if tiles:
        spec = replace(spec, tiling=tuple(sorted(tiles.items())))
    spec = t.specialise(spec)
    kern = compile_plan(Plan(t.name, "bench", [spec]), t).kernel(spec, w)
    if not np.array_equal(kern(x, threads=1), ref):
        raise AssertionError(f"{t.name}/{fmt} {spec.name} is not bit-exact")

    def bind(p: np.ndarray):
        k = kern if p is kern.packed else kern.with_packed(p)
        return lambda th: k(x, threads=th, out=y)
    return _Candidate(f"{t.name}/{fmt}", kern.packed, spec.ops, bind, lambda th: kern.threads_for(n, th),
                      one_thread_only=t.name == "scalar")


def _tq2_0(M: int, K: int, n: int, w, x, ref) -> _Candidate:
    kern = ggml_tq2_0.Tq2_0Kernel(w, 1.0)
    xb = ggml_tq2_0.q8_K_blocks(x, 1.0)
    yf = np.empty((n, M), np.float32)
    if not np.array_equal(kern(xb), ref.astype(np.float32)):
        raise AssertionError(f"{TQ2_0} {M}x{K} n={n} does not reproduce the integer core")

    def bind(p: np.ndarray):
        k = kern if p is kern.packed else kern.with_packed(p)
        return lambda th: k(xb, threads=th, out=yf)
    return _Candidate(TQ2_0, kern.packed, 2 * M * K * n, bind, lambda th: kern.threads_for(n, th))


def used_threads(threads) -> int:
    """Threads a label stands for when nothing but the usable cores caps it (numpy, the roofline)."""
    return pool.usable_cores() if threads == "auto" else min(int(threads), pool.usable_cores())


def _numpy_seconds(x: np.ndarray, w: np.ndarray, threads: int) -> float:
    from threadpoolctl import threadpool_limits

    a, b = x.astype(np.float32), w.astype(np.float32).T.copy()
    with threadpool_limits(limits=threads, user_api="blas"):
        return median_time(lambda: a @ b, 3 if x.shape[0] > 64 else 7)


def measure(shapes: Sequence[tuple[int, int]], tokens: Sequence[int], targets: Sequence[Target], *,
            threads: Sequence[int | str] = (1,), dram: bool = True, dram_mb: int = 512, scalar: bool = True,
            numpy_ref: bool = True, repeat: int = 15, tuning: dict | None = None, progress: bool = True) -> list[Row]:
    """Measure every (shape, n, thread count) on every target/format, plus the faithful TQ2_0, i2s,
    scalar, numpy and the stream read of the same thread count. A progress bar goes to stderr."""
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from ternkit.codegen.targets import get_target

    labels = list(dict.fromkeys(pool.check_threads(t) for t in threads))
    kinds: list[tuple[Target, str]] = [(t, f) for t in targets for f in t.formats]
    for extra in ("i2s", "scalar") if scalar else ("i2s",):
        t = get_target(extra)
        if t.runs_natively() and (t, "i2") not in kinds:
            kinds.append((t, "i2"))
    with_tq2_0 = ggml_tq2_0.unavailable_reason() is None
    n_slow = sum(t.name == "scalar" for t, _ in kinds)
    steps = len(shapes) * progress_steps(tokens, len(kinds) + with_tq2_0, n_slow, len(labels), dram, numpy_ref, repeat)
    bar = tqdm(total=steps, desc="bench", unit="run", file=sys.stderr, disable=not progress, leave=False)
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for (M, K) in shapes:
            w = rng.integers(-1, 2, (M, K)).astype(np.int8)
            for n in tokens:
                x = rng.integers(-128, 128, (n, K)).astype(np.int8)
                ref = ternary_matmul(x, w)
                y = np.empty((n, M), np.int32)
                bar.set_description(f"bench {M}x{K} n={n}: compiling")
                cands = [_ours(t, f, M, K, n, w, x, ref, y, tuning) for t, f in kinds]
                if with_tq2_0:
                    cands.append(_tq2_0(M, K, n, w, x, ref))
                rows += _measure_point(f"{M}x{K}", n, w, x, cands, labels, dram and n == 1, dram_mb, numpy_ref,
                                       repeat, bar)
    bar.close()
    return rows


def _interleaved(calls: Sequence[Callable[[], object]], repeat: int, tick: Callable[[], None]) -> list[float]:
    """Median time of each call, measured in rounds that run every call in turn (one untimed call,
    then 3 timed ones: weights stay hot), so all of them see the same machine load: ratios between
    kernels and between thread counts survive a busy machine better than back-to-back medians."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(max(1, -(-repeat // 3))):
        for fn, ts in zip(calls, times):
            fn()
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
        tick()
    return [statistics.median(ts) for ts in times]


def _rounds(repeat: int) -> int:
    return max(1, -(-repeat // 3))


def _measure_point(shape: str, n: int, w, x, cands: list[_Candidate], labels, dram: bool, dram_mb: int,
                   numpy_ref: bool, repeat: int, bar) -> list[Row]:
    nbytes = min(c.packed.nbytes for c in cands)        # the roofline reads the smallest format's bytes
    hot_stream = Stream([np.ones(nbytes, np.uint8)])
    fast = [c for c in cands if not c.one_thread_only]
    found: list[Row] = []

    bar.set_description(f"bench {shape} n={n} hot, every kernel and thread count in turn")
    pairs = [(c, th) for th in labels for c in fast]
    # the roofline of a thread count: the faster stream read on 1 thread or on that many (a small
    # buffer is not worth splitting either); GEMV only, the bandwidth bounds nothing else
    counts = sorted({1} | {used_threads(th) for th in labels}) if n == 1 else []
    calls = [functools.partial(c.bind(c.packed), th) for c, th in pairs] + [hot_stream.runner(k) for k in counts]
    secs = _interleaved(calls, repeat, bar.update)
    for (c, th), sec in zip(pairs, secs):
        found.append(Row(shape, n, c.label, "hot", str(th), c.threads_for(th), sec, c.packed.nbytes, c.ops))
    stream_sec = dict(zip(counts, secs[len(pairs):]))
    for th in labels if counts else []:
        k = min((k for k in counts if k <= used_threads(th)), key=stream_sec.__getitem__)
        found.append(Row(shape, n, "stream read", "hot", str(th), k, stream_sec[k], nbytes, 0,
                         roofline=nbytes / stream_sec[k] / 1e9))
    for c in cands:
        if c.one_thread_only:
            bar.set_description(f"bench {shape} n={n} {c.label}")
            found.append(Row(shape, n, c.label, "hot", "1", 1, median_time(functools.partial(c.bind(c.packed), 1), 3),
                             c.packed.nbytes, c.ops))
            bar.update()

    if dram:
        cold_stream = Stream([np.ones(nbytes, np.uint8)] * _copy_count(nbytes, dram_mb << 20))   # copied into huge pages
        for th in labels:
            for c in fast:
                bar.set_description(f"bench {shape} n={n} {c.label} threads={th} from DRAM")
                calls = [c.bind(p) for p in _copies(c.packed, dram_mb << 20)]
                sec, stream_sec = _alternate(lambda: [f(th) for f in calls], cold_stream.runner(th))
                gbs = sum(b.nbytes for b in cold_stream.buffers) / stream_sec / 1e9
                found.append(Row(shape, n, c.label, "dram", str(th), c.threads_for(th), sec / len(calls),
                                 c.packed.nbytes, c.ops, roofline=gbs))
                del calls
                bar.update()
            sec = median_time(cold_stream.runner(th), 5) / len(cold_stream.buffers)
            found.append(Row(shape, n, "stream read", "dram", str(th), cold_stream.threads_for(th), sec, nbytes, 0,
                             roofline=nbytes / sec / 1e9))
        del cold_stream

    if numpy_ref:
        numpy_sec: dict[int, float] = {}     # by BLAS thread count ("2" and "auto" may be the same)
        for th in labels:
            bar.set_description(f"bench {shape} n={n} numpy threads={th}")
            for k in {1, used_threads(th)}:
                if k not in numpy_sec:
                    numpy_sec[k] = _numpy_seconds(x, w, k)
            # the better of 1 BLAS thread and as many as asked (BLAS threads can lose on a busy machine)
            best = min((1, used_threads(th)), key=numpy_sec.__getitem__)
            found.append(Row(shape, n, "numpy f32", "hot", str(th), best, numpy_sec[best], 0,
                             2 * w.shape[0] * w.shape[1] * n))
            bar.update()
    _relate(found)
    return found


def progress_steps(tokens: Sequence[int], n_kinds: int, n_slow: int, labels: int, dram: bool, numpy_ref: bool,
                   repeat: int) -> int:
    """Progress-bar steps of one shape (matches the bar.update calls of _measure_point)."""
    fast = n_kinds - n_slow
    return sum(_rounds(repeat) + n_slow + (fast * labels if dram and n == 1 else 0) + (labels if numpy_ref else 0)
               for n in tokens)


def _relate(found: list[Row]) -> None:
    """Fill each row's roofline, numpy, TQ2_0 and 1-thread references from rows of the same point."""
    by = {(r.kernel, r.mode, r.threads): r for r in found}
    for r in found:
        if r.roofline is None and (s := by.get(("stream read", r.mode, r.threads))):
            r.roofline = s.roofline
        if (np_row := by.get(("numpy f32", "hot", r.threads))) and r.kernel != "numpy f32":
            r.numpy = np_row.seconds
        if (tq := by.get((TQ2_0, r.mode, r.threads))):
            r.tq2_0 = tq.seconds
        if (one := by.get((r.kernel, r.mode, "1"))):
            r.single = one.seconds


def format_table(rows: Sequence[Row]) -> str:
    header = ("M x K", "n", "kernel", "weights", "threads", "used", "us", "GB/s", "GOPS", "% roofline",
              "x numpy", "x tq2_0", "scaling")
    out = []
    for r in rows:
        gbs, kernel = r.gbs, r.kernel not in ("stream read", "numpy f32")
        out.append((r.shape, str(r.n), r.kernel, r.mode, r.threads, str(r.used), f"{r.us:,.1f}",
                    f"{gbs:.1f}" if gbs else "-", f"{r.gops:.1f}" if r.ops else "-",
                    f"{100 * gbs / r.roofline:.0f} %" if gbs and r.roofline and kernel and r.n == 1 else "-",
                    f"{r.numpy / r.seconds:.2f}" if r.numpy and r.mode == "hot" and kernel else "-",
                    f"{r.tq2_0 / r.seconds:.2f}" if r.tq2_0 and kernel else "-",
                    f"{r.single / r.seconds:.2f}" if r.single and r.threads != "1" else "-"))
    return table(header, out, right_from=5, rule=True)


NOTES = ("us: median wall time a call (hot: every kernel and thread count timed in turn, round after "
         "round, so they see the same machine load); GB/s: packed weight bytes / time; % roofline (GEMV): "
         "of the stream read of the same mode (hot: the faster of 1 thread and as many as asked; each thread "
         "reading its part as the fastest number of sequential streams, above); x numpy: "
         "numpy f32 matmul time (the better of 1 BLAS thread and as many as asked) / time; x tq2_0: faithful "
         "ggml TQ2_0 x q8_K time / time; scaling: this kernel's 1-thread time / time; used: threads the "
         "call used (asked, capped by usable cores and work).")


def plot_gemv(rows: Sequence[Row], path: Path) -> None:
    """Bars of GB/s (packed weight bytes) per GEMV shape and kernel, hot and from DRAM; the stream-read
    roofline of each mode drawn as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = [r for r in rows if r.n == 1 and r.threads == "1" and r.gbs]
    shapes = list(dict.fromkeys(r.shape for r in g))
    series = list(dict.fromkeys((r.kernel, r.mode) for r in g))
    fig, ax = plt.subplots(figsize=(max(7, 2.4 * len(shapes)) + 2.5, 4.5))
    width = 0.8 / max(1, len(series))
    for i, (kern, mode) in enumerate(series):
        vals = [next((r.gbs for r in g if (r.shape, r.kernel, r.mode) == (s, kern, mode)), 0) for s in shapes]
        style = dict(hatch="//", alpha=0.7) if mode == "dram" else {}
        ax.bar(np.arange(len(shapes)) + (i - (len(series) - 1) / 2) * width, vals, width,
               label=f"{kern} ({'DRAM' if mode == 'dram' else 'hot'})", **style)
    ax.set_xticks(np.arange(len(shapes)), [f"{s}\nGEMV" for s in shapes])
    ax.set_ylabel("GB/s of packed weights (1 thread)")
    ax.set_title("Ternary GEMV bandwidth vs shape (stream read = roofline)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_file(path, buf.getvalue(), "--plot")
