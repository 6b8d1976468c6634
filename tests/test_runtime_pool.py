"""The C thread pool and the thread-count choice: split calls stay exact on every target and format,
the state layout cannot false-share, thread counts are capped by usable cores and by work,
oversubscribed and concurrent calls stay exact, and a forked child gets a working pool."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from codegen_helpers import EDGE_CASES, assert_exact, run_cases
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import best_native_target, native_targets
from ternkit.errors import TernkitError
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime import pool
from ternkit.runtime.kernels import compile_plan

NATIVE = native_targets()


def _kernel(M=200, K=300, N=1):
    t = best_native_target()
    spec = t.specialise(KernelSpec(M, K, N))
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    return compile_plan(Plan(t.name, "pool", [spec]), t).kernel(spec, w), w, rng


def test_pool_state_layout_has_no_shared_cache_lines():
    lay = pool.layout()            # as compiled (the template also static_asserts the same)
    line = lay["line"]
    assert line == pool.LINE and line % 64 == 0
    assert lay["worker_size"] % line == 0 and lay["worker_align"] % line == 0
    assert lay["worker_stride"] == lay["worker_size"]
    assert lay["worker_lock_offset"] % line == 0 and lay["worker_lock_offset"] >= line   # mailbox alone
    assert lay["call_size"] % line == 0
    for key in ("worker0_mod", "worker1_mod", "call_mod", "claim_mod", "remaining_mod", "busy_mod"):
        assert lay[key] == 0, key
    assert lay["max_workers"] == pool.MAX_WORKERS


@pytest.mark.parametrize("target", NATIVE, ids=lambda t: t.name)
def test_split_calls_bit_exact_for_1_to_n_threads_on_every_kernel(target):
    cases = [c for c in EDGE_CASES if c[0] >= 3] + [(97, 300, 2, "random", "random"), (160, 520, 1, "minus", "min")]
    for threads in (1, 2, 3, 5, 8):
        assert_exact(run_cases(target, target.formats, cases, threads=threads))


def test_threads_capped_by_usable_cores_and_work():
    cores = pool.usable_cores()
    assert cores == len(os.sched_getaffinity(0))
    big, _, _ = _kernel(M=2048, K=2048)          # 1 MiB of i2 weights: worth many parts
    assert big.threads_for(1, 16) == min(16, cores)
    assert big.threads_for(1, "auto") == min(cores, big.packed.nbytes // pool.MIN_PART_BYTES)
    assert big.threads_for(1, 1) == 1
    small, _, _ = _kernel(M=64, K=256)           # 4 KiB: a hand-off costs more than the work
    assert small.threads_for(1, 16) == 1 and small.threads_for(64, 16) == min(4, cores)
    with pytest.raises(TernkitError, match="threads must be 'auto' or an integer >= 1"):
        big(np.zeros((1, 2048), np.int8), threads=0)
    assert pool.parse_thread_counts("auto,1,2") == ["auto", 1, 2]
    with pytest.raises(TernkitError, match="--threads takes"):
        pool.parse_thread_counts("1,x")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_affinity_mask_caps_threads():
    big, w, rng = _kernel(M=2048, K=2048)
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        pool.usable_cores.cache_clear()
        assert big.threads_for(1, 16) == 1 and big.threads_for(1, "auto") == 1
    finally:
        os.sched_setaffinity(0, before)
        pool.usable_cores.cache_clear()


def test_oversubscribed_calls_are_capped_and_exact():
    """16 threads asked for on this machine: the call uses at most the usable cores; forcing 16 parts
    through the pool anyway (16 threads on 2 cores) still gives the exact result."""
    kern, w, rng = _kernel(M=1536, K=2560)
    x = rng.integers(-128, 128, (3, 2560)).astype(np.int8)
    ref = ternary_matmul(x, w)
    assert kern.threads_for(3, 16) <= pool.usable_cores()
    assert np.array_equal(kern(x, threads=16), ref)
    for _ in range(20):
        assert np.array_equal(kern.call_split(x, 16), ref)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_forced_split_on_one_pinned_core_completes_exactly():
    """8 parts on 8 threads pinned to a single core: the caller may only wait for chunks in flight and
    yields while it does, so every call completes (no livelock, no lost wake-up) and stays exact."""
    import time

    kern, w, rng = _kernel(M=512, K=1024)
    x = rng.integers(-128, 128, (2, 1024)).astype(np.int8)
    ref = ternary_matmul(x, w)
    kern.call_split(x, 8)                         # workers exist; pin them all, with the caller
    before = os.sched_getaffinity(0)
    try:
        _pin_all_threads({min(before)})
        t0 = time.perf_counter()
        for _ in range(50):
            assert np.array_equal(kern.call_split(x, 8), ref)
        assert time.perf_counter() - t0 < 20          # a hang or ms-long spins per call would blow this
    finally:
        _pin_all_threads(before)


def _pin_all_threads(cpus) -> None:
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:                           # a thread that has just exited
            pass


def test_workers_take_parts_and_the_caller_runs_alone_when_asked():
    kern, w, rng = _kernel(M=2048, K=2048)               # ~1 MiB of weights: parts worth ~30 us each
    x = rng.integers(-128, 128, (1, 2048)).astype(np.int8)
    ref = ternary_matmul(x, w)
    out = np.empty((1, 2048), np.int32)
    edges = pool.edges_of(kern.split(2))
    runner = pool.Runner(kern._ffi, kern._mod_lib, kern.spec.name, kern.packed)
    by_workers = 0
    for _ in range(3000):                                # a busy machine may starve the worker for a while
        out[:] = 0
        by_workers += runner.run(x, out, 1, edges, 2)
        assert np.array_equal(out, ref)
        if by_workers:
            break
    assert by_workers > 0                                # the worker joined a call (not the caller alone)
    out[:] = 0
    assert runner.run(x, out, 1, edges, 1) == 0          # one thread: the caller runs every part
    assert np.array_equal(out, ref)


def test_concurrent_split_calls_stay_exact():
    kern, w, rng = _kernel(M=96, K=130)
    xs = [rng.integers(-128, 128, (2, 130)).astype(np.int8) for _ in range(24)]
    with ThreadPoolExecutor(4) as ex:
        ys = list(ex.map(lambda x: kern.call_split(x, 3), xs))
    for x, y in zip(xs, ys):
        assert np.array_equal(y, ternary_matmul(x, w))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child():
    kern, w, rng = _kernel(M=64, K=100)
    x = rng.integers(-128, 128, (1, 100)).astype(np.int8)
    kern.call_split(x, 2)                    # the parent's workers are running
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                             # child: the pool must start its own workers, not hang
        try:
            os.write(wfd, kern.call_split(x, 2).tobytes())
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
