"""numpy's BLAS is held to one thread wherever ternkit times or trains something (threadpoolctl)."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from ternkit.blas import single_threaded_blas
from ternkit.graph import load_model
from ternkit.runtime import throughput


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_single_threaded_blas_limits_and_restores():
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with single_threaded_blas():
            assert blas_threads() <= {1}
        assert blas_threads() == before


def test_throughput_is_measured_with_one_blas_thread(monkeypatch):
    seen: list[set[int]] = []
    once = throughput._once

    def spy(*args):
        seen.append(blas_threads())
        return once(*args)

    monkeypatch.setattr(throughput, "_once", spy)
    with threadpool_limits(limits=2, user_api="blas"):
        throughput.measure(load_model("tiny"), np.arange(4), 2, repeats=1)
    assert seen and all(s <= {1} for s in seen)
