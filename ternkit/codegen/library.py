"""Emit a C library for a Plan: a header (prototypes + layout docs), the kernel source and a Makefile.

Python decides (formats, tiling, sizes: `CTarget.kernel_context`; decode tables: `formats.<fmt>.LOOKUP`); the templates in
`ternkit/templates/common/` and `ternkit/templates/<target>/` hold all of the C."""

from __future__ import annotations

import re

from ternkit import formats
from ternkit.codegen.jinja import abi, render
from ternkit.codegen.ctarget import CTarget
from ternkit.codegen.plan import Plan
from ternkit.codegen.target import Target
from ternkit.errors import TernkitError
from ternkit.toolchain import WARNINGS

LIB = "ternkit_kernels"
HEADER = f"{LIB}.h"


def _target(plan: Plan, target: Target | str | None) -> CTarget:
    from ternkit.codegen.targets import get_c_target

    t = get_c_target(target if target is not None else plan.target)
    if t.name != plan.target:
        raise TernkitError(f"plan was lowered for target {plan.target!r}, not {t.name!r}")
    return t


def context(plan: Plan, target: CTarget, *, inline_header: bool = False, runtime: str = "") -> dict:
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
        lookups={f: formats.get_format(f).LOOKUP for f in used},
        cflags=" ".join(target.cflags()), warnings=" ".join(WARNINGS), cross=target.isa.cross, runtime=runtime,
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
    cdef = "\n".join(f"{abi().kernel(k['name'])};" for k in ctx["kernels"])
    return cdef, render("common/source.c.j2", **ctx)
