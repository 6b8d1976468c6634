"""Run a whole model with every BitLinear's integer core in generated C kernels.

Embedding, norms, attention (with KV cache), activations and the LM head stay in numpy: the reference
`forward` is reused with its `core` hook pointing at the kernels, so the generated path and the
reference share every float step and must agree exactly on each BitLinear's `y_int`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import ModelGraph
from ternkit.reference.forward import KVCache, OwnWeightsCore, forward, greedy_generate
from ternkit.reference.quant import ternary_matmul

NodeKernel = Callable[[np.ndarray], np.ndarray]  # x_q int8 [n, K] -> y_int int32 [n, M]

@dataclass
class LoweredModel:
    """A model whose BitLinears run through compiled kernels: per node, kernels by tuned token count."""

    model: ModelGraph
    target: str
    kernels: dict[str, dict[int, NodeKernel]]
    compile_seconds: float = 0.0
    n_specs: int = 0  # distinct kernels (shape x token count) in the plan
    threads: int = 1  # each kernel call's M split across this many threads
    calls: int = field(default=0, repr=False)

    def kernel(self, node: str, n: int) -> NodeKernel:
        """The GEMV kernel for one token, else the GEMM tuned for the largest token count."""
        by_n = self.kernels[node]
        return by_n[1] if n == 1 and 1 in by_n else by_n[max(by_n)]

    def run(self, node: str, x_q: np.ndarray) -> np.ndarray:
        """One BitLinear's y_int through its kernel."""
        self.calls += 1
        kern, x_q = self.kernel(node, x_q.shape[0]), np.ascontiguousarray(x_q)
        return kern(x_q, threads=self.threads) if self.threads > 1 else kern(x_q)

    @property
    def core(self) -> OwnWeightsCore:
        """The integer core for `reference.forward`: the kernels, which hold their own packed weights,
        and the compiled exact float16 widening for a float16 LM head."""
        from ternkit.runtime.widen import widen_f16

        return OwnWeightsCore(self.run, widen_f16)

    def forward(self, tokens, cache: KVCache | None = None) -> np.ndarray:
        return forward(self.model, tokens, cache=cache, core=self.core)

    def generate(self, prompt, n_new: int) -> list[int]:
        return greedy_generate(self.model, prompt, n_new, core=self.core)


def lower_model(model: ModelGraph, target: str, tokens: tuple[int, ...] = (1,),
                weight_format: str | None = None, threads: int = 1, decode_format: str = "same") -> LoweredModel:
    """Lower, generate and compile the model's kernels for `target`, bound to its quantized weights;
    `decode_format` picks the one-token kernels' format (`codegen/decode_format.py`)."""
    import time

    from ternkit.codegen import decode_format as decode
    from ternkit.codegen.targets import get_c_target
    from ternkit.codegen.plan import lower
    from ternkit.runtime.kernels import compile_plan

    model.require_params()
    t = get_c_target(target)
    reason = t.unavailable_reason()
    if reason:
        raise TernkitError(f"target {target!r} cannot run on this machine: {reason}")
    plan = decode.choose(lower(model, t, tokens, weight_format), t, decode_format, forced=weight_format is not None)
    t0 = time.perf_counter()
    lib = compile_plan(plan, t)
    compile_s = time.perf_counter() - t0
    specs: dict[str, list] = {}
    for spec, nodes in plan.users.items():
        for node in nodes:
            specs.setdefault(node, []).append(spec)
    kernels: dict[str, dict[int, NodeKernel]] = {}
    for node, node_specs in specs.items():   # one node at a time: packed weights are unpacked once each
        w_q, _ = model.quantized_weight(node)
        packed: dict = {}   # GEMV and GEMM kernels with one layout share one packed copy
        kernels[node] = {}
        for spec in node_specs:
            layout = (spec.weight_format, tuple(sorted(t.layout(spec).items())))
            if layout not in packed:
                packed[layout] = lib.kernel(spec, w_q).packed
            kernels[node][spec.N] = lib.kernel(spec, packed=packed[layout])
    return LoweredModel(model=model, target=t.name, kernels=kernels, compile_seconds=compile_s, n_specs=len(plan.kernels),
                        threads=threads)


@dataclass
class ExactnessReport:
    bitlinear_calls: int
    mismatched_calls: list[str]
    max_logit_diff: float
    tokens_generated: list[int]
    tokens_reference: list[int]

    @property
    def ok(self) -> bool:
        return not self.mismatched_calls and self.tokens_generated == self.tokens_reference


def check_exact(lowered: LoweredModel, prompt: np.ndarray, n_new: int = 8) -> ExactnessReport:
    """Prefill + greedy decode through the kernels, comparing every BitLinear's y_int with the exact
    numpy core on the same x_q, the logits with an independent reference run, and the generated tokens."""
    mismatched: list[str] = []
    calls = 0

    def checking_core(node: str, x_q: np.ndarray, w_q: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        got = lowered.run(node, x_q)
        if not np.array_equal(got, ternary_matmul(x_q, w_q)):
            mismatched.append(f"{node} (n={x_q.shape[0]})")
        return got

    model = lowered.model
    ref_logits = forward(model, prompt)
    got_logits = forward(model, prompt, core=checking_core)
    diff = float(np.max(np.abs(ref_logits - got_logits)))
    generated = greedy_generate(model, prompt, n_new, core=checking_core)
    reference = greedy_generate(model, prompt, n_new)
    return ExactnessReport(calls, mismatched, diff, generated, reference)
