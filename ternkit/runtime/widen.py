"""Exact float16 -> float32 widening in generated C (`templates/runtime/widen.c.j2`), for the Python
runtime's float16 LM head: the same float32 values numpy's `astype` gives (bit for bit; only a
signalling NaN comes out quiet), several times faster."""

from __future__ import annotations

import functools

import numpy as np

from ternkit.errors import TernkitError


@functools.lru_cache(maxsize=1)
def _module():
    from ternkit.codegen.jinja import render
    from ternkit.toolchain.cffi_build import build_module

    try:
        return build_module("widen", "void ternkit_widen_f16(const uint16_t *src, float *dst, size_t n);",
                            render("runtime/widen.c.j2"), flags=("-O2",))
    except TernkitError:
        return None


def widen_f16(src: np.ndarray) -> np.ndarray:
    """`src.astype(np.float32)` for a float16 array (numpy's own conversion where C cannot be built)."""
    mod = _module()
    src = np.ascontiguousarray(src)
    if mod is None or src.dtype != np.float16:
        return src.astype(np.float32)
    out = np.empty(src.shape, dtype=np.float32)
    mod.lib.ternkit_widen_f16(mod.ffi.from_buffer("uint16_t[]", src.view(np.uint16)),
                              mod.ffi.from_buffer("float[]", out, require_writable=True), src.size)
    return out
