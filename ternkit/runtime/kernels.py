"""Callable kernels: compile a Plan with cffi and run its kernels on numpy arrays.

    lib = compile_plan(plan)                 # or compile_plan(plan, "avx2")
    kern = lib.kernel(spec, w_q)             # packs the weights once
    y = kern(x_q)                            # int8 [n, K] -> int32 [n, M], threads="auto"
    y = kern(x_q, threads=4)                 # at most 4 threads (capped by usable cores and work)
    y = kern.call_split(x_q, 7)              # exactly 7 parts on 7 threads, no caps (tests)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ternkit.codegen.library import cffi_source
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.target import Target
from ternkit.errors import ShapeError, TernkitError
from ternkit.runtime import pool
from ternkit.toolchain.cffi_build import build_module


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
        self._edges: dict[int, tuple[int, ...]] = {}
        self._threads: dict[tuple[int, Any], int] = {}
        self._runner: pool.Runner | None = None

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

    def _prepare(self, x_q: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        spec = self.spec
        if (type(x_q) is not np.ndarray or x_q.dtype != np.int8 or x_q.ndim != 2 or x_q.shape[1] != spec.K
                or x_q.shape[0] < 1 or not x_q.flags.c_contiguous):
            self._check_x(x_q)
        n = x_q.shape[0]
        if out is None:
            return np.empty((n, spec.M), dtype=np.int32)
        if out.dtype != np.int32 or out.shape != (n, spec.M) or not out.flags.c_contiguous:
            raise ShapeError(f"{spec.name}: out must be C-contiguous int32 [{n}, {spec.M}]")
        return out

    def threads_for(self, n: int, threads: int | str = "auto") -> int:
        """The thread count a call on n tokens uses (<= threads, the usable cores and the work)."""
        key = (n, threads)
        got = self._threads.get(key)
        if got is None:
            blocks = -(-self.spec.M // self.m_block)
            got = self._threads[key] = pool.choose_threads(pool.check_threads(threads), self.packed.nbytes * n, blocks)
        return got

    def __call__(self, x_q: np.ndarray, *, threads: int | str = "auto", out: np.ndarray | None = None) -> np.ndarray:
        out = self._prepare(x_q, out)
        n = x_q.shape[0]
        parts = self._threads.get((n, threads)) or self.threads_for(n, threads)
        if parts == 1:
            self._fn(self._w, self._ffi.from_buffer("int8_t[]", x_q),
                     self._ffi.from_buffer("int32_t[]", out, require_writable=True), n, 0, self.spec.M)
        else:
            self._run(x_q, out, n, parts)
        return out

    def bound(self, x_q: np.ndarray, out: np.ndarray) -> Callable[[], object]:
        """This kernel's C call on one thread with `x_q` and `out` checked and bound once: `f()` writes
        `out`. A checked Python call costs ~2 us, 10 % of a small GEMV from DRAM; benchmarks that compare
        a kernel with a bare C read time this."""
        out = self._prepare(x_q, out)
        return functools.partial(self._fn, self._w, self._ffi.from_buffer("int8_t[]", x_q),
                                 self._ffi.from_buffer("int32_t[]", out, require_writable=True), x_q.shape[0], 0,
                                 self.spec.M)

    def call_split(self, x_q: np.ndarray, parts: int, *, out: np.ndarray | None = None) -> np.ndarray:
        """Exactly `parts` column ranges (fewer only when M has fewer m_blocks) on as many threads,
        with no cap by cores or work: for tests and experiments."""
        out = self._prepare(x_q, out)
        self._run(x_q, out, x_q.shape[0], parts)
        return out

    def _run(self, x_q: np.ndarray, out: np.ndarray, n: int, parts: int) -> int:
        edges = self._edges.get(parts)
        if edges is None:
            edges = self._edges[parts] = pool.edges_of(self.split(parts))
        if self._runner is None:
            self._runner = pool.Runner(self._ffi, self._mod_lib, self.spec.name, self.packed)
        return self._runner.run(x_q, out, n, edges, len(edges) - 1)

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

    def kernel(self, spec: KernelSpec, w_q: np.ndarray | None = None, *, packed: np.ndarray | None = None) -> Kernel:
        """The kernel bound to `w_q` (packed here), or to weights already packed by `Target.pack(spec, ...)`."""
        if spec not in self.plan.kernels:
            raise TernkitError(f"{spec.name} is not in this plan")
        packed = np.ascontiguousarray(self.target.pack(spec, w_q) if packed is None else packed)
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
