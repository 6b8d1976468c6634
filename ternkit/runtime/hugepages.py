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
ALIGN = 64          # each copy starts on a cache line (the widest vector a kernel loads)


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


class HugeArena:
    """Copies carved one after another, each on a cache line, out of huge-page regions of at least
    `chunk` bytes: one mapping for many copies (a DRAM working set of 1 KiB matrices is 10^5 copies),
    and copies made in turn for several kernels lie interleaved, as `avx2_kernels.py` wants them."""

    def __init__(self, chunk: int = 64 << 20) -> None:
        self.chunk = chunk
        self.region, self.used = np.empty(0, np.uint8), 0

    def empty(self, nbytes: int) -> np.ndarray:
        """`nbytes` of zeroed uint8 from the current region (a new one when it is full)."""
        step = -(-max(nbytes, 1) // ALIGN) * ALIGN
        if self.used + step > self.region.nbytes:
            self.region, self.used = huge_empty(max(self.chunk, step)), 0
        out = self.region[self.used:self.used + nbytes]
        self.used += step
        return out

    def copy(self, a: np.ndarray) -> np.ndarray:
        """A C-contiguous copy of `a` (same dtype and shape) in huge-page memory."""
        out = self.empty(a.nbytes).view(a.dtype).reshape(a.shape)
        out[...] = a
        return out
