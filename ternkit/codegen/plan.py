"""Lowering: a model graph -> a Plan of the distinct kernel specs the model needs on one target.

A KernelSpec is one shape-specialised integer kernel: `y_int[N, M] = x_q[N, K] · w_q[M, K]ᵀ`.
Specs are deduplicated by shape; each remembers the graph nodes that use it. The target decides the
weight format and tiling of each spec (`Target.specialise`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from ternkit.graph.modelgraph import ModelGraph


class PlanTarget(Protocol):
    name: str

    def specialise(self, spec: "KernelSpec") -> "KernelSpec":
        """Return the spec with `weight_format` and `tiling` chosen for this target."""


@dataclass(frozen=True)
class KernelSpec:
    M: int                      # output features (rows of W)
    K: int                      # input features
    N: int                      # tokens the kernel is tuned for: 1 = GEMV (decode), >1 = GEMM (prefill)
    weights: str = "ternary"    # ternary | binary (values the kernel accepts)
    activation_bits: int = 8
    weight_format: str = ""     # packing chosen by the target, e.g. i2, tl1, tl2
    tiling: tuple[tuple[str, Any], ...] = ()

    @property
    def op(self) -> str:
        return "gemv" if self.N == 1 else "gemm"

    @property
    def name(self) -> str:
        """A C identifier unique within a plan."""
        fmt = f"_{self.weight_format}" if self.weight_format else ""
        return f"{self.op}_m{self.M}_k{self.K}" + (f"_n{self.N}" if self.N > 1 else "") + fmt + f"_a{self.activation_bits}"

    @property
    def shape_key(self) -> str:
        """The name without the weight format: what a per-shape format choice is keyed by."""
        return self.name.replace(f"_{self.weight_format}_", "_") if self.weight_format else self.name

    @property
    def ops(self) -> int:
        """Integer operations (one multiply-accumulate counted as 2), for GOPS."""
        return 2 * self.M * self.K * self.N

    def tile(self, key: str, default: Any = None) -> Any:
        return dict(self.tiling).get(key, default)


@dataclass
class Plan:
    target: str
    model: str
    kernels: list[KernelSpec]
    users: dict[KernelSpec, list[str]] = field(default_factory=dict)  # spec -> graph nodes that call it

    def kernel_for(self, node: str, n_tokens: int = 1) -> KernelSpec:
        for spec, nodes in self.users.items():
            if node in nodes and spec.N == n_tokens:
                return spec
        raise KeyError(f"no kernel for node {node!r} with N={n_tokens} in plan for {self.target}")

    def prefill_for(self, node: str) -> KernelSpec | None:
        """The node's prefill kernel: the one tuned for the most tokens (> 1), None without one."""
        gemms = [s for s, nodes in self.users.items() if node in nodes and s.N > 1]
        return max(gemms, key=lambda s: s.N) if gemms else None

    def remap(self, change: Callable[[KernelSpec], KernelSpec]) -> "Plan":
        """The plan with every kernel replaced by `change(kernel)`, each keeping its graph nodes (kernels
        that become the same spec share them)."""
        users: dict[KernelSpec, list[str]] = {}
        for spec in self.kernels:
            users.setdefault(change(spec), []).extend(self.users.get(spec, []))
        return Plan(target=self.target, model=self.model, kernels=list(users), users=users)


def lower(model: "ModelGraph", target: PlanTarget, tokens: tuple[int, ...] = (1,),
          weight_format: str | None = None) -> Plan:
    """One spec per distinct (M, K, N, weights, activation bits) among the model's BitLinears, for each
    token count in `tokens` (1 = decode GEMV; e.g. 64 = a prefill GEMM); `weight_format` forces one
    format on every kernel (else the target chooses)."""
    users: dict[KernelSpec, list[str]] = {}
    for n in tokens:
        for node in model.bitlinears():
            a = model.attrs(node)
            base = KernelSpec(M=a["out_features"], K=a["in_features"], N=n, weights=a["weights"],
                              activation_bits=a["activation_bits"], weight_format=weight_format or "")
            spec = target.specialise(base)
            users.setdefault(spec, []).append(node)
    return Plan(target=target.name, model=model.name, kernels=list(users), users=users)
