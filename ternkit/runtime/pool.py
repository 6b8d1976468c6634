"""How many threads a kernel call uses, and the C thread pool that runs it (templates/runtime/pool.c.j2).

`threads` is `"auto"` or a maximum: the count used is capped by the cores this process may run on
(`os.sched_getaffinity`) and by the work, so that every part streams at least `MIN_PART_BYTES` of
weights (summed over the call's tokens); a call too small to be worth a hand-off runs on one thread.
The pool itself makes calls with more threads safe on a busy or oversubscribed machine (the caller
runs whatever chunks no worker has claimed; see the template's header).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterable

from ternkit.errors import TernkitError

MAX_WORKERS = 63            # + the calling thread: 64 threads at most (one 64-core socket)
LINE = 128                  # bytes kept apart: two 64-byte lines (Intel's adjacent-line prefetch)
MIN_PART_BYTES = 64 << 10   # weight bytes x tokens a part must stream to be worth a hand-off (~5 us)
SPIN_US = 30                # a worker pauses this long for the next call, then yields ...
YIELD_US = 300              # ... until this long, then sleeps on its condition variable

CDEF = """
int ternkit_parallel(void *fn, const void *w, const void *x, void *y, int32_t n, const int32_t *edges,
                     int32_t chunks, int32_t threads);
int32_t ternkit_pool_layout(int64_t *out, int32_t cap);
"""


@functools.cache
def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity mask), not the machine's total."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


if hasattr(os, "register_at_fork"):     # a child may be pinned differently (taskset, multiprocessing)
    os.register_at_fork(after_in_child=usable_cores.cache_clear)


def check_threads(threads: Any) -> int | str:
    """`"auto"` or a positive int, else a clear error."""
    if threads is None or threads == "auto":
        return "auto"
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise TernkitError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
    return threads


def parse_thread_counts(text: str) -> list[int | str]:
    """`--threads auto` / `--threads 1,2,4` -> ["auto"] / [1, 2, 4]."""
    out: list[int | str] = []
    for item in (s.strip() for s in text.split(",")):
        if item == "auto":
            out.append("auto")
        elif item.isdigit() and int(item) >= 1:
            out.append(int(item))
        else:
            raise TernkitError(f"--threads takes 'auto' or positive integers separated by commas, got {text!r}")
    return out


def choose_threads(threads: int | str, work_bytes: int, max_parts: int) -> int:
    """Threads for one call: at most the request (`"auto"`: every usable core), the usable cores,
    `max_parts` (column blocks) and one per `MIN_PART_BYTES` of work."""
    want = usable_cores() if threads == "auto" else min(int(threads), usable_cores())
    return max(1, min(want, max_parts, work_bytes // MIN_PART_BYTES, MAX_WORKERS + 1))


def template_args() -> dict[str, int]:
    """What templates/runtime/pool.c.j2 is rendered with (the kernel pool and the standalone runtime)."""
    return dict(max_workers=MAX_WORKERS, spin_us=SPIN_US, yield_us=YIELD_US, line=LINE)


@functools.cache
def module():
    """The compiled pool, or None where it cannot be built (callers then run every part themselves)."""
    from ternkit.codegen.jinja import render
    from ternkit.toolchain.cffi_build import build_module

    source = render("runtime/pool.c.j2", **template_args())
    try:
        return build_module("pool", CDEF, source, flags=("-O2", "-pthread"))
    except TernkitError:
        return None


def layout() -> dict[str, int]:
    """The pool's state layout as compiled (for the no-false-sharing test)."""
    mod = module()
    if mod is None:
        raise TernkitError("the C thread pool could not be built on this machine")
    buf = mod.ffi.new("int64_t[32]")
    n = mod.lib.ternkit_pool_layout(buf, 32)
    keys = ("line", "worker_size", "worker_align", "worker_lock_offset", "worker_stride", "call_size",
            "worker0_mod", "worker1_mod", "call_mod", "claim_mod", "remaining_mod", "busy_mod", "max_workers")
    return dict(zip(keys, (int(buf[i]) for i in range(n))))


class Runner:
    """One C function bound for the pool: its address and weights cast once, edges cached per split."""

    def __init__(self, ffi, lib, name: str, weights) -> None:
        self._mod = module()
        if self._mod is not None:
            pffi = self._mod.ffi
            self._fn = pffi.cast("void *", int(ffi.cast("uintptr_t", ffi.addressof(lib, name))))
            self._w = pffi.from_buffer("uint8_t[]", weights)
        self._direct = getattr(lib, name)
        self._direct_w = ffi.from_buffer("uint8_t[]", weights)
        self._ffi = ffi
        self._edges: dict[tuple[int, ...], Any] = {}

    def run(self, x, y, n: int, edges: tuple[int, ...], threads: int) -> int:
        """Run the parts [edges[i], edges[i+1]) on up to `threads` threads; x and y are numpy arrays.
        Returns how many parts pool workers ran (0: the calling thread ran every part)."""
        mod = self._mod
        if mod is None:
            xs, ys = self._ffi.from_buffer("int8_t[]", x), self._ffi.from_buffer("int32_t[]", y, require_writable=True)
            for a, b in zip(edges, edges[1:]):
                self._direct(self._direct_w, xs, ys, n, a, b)
            return 0
        e = self._edges.get(edges)
        if e is None:
            e = self._edges[edges] = mod.ffi.new("int32_t[]", list(edges))
        pffi = mod.ffi
        return mod.lib.ternkit_parallel(self._fn, self._w, pffi.from_buffer("int8_t[]", x),
                                        pffi.from_buffer("int32_t[]", y, require_writable=True),
                                        n, e, len(edges) - 1, threads)


def edges_of(ranges: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    r = list(ranges)
    return tuple(a for a, _ in r) + (r[-1][1],)
