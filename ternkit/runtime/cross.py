"""Cross-build a Plan's kernels with a small generated driver and run them under an emulator (the
target ISA's cross toolchain, e.g. `aarch64-linux-gnu-gcc` + `qemu-aarch64`), many calls in one
emulator process.

    ys = run_cross(plan, "neon", [(spec, w_q, x_q), ...])            # full M
    ys = run_cross(plan, "neon", [(spec, w_q, x_q, m0, m1), ...])    # columns [m0, m1) only

Columns a call did not ask for come back as `SENTINEL`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ternkit.codegen.ctarget import CTarget
from ternkit.codegen.jinja import render
from ternkit.codegen.library import context, emit_library
from ternkit.codegen.plan import Plan
from ternkit.codegen.target import Target
from ternkit.errors import ShapeError, TernkitError
from ternkit.toolchain import Toolchain, cross_toolchain

SENTINEL = 0x5A5A5A5A


def build_cross(plan: Plan, target: CTarget, folder: Path, tc: Toolchain) -> Path:
    """Write the library + driver into `folder` and cross-compile the driver program."""
    for name, text in emit_library(plan, target).items():
        (folder / name).write_text(text)
    (folder / "driver.c").write_text(render("common/driver.c.j2", **context(plan, target)))
    return tc.compile(folder, ["driver.c", "ternkit_kernels.c"], "driver", extra=("-I", "."))


def run_cross(plan: Plan, target: Target | str, calls: list[tuple], *, timeout: float = 300) -> list[np.ndarray]:
    from ternkit.codegen.targets import get_c_target

    t = get_c_target(target)
    tc = cross_toolchain(t.isa, t.cflags())
    tc.check()
    names = list(dict.fromkeys(spec.name for spec in plan.kernels))   # the driver's KERNELS[] order
    index = {name: i for i, name in enumerate(names)}
    records, shapes = [np.array([len(calls)], "<i4").tobytes()], []
    for call in calls:
        spec, w_q, x_q = call[:3]
        if spec.name not in index:
            raise TernkitError(f"{spec.name} is not in this plan")
        m0, m1 = call[3:5] if len(call) > 3 else (0, spec.M)
        x_q = np.ascontiguousarray(x_q)
        if x_q.dtype != np.int8 or x_q.ndim != 2 or x_q.shape[1] != spec.K:
            raise ShapeError(f"{spec.name}: x_q must be int8 [n, {spec.K}], got {x_q.dtype} {x_q.shape}")
        packed = t.pack(spec, w_q)
        records += [np.array([index[spec.name], x_q.shape[0], m0, m1], "<i4").tobytes(), packed.tobytes(), x_q.tobytes()]
        shapes.append((x_q.shape[0], spec.M))
    with tempfile.TemporaryDirectory(prefix="ternkit-cross-") as tmp:
        folder = Path(tmp)
        exe = build_cross(plan, t, folder, tc)
        (folder / "in.bin").write_bytes(b"".join(records))
        tc.run(exe, [str(folder / "in.bin"), str(folder / "out.bin")], timeout=timeout)
        data = np.fromfile(folder / "out.bin", dtype="<i4")
    ys, offset = [], 0
    for n, m in shapes:
        ys.append(data[offset: offset + n * m].reshape(n, m).astype(np.int32))
        offset += n * m
    if offset != data.size:
        raise TernkitError(f"driver wrote {data.size} outputs, expected {offset}")
    return ys
