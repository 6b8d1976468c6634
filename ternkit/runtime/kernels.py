"""Callable kernels: compile a Plan with cffi and run its kernels on numpy arrays.

    lib = compile_plan(plan)                 # or compile_plan(plan, "avx2")
    kern = lib.kernel(spec, w_q)             # packs the weights once
    y = kern(x_q)                            # int8 [n, K] -> int32 [n, M]
    y = kern(x_q, threads=2)                 # M split across Python threads (cffi releases the GIL)
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ternkit.codegen.library import cffi_source
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.target import Target
from ternkit.errors import ShapeError, TernkitError
from ternkit.toolchain.cffi_build import build_module


@functools.lru_cache(maxsize=8)
def _pool(workers: int) -> ThreadPoolExecutor:
    """One long-lived pool per thread count: starting threads on every call costs more than a GEMV."""
    return ThreadPoolExecutor(workers, thread_name_prefix="ternkit-kernel")


POOL_WORKERS = 15


@functools.lru_cache(maxsize=1)
def _cpool():
    """The generated C thread pool (templates/runtime/pool.c.j2), or None where it cannot be built."""
    from ternkit.codegen.jinja import render

    source = render("runtime/pool.c.j2", max_workers=POOL_WORKERS, spin=200000)
    cdef = ("int ternkit_parallel(void *fn, const void *w, const void *x, void *y, int32_t n, "
            "const int32_t *edges, int32_t parts);")
    try:
        return build_module("pool", cdef, source, flags=("-O2", "-pthread"))
    except TernkitError:
        return None


_POOL_LOCK = threading.Lock()


@dataclass
class Kernel:
    """One compiled kernel bound to its packed weights."""

    spec: KernelSpec
    packed: np.ndarray
    _fn: Any = field(repr=False)
    _ffi: Any = field(repr=False)
    _mod_lib: Any = field(default=None, repr=False)   # the cffi lib holding _fn (for the C pool)

    def __post_init__(self) -> None:
        # Per-call Python overhead matters for a 25 us GEMV: bind the weights and the splits once.
        self._w = self._ffi.from_buffer("uint8_t[]", self.packed)
        self._ranges: dict[int, list[tuple[int, int]]] = {}

    @property
    def m_block(self) -> int:
        return int(self.spec.tile("m_block", 1))

    def _check_x(self, x_q) -> None:
        spec = self.spec
        if not isinstance(x_q, np.ndarray):
            raise ShapeError(f"{spec.name}: x_q must be a numpy int8 array, got {type(x_q).__name__}")
        if x_q.dtype != np.int8:
            raise ShapeError(f"{spec.name}: x_q must be int8, got {x_q.dtype} (quantize activations first)")
        if x_q.ndim != 2 or x_q.shape[1] != spec.K or x_q.shape[0] < 1:
            raise ShapeError(f"{spec.name}: x_q must be [n, {spec.K}] with n >= 1, got {x_q.shape}")
        if not x_q.flags.c_contiguous:
            raise ShapeError(f"{spec.name}: x_q must be C-contiguous (use np.ascontiguousarray)")

    def __call__(self, x_q: np.ndarray, *, threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        spec = self.spec
        if (type(x_q) is not np.ndarray or x_q.dtype != np.int8 or x_q.ndim != 2 or x_q.shape[1] != spec.K
                or x_q.shape[0] < 1 or not x_q.flags.c_contiguous):
            self._check_x(x_q)
        n = x_q.shape[0]
        if out is None:
            out = np.empty((n, spec.M), dtype=np.int32)
        elif out.dtype != np.int32 or out.shape != (n, spec.M) or not out.flags.c_contiguous:
            raise ShapeError(f"{spec.name}: out must be C-contiguous int32 [{n}, {spec.M}]")
        ffi = self._ffi
        x = ffi.from_buffer("int8_t[]", x_q)
        y = ffi.from_buffer("int32_t[]", out, require_writable=True)
        parts = threads or 1
        ranges = self._ranges.get(parts)
        if ranges is None:
            ranges = self._ranges[parts] = self.split(parts)
        if len(ranges) == 1:
            self._fn(self._w, x, y, n, 0, spec.M)
        elif len(ranges) <= POOL_WORKERS + 1 and self._parallel(x_q, out, n, ranges):
            pass
        else:
            # the calling thread runs the first part itself: one hand-off fewer (cffi drops the GIL)
            pool, fn, w = _pool(len(ranges) - 1), self._fn, self._w
            futures = [pool.submit(fn, w, x, y, n, a, b) for a, b in ranges[1:]]
            fn(w, x, y, n, ranges[0][0], ranges[0][1])
            for f in futures:
                f.result()
        return out

    def _parallel(self, x_q: np.ndarray, out: np.ndarray, n: int, ranges: list[tuple[int, int]]) -> bool:
        """Run the parts on the C pool (spinning workers: µs hand-offs); False when it is unavailable
        or busy with another call, so the caller falls back to Python threads."""
        pool = _cpool()
        if pool is None or self._mod_lib is None or not _POOL_LOCK.acquire(blocking=False):
            return False
        try:
            pffi = pool.ffi
            bound = getattr(self, "_pool_args", None)
            if bound is None:
                addr = int(self._ffi.cast("uintptr_t", self._ffi.addressof(self._mod_lib, self.spec.name)))
                bound = self._pool_args = (pffi.cast("void *", addr), pffi.from_buffer("uint8_t[]", self.packed), {})
            fn, w, edges = bound
            e = edges.get(len(ranges))
            if e is None:
                e = edges[len(ranges)] = pffi.new("int32_t[]", [a for a, _ in ranges] + [ranges[-1][1]])
            rc = pool.lib.ternkit_parallel(fn, w, pffi.from_buffer("int8_t[]", x_q),
                                           pffi.from_buffer("int32_t[]", out, require_writable=True), n, e, len(ranges))
            return rc == 0
        finally:
            _POOL_LOCK.release()

    def with_packed(self, packed: np.ndarray) -> "Kernel":
        """The same compiled kernel bound to other packed weights (same layout), e.g. one of many copies
        streamed from DRAM by a benchmark."""
        return Kernel(self.spec, packed, self._fn, self._ffi, self._mod_lib)

    def split(self, parts: int) -> list[tuple[int, int]]:
        """[m0, m1) ranges covering M, each boundary a multiple of m_block (ABI)."""
        if parts < 1:
            raise TernkitError(f"threads must be >= 1, got {parts}")
        blocks = -(-self.spec.M // self.m_block)
        parts = min(parts, blocks)
        edges = [min(self.spec.M, (blocks * i // parts) * self.m_block) for i in range(parts + 1)]
        return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


@dataclass
class KernelLibrary:
    plan: Plan
    target: Target
    module: Any

    def kernel(self, spec: KernelSpec, w_q: np.ndarray) -> Kernel:
        if spec not in self.plan.kernels:
            raise TernkitError(f"{spec.name} is not in this plan")
        packed = np.ascontiguousarray(self.target.pack(spec, w_q))
        return Kernel(spec=spec, packed=packed, _fn=getattr(self.module.lib, spec.name), _ffi=self.module.ffi,
                      _mod_lib=self.module.lib)


def compile_plan(plan: Plan, target: Target | str | None = None) -> KernelLibrary:
    """Build the plan's kernels for this machine (cached by content hash)."""
    from ternkit.codegen.targets import get_c_target

    t = get_c_target(target if target is not None else plan.target)
    cdef, source = cffi_source(plan, t)
    cf = t.host_cflags()
    module = build_module(t.name, cdef, source, flags=cf.flags, include_dirs=cf.include_dirs)
    return KernelLibrary(plan=plan, target=t, module=module)
