"""Validate a model's generated kernels on one target: bit-exact against the numpy reference
(`ternary_matmul`), plus the largest dequantised difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ternkit.codegen.plan import lower
from ternkit.codegen.target import Target
from ternkit.codegen.targets import get_target
from ternkit.errors import TernkitError
from ternkit.reference.quant import dequantize, quantize_activations, ternary_matmul
from ternkit.runtime.kernels import compile_plan
from ternkit.textable import table


@dataclass
class ValidationRow:
    kernel: str
    shape: str          # "MxK, n=N"
    format: str
    bit_exact: bool
    max_error: float    # max |dequantised kernel output - dequantised reference output|
    node: str           # the graph node whose weights were used


def validate(model, target: Target | str, *, tokens: tuple[int, ...] = (1, 8), weight_format: str | None = None,
             threads: int = 1, seed: int = 0) -> list[ValidationRow]:
    t = get_target(target)
    if model.params is None:
        raise TernkitError(f"model {model.name!r} has shapes only, no weights: validate a model with weights")
    plan = lower(model, t, tokens, weight_format)
    lib = compile_plan(plan, t)
    rng = np.random.default_rng(seed)
    rows = []
    for spec in plan.kernels:
        node = plan.users[spec][0]
        w_q, w_scale = model.quantized_weight(node)
        x = rng.standard_normal((spec.N, spec.K)).astype(np.float32)
        qmax = 2 ** (spec.activation_bits - 1)
        x_q, x_scale = quantize_activations(x, spec.activation_bits)
        x_q[0, : min(4, spec.K)] = -qmax                     # the extremes must survive too
        y = lib.kernel(spec, w_q).call_split(x_q, threads)    # forced split: validates the parts too
        ref = ternary_matmul(x_q, w_q)
        err = float(np.max(np.abs(dequantize(y, w_scale, x_scale) - dequantize(ref, w_scale, x_scale))))
        rows.append(ValidationRow(kernel=spec.name, shape=f"{spec.M}x{spec.K}, n={spec.N}", format=spec.weight_format,
                                  bit_exact=bool(np.array_equal(y, ref)), max_error=err, node=node))
    return rows


def format_table(rows: list[ValidationRow]) -> str:
    header = ("kernel", "shape (MxK)", "format", "bit-exact", "max deq. error", "weights from")
    body = [(r.kernel, r.shape, r.format, "yes" if r.bit_exact else "NO", f"{r.max_error:.3g}", r.node) for r in rows]
    return table(header, body)
