"""Arrays in 2 MiB transparent huge pages, for weights streamed from DRAM (benchmarks' DRAM copies).

A decode step streams every weight once; with 4 KiB pages each 4 KiB costs a TLB miss, with 2 MiB
pages one in 512. Linux gives huge pages to anonymous memory that asks (`madvise(MADV_HUGEPAGE)`;
transparent_hugepage in its common `madvise` mode), 2 MiB-aligned. numpy asks by itself only for
allocations of 4 MiB and more, and then only for the aligned part, so copies of one matrix got huge
pages or not by their size: `avx2_kernels.py` once compared a 4.4 MiB `i2` copy (partly huge) with a
3.7 MiB `tl2` one (4 KiB pages). The C runtime keeps its weights in huge pages too (`alloc_huge` in
templates/runtime/model.c.j2). Where madvise is missing or refused the memory is ordinary: same
results, only the page size differs."""

from __future__ import annotations

import ctypes
import mmap

import numpy as np

HUGE_PAGE = 2 << 20


def huge_empty(nbytes: int) -> np.ndarray:
    """A uint8 array of `nbytes` (zeroed) starting on a 2 MiB boundary, advised for huge pages."""
    size = -(-max(nbytes, 1) // HUGE_PAGE) * HUGE_PAGE
    region = mmap.mmap(-1, size + HUGE_PAGE)      # anonymous, zeroed; one page spare for the alignment
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            region.madvise(mmap.MADV_HUGEPAGE)
        except OSError:     # a kernel without transparent huge pages: ordinary pages
            pass
    start = ctypes.addressof(ctypes.c_char.from_buffer(region))
    return np.frombuffer(region, np.uint8, nbytes, (-start) % HUGE_PAGE)   # keeps `region` alive


def huge_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `a` (same dtype and shape) in huge-page memory."""
    out = huge_empty(a.nbytes).view(a.dtype).reshape(a.shape)
    out[...] = a
    return out
