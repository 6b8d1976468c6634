"""Emit a C library for a Plan: a header (prototypes + layout docs), the kernel source and a Makefile.

Python decides (formats, tiling, sizes: `TemplateTarget.kernel_context`); the templates in
`ternkit/templates/common/` and `ternkit/templates/<target>/` hold all of the C."""

from __future__ import annotations

import re

from ternkit import formats
from ternkit.codegen.jinja import render
from ternkit.codegen.plan import Plan
from ternkit.codegen.target import Target
from ternkit.errors import TernkitError

LIB = "ternkit_kernels"
HEADER = f"{LIB}.h"


def _target(plan: Plan, target: Target | str | None) -> Target:
    from ternkit.codegen.targets import get_target

    t = get_target(target if target is not None else plan.target)
    if t.name != plan.target:
        raise TernkitError(f"plan was lowered for target {plan.target!r}, not {t.name!r}")
    if not t.generates_c:
        raise TernkitError(f"target {t.name!r} has no C kernels: {t.unavailable_reason()}")
    return t


def context(plan: Plan, target: Target, *, inline_header: bool = False, runtime: str = "") -> dict:
    if not plan.kernels:
        raise TernkitError(f"model {plan.model!r} has no BitLinear layers: nothing to generate")
    kernels, seen = [], set()
    for spec in plan.kernels:   # specs differing only in `weights` (binary vs ternary) share a kernel
        if spec.name not in seen:
            seen.add(spec.name)
            kernels.append(target.kernel_context(spec))
    used = sorted({k["format"] for k in kernels})
    return dict(
        target=target, model=plan.model, kernels=kernels, formats_used=used, header=HEADER, lib=LIB,
        guard=re.sub(r"\W", "_", HEADER).upper(), inline_header=inline_header,
        tl1_combos=list(formats.get_format("tl1").COMBOS) + [(0, 0)] * 7,
        tl2_combos=list(formats.get_format("tl2").COMBOS) + [(0, 0, 0)] * 2,
        cflags=" ".join(target.cflags()), runtime=runtime,
    )


def emit_library(plan: Plan, target: Target | str | None = None, runtime: str = "") -> dict[str, str]:
    """`{filename: text}` for the plan's kernels on `target`: header, source, Makefile (which also
    builds the standalone program `runtime` from `runtime.c` when given)."""
    t = _target(plan, target)
    ctx = context(plan, t, runtime=runtime)
    return {
        HEADER: render("common/header.h.j2", **ctx),
        f"{LIB}.c": render("common/source.c.j2", **ctx),
        "Makefile": render("common/Makefile.j2", **ctx),
    }


def makefile_products(runtime: str = "") -> tuple[str, ...]:
    """The files the emitted Makefile builds (and `make clean` removes)."""
    return (f"{LIB}.o", f"lib{LIB}.a") + ((runtime,) if runtime else ())


def cffi_source(plan: Plan, target: Target | str | None = None) -> tuple[str, str]:
    """(cdef, source) for building the plan's kernels in-process with cffi: one translation unit
    with the header inlined."""
    t = _target(plan, target)
    ctx = context(plan, t, inline_header=True)
    cdef = "\n".join(f"void {k['name']}(const uint8_t *w, const int8_t *x, int32_t *y, int32_t n, "
                     f"int32_t m0, int32_t m1);" for k in ctx["kernels"])
    return cdef, render("common/source.c.j2", **ctx)
