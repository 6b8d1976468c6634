"""Shared pieces of the code generation tests: random shapes/values and a one-build check of many
kernels at once (every kernel is shape-specialised, so one plan holds all shapes of an example)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.reference.quant import ternary_matmul

W_MODES = ("random", "zero", "plus", "minus", "sparse")
X_MODES = ("random", "min", "max", "alternate")


def weights(mode: str, M: int, K: int, rng) -> np.ndarray:
    if mode == "zero":
        return np.zeros((M, K), np.int8)
    if mode == "plus":
        return np.ones((M, K), np.int8)
    if mode == "minus":
        return -np.ones((M, K), np.int8)
    if mode == "sparse":
        return (rng.integers(-1, 2, (M, K)) * (rng.random((M, K)) < 0.1)).astype(np.int8)
    return rng.integers(-1, 2, (M, K)).astype(np.int8)


def activations(mode: str, n: int, K: int, rng) -> np.ndarray:
    if mode == "min":
        return np.full((n, K), -128, np.int8)
    if mode == "max":
        return np.full((n, K), 127, np.int8)
    if mode == "split_max":      # x = 120 = 16 * 8 - 8: both halves of tl2's split x = 16 h + l at their largest
        return np.full((n, K), 120, np.int8)
    if mode == "alternate":
        return np.where(np.arange(K) % 2 == 0, -128, 127).astype(np.int8)[None, :].repeat(n, 0)
    return rng.integers(-128, 128, (n, K)).astype(np.int8)


# (M, K, n, weight mode, x mode): K crosses every group/block boundary; M=1, n=1 are common.
case = st.tuples(
    st.one_of(st.just(1), st.integers(1, 80)),
    st.one_of(st.sampled_from([1, 2, 3, 4, 5, 63, 64, 65, 127, 128, 129, 130]), st.integers(1, 400)),
    st.one_of(st.just(1), st.integers(1, 5)),
    st.sampled_from(W_MODES),
    st.sampled_from(X_MODES),
)

EDGE_CASES = [
    (1, 1, 1, "plus", "min"), (1, 1, 1, "minus", "min"), (1, 2, 1, "random", "random"),
    (3, 3, 2, "minus", "min"), (33, 129, 3, "plus", "max"), (32, 385, 1, "minus", "min"),
    (64, 256, 1, "plus", "min"), (17, 7, 4, "zero", "max"), (40, 200, 2, "random", "alternate"),
    (31, 1000, 1, "minus", "min"),
]


def run_cases(target, fmts, cases, *, seed=0, threads=1, compile_and_run=None):
    """Build one plan holding every (case, format) kernel; run each split into `threads` column
    ranges on as many pool threads (forced: these shapes are too small for the automatic choice);
    return [(label, y, ref)]."""
    rng = np.random.default_rng(seed)
    specs, data = [], []
    for fmt in fmts:
        for M, K, n, wm, xm in cases:
            spec = target.specialise(KernelSpec(M=M, K=K, N=n, weight_format=fmt))
            specs.append(spec)
            data.append((spec, weights(wm, M, K, rng), activations(xm, n, K, rng), f"{fmt} {M}x{K} n={n} {wm}/{xm}"))
    unique = list(dict.fromkeys(specs))
    plan = Plan(target=target.name, model="test", kernels=unique)
    if compile_and_run is not None:
        ys = compile_and_run(plan, target, [(s, w, x) for s, w, x, _ in data])
    else:
        from ternkit.runtime.kernels import compile_plan

        lib = compile_plan(plan, target)
        ys = [lib.kernel(s, w).call_split(x, threads) for s, w, x, _ in data]
    return [(label, y, ternary_matmul(x, w)) for (_, w, x, label), y in zip(data, ys)]


def assert_exact(results):
    bad = [label for label, y, ref in results if not np.array_equal(y, ref)]
    assert not bad, f"{len(bad)} of {len(results)} kernels differ from ternary_matmul: {bad[:5]}"
