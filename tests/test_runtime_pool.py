"""The generated C thread pool: split kernel calls stay exact, concurrent callers fall back safely."""

from __future__ import annotations

import os
import platform
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import best_native_target
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.kernels import _cpool, compile_plan


def _kernel(M=200, K=300, N=1):
    t = best_native_target()
    spec = t.specialise(KernelSpec(M, K, N))
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    return compile_plan(Plan(t.name, "pool", [spec]), t).kernel(spec, w), w, rng


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="pool test written for x86-64")
def test_c_pool_runs_split_calls_exactly():
    assert _cpool() is not None
    kern, w, rng = _kernel()
    for threads in (2, 3, 7, 16, 40):
        for n in (1, 3, 20):
            x = rng.integers(-128, 128, (n, 300)).astype(np.int8)
            assert np.array_equal(kern(x, threads=threads), ternary_matmul(x, w)), (threads, n)
    assert getattr(kern, "_pool_args", None) is not None      # the C pool ran them


def test_concurrent_split_calls_fall_back_and_stay_exact():
    kern, w, rng = _kernel(M=96, K=130)
    xs = [rng.integers(-128, 128, (2, 130)).astype(np.int8) for _ in range(24)]
    with ThreadPoolExecutor(4) as ex:
        ys = list(ex.map(lambda x: kern(x, threads=2), xs))
    for x, y in zip(xs, ys):
        assert np.array_equal(y, ternary_matmul(x, w))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child():
    kern, w, rng = _kernel(M=64, K=100)
    x = rng.integers(-128, 128, (1, 100)).astype(np.int8)
    kern(x, threads=2)                       # the parent's workers are running
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                             # child: the pool must start its own workers, not hang
        try:
            os.write(wfd, kern(x, threads=2).tobytes())
        finally:
            os._exit(0)
    os.close(wfd)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert np.array_equal(np.frombuffer(data, np.int32).reshape(1, 64), ternary_matmul(x, w))
