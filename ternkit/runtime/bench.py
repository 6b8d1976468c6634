"""Side-by-side kernel measurements in one process: our kernels per target and format, the baseline
(TQ2_0 / I2_S-style AVX2), our scalar kernel, numpy float32 matmul, and a generated streaming-read
kernel that gives the machine's bandwidth roofline (plus an int8 multiply-accumulate peak).

Every kernel is checked bit-exact against `ternary_matmul` before it is timed; times are the median
of repeated runs. GEMV is measured with its weights hot in cache (one matrix, called again and again)
and streamed from DRAM (a working set of distinct copies far larger than the caches, called in turn,
as in real decoding)."""

from __future__ import annotations

import ctypes
import functools
import io
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ternkit.codegen.jinja import render
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.target import Target
from ternkit.outputs import write_file
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.build import build_module
from ternkit.runtime.kernels import Kernel, compile_plan

STREAM_CHAINS = 12


@dataclass
class Row:
    shape: str            # "M x K"
    n: int                # tokens
    kernel: str           # "avx512/i2", "baseline/i2", "numpy f32", "stream read"
    mode: str             # hot | dram
    threads: int
    seconds: float
    weight_bytes: int     # packed weight bytes read per call (0 for numpy)
    ops: int
    roofline: float | None = None   # stream-read GB/s, same mode (DRAM: measured alternately with this row)
    baseline: float | None = None   # baseline seconds, same shape/n/mode/threads

    @property
    def us(self) -> float:
        return self.seconds * 1e6

    @property
    def gbs(self) -> float | None:
        return self.weight_bytes / self.seconds / 1e9 if self.weight_bytes else None

    @property
    def gops(self) -> float:
        return self.ops / self.seconds / 1e9


def median_time(fn: Callable[[], object], repeat: int, *, min_seconds: float = 0.0) -> float:
    """Median wall time of `fn` over `repeat` runs (after one warm-up run)."""
    fn()
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < repeat or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# -- the machine: BLAS threads, roofline kernels --------------------------------------------------
def set_blas_threads(n: int) -> bool:
    """Limit numpy's OpenBLAS to `n` threads (through its C API, numpy may already be loaded)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    libs = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and ".so" in line})
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                    "scipy_openblas_set_num_threads"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                return True
    return False


@functools.lru_cache(maxsize=1)
def roofline_module():
    from ternkit.codegen.targets import get_target

    wide = get_target("avx512").unavailable_reason() is None
    ctx = dict(width=512 if wide else 256, vnni=wide, chains=STREAM_CHAINS,
               ops_per_step=STREAM_CHAINS * (128 if wide else 64))
    source = render("bench/roofline.c.j2", **ctx)
    cdef = "uint64_t ternkit_stream_read(const uint8_t *p, size_t nbytes);\nint64_t ternkit_peak_int8(int64_t iters);"
    flags = ("-O3", "-mavx512f", "-mavx512bw", "-mavx512vnni") if wide else ("-O3", "-mavx2")
    return build_module("roofline", cdef, source, flags=(*flags, "-Wall", "-Wextra", "-Werror")), ctx


def int8_peak_gops(seconds: float = 0.2) -> float:
    """Measured int8 multiply-accumulate peak of one core (GOPS, a MAC = 2 ops)."""
    mod, ctx = roofline_module()
    iters = 1 << 20
    t = median_time(lambda: mod.lib.ternkit_peak_int8(iters), 5)
    return iters * ctx["ops_per_step"] / t / 1e9


def stream_fn(buffers: Sequence[np.ndarray]) -> Callable[[], None]:
    mod, _ = roofline_module()
    ptrs = [(mod.ffi.from_buffer("uint8_t[]", b), b.nbytes) for b in buffers]
    read = mod.lib.ternkit_stream_read

    def run() -> None:
        for p, nb in ptrs:
            read(p, nb)
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


def _copies(packed: np.ndarray, dram_bytes: int) -> list[np.ndarray]:
    count = max(2, -(-dram_bytes // packed.nbytes))
    return [packed.copy() for _ in range(count)]


def measure(shapes: Sequence[tuple[int, int]], tokens: Sequence[int], targets: Sequence[Target], *,
            threads: Sequence[int] = (1,), dram: bool = True, dram_mb: int = 512, scalar: bool = True,
            numpy_ref: bool = True, repeat: int = 15, tuning: dict | None = None,
            log: Callable[[str], None] = lambda s: None) -> list[Row]:
    """Measure every (shape, n) on every target/format (+ baseline, scalar, numpy, stream read)."""
    from ternkit.codegen.targets import get_target

    set_blas_threads(1)
    extra = [get_target("baseline")] if get_target("baseline").unavailable_reason() is None else []
    if scalar:
        extra.append(get_target("scalar"))
    kinds: list[tuple[Target, str]] = []
    for t in [*targets, *extra]:
        fmts = t.formats if t in targets else ("i2",)
        kinds += [(t, f) for f in fmts if (t, f) not in kinds]
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for (M, K) in shapes:
        w = rng.integers(-1, 2, (M, K)).astype(np.int8)
        for n in tokens:
            x = rng.integers(-128, 128, (n, K)).astype(np.int8)
            ref = ternary_matmul(x, w)
            y = np.empty((n, M), np.int32)
            shape = f"{M}x{K}"
            found: list[Row] = []
            if dram and n == 1:   # the DRAM roofline: a stream read over as many bytes, timed alternately
                stream_bufs = _copies(np.ones(M * K // 4 or 1, np.uint8), dram_mb << 20)
                stream_bytes = sum(b.nbytes for b in stream_bufs) / 1e9
            for t, fmt in kinds:
                spec = KernelSpec(M, K, n, weight_format=fmt)
                tiles = (tuning or {}).get(t.name, {}).get(spec.name)
                if tiles:
                    spec = replace(spec, tiling=tuple(sorted(tiles.items())))
                spec = t.specialise(spec)
                kern = compile_plan(Plan(t.name, "bench", [spec]), t).kernel(spec, w)
                if not np.array_equal(kern(x), ref):
                    raise AssertionError(f"{t.name}/{fmt} {spec.name} is not bit-exact")
                slow = t.name == "scalar"
                for th in threads:
                    if slow and th > 1:
                        continue
                    reps = 3 if slow else repeat
                    sec = median_time(lambda: kern(x, threads=th, out=y), reps)
                    found.append(Row(shape, n, f"{t.name}/{fmt}", "hot", th, sec, kern.packed.nbytes, spec.ops))
                    log(f"{shape} n={n} {t.name}/{fmt} threads={th}: {sec * 1e6:.1f} us")
                    if dram and n == 1 and not slow:
                        ks = [Kernel(spec, p, kern._fn, kern._ffi, kern._mod_lib) for p in _copies(kern.packed, dram_mb << 20)]
                        sec, stream_sec = _alternate(lambda: [k(x, threads=th, out=y) for k in ks], stream_fn(stream_bufs))
                        found.append(Row(shape, n, f"{t.name}/{fmt}", "dram", th, sec / len(ks), kern.packed.nbytes,
                                         spec.ops, roofline=stream_bytes / stream_sec))
                        del ks
            if numpy_ref:
                a, b = x.astype(np.float32), w.astype(np.float32).T.copy()
                sec = median_time(lambda: a @ b, 3 if n > 64 else 7)
                found.append(Row(shape, n, "numpy f32", "hot", 1, sec, 0, 2 * M * K * n))
            # the roofline: reading the same number of packed bytes (the smallest of our formats' sizes)
            nbytes = min(r.weight_bytes for r in found if r.weight_bytes)
            buf = np.ones(nbytes, np.uint8)
            hot = median_time(stream_fn([buf]), repeat)
            found.append(Row(shape, n, "stream read", "hot", 1, hot, nbytes, 0))
            roof = {"hot": nbytes / hot / 1e9}
            if dram and n == 1:
                cold = median_time(stream_fn(stream_bufs), 5) / len(stream_bufs)
                found.append(Row(shape, n, "stream read", "dram", 1, cold, stream_bufs[0].nbytes, 0,
                                 roofline=stream_bufs[0].nbytes / cold / 1e9))
                del stream_bufs
            for r in found:
                if r.roofline is None:
                    r.roofline = roof.get(r.mode)
                base = [b for b in found if b.kernel.startswith("baseline/") and (b.mode, b.threads) == (r.mode, r.threads)]
                r.baseline = base[0].seconds if base else None
            rows += found
    return rows


def format_table(rows: Sequence[Row]) -> str:
    header = ("M x K", "n", "kernel", "weights", "thr", "us", "GB/s", "GOPS", "% roofline", "x baseline")
    out = []
    for r in rows:
        gbs = r.gbs
        out.append((r.shape, str(r.n), r.kernel, r.mode, str(r.threads), f"{r.us:,.1f}",
                    f"{gbs:.1f}" if gbs else "-", f"{r.gops:.1f}" if r.ops else "-",
                    f"{100 * gbs / r.roofline:.0f} %" if gbs and r.roofline and r.kernel != "stream read" else "-",
                    f"{r.baseline / r.seconds:.2f}" if r.baseline and r.ops else "-"))
    widths = [max(len(x[i]) for x in [header, *out]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(x, widths)))
             for x in [header, *out]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def plot_gemv(rows: Sequence[Row], path: Path) -> None:
    """Bars of GB/s (packed weight bytes) per GEMV shape and kernel, hot and from DRAM; the stream-read
    roofline of each mode drawn as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = [r for r in rows if r.n == 1 and r.threads == 1 and r.gbs]
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
