"""Bound numpy's BLAS threads (threadpoolctl) wherever ternkit times or trains something.

A multi-threaded BLAS fights the kernels and other processes for the cores, so timings swing from run
to run, and its float sums may be ordered differently from one thread count to another; one thread
makes timings comparable and float results reproducible."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def single_threaded_blas(threads: int = 1) -> Iterator[None]:
    """numpy's BLAS limited to `threads` inside the block, restored after it."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def limit_blas_threads(threads: int = 1) -> None:
    """Limit numpy's BLAS to `threads` for the rest of the process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
