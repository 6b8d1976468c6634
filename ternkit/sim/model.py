"""Simulate a whole model: every BitLinear of the graph (lowered for target `npu`) on the array, for
`tokens` decode steps (one-token kernels) plus one `prefill`-token call, and the same workload on an
INT8 and an FP16 MAC array of equal peak throughput. Attention scores, norms and the full-precision
LM head are not BitLinears and are not modelled (the report says so)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ternkit.sim.config import NpuConfig, load_npu_config
from ternkit.sim.simulator import (ARITHS, COMPONENTS, DEFAULT_DENSITY, Events, area_proxy, arithmetic_pj, energy,
                                   kernel_events)


@dataclass
class Part:
    """One row of the report (a layer, or the total): events and energy per architecture."""

    name: str
    events: dict[str, Events] = field(default_factory=lambda: {a: Events() for a in ARITHS})
    energy: dict[str, dict[str, float]] = field(default_factory=lambda: {a: dict.fromkeys(COMPONENTS, 0.0) for a in ARITHS})
    macs: int = 0

    def add(self, arith: str, ev: Events, cfg: NpuConfig) -> None:
        self.events[arith] = self.events[arith] + ev
        for k, v in energy(ev, cfg, arith).items():
            self.energy[arith][k] += v

    def total_pj(self, arith: str = "ternary") -> float:
        return sum(self.energy[arith].values())

    def cycles(self, arith: str = "ternary") -> int:
        return self.events[arith].cycles


@dataclass
class SimReport:
    model: str
    config: NpuConfig
    tokens: int
    prefill: int
    layers: list[Part]
    total: Part
    zero_fraction: float
    exact_weights: bool

    def seconds(self, arith: str = "ternary", part: Part | None = None) -> float:
        return (part or self.total).cycles(arith) / (self.config.clock_ghz * 1e9)

    def utilisation(self, part: Part | None = None) -> float:
        p = part or self.total
        c = p.cycles("ternary")
        return p.macs / (c * self.config.columns * self.config.inputs) if c else 0.0

    def savings(self, baseline: str, arithmetic_only: bool = False) -> float:
        if arithmetic_only:
            return arithmetic_pj(self.total.energy[baseline]) / max(arithmetic_pj(self.total.energy["ternary"]), 1e-30)
        return self.total.total_pj(baseline) / max(self.total.total_pj(), 1e-30)

    def area(self) -> dict[str, dict[str, int]]:
        return {a: area_proxy(self.config, a) for a in ARITHS}

    def summary(self) -> dict[str, str]:
        """A few headline numbers (for `ternkit run`)."""
        t = self.total
        return {
            "config": self.config.name,
            "cycles": f"{t.cycles():,}",
            "time": f"{self.seconds() * 1e6:,.1f} us",
            "energy": f"{t.total_pj() / 1e6:,.3f} uJ",
            "vs INT8 MAC": f"{self.savings('int8'):.2f}x less energy",
            "vs FP16 MAC": f"{self.savings('fp16'):.2f}x less energy ({self.savings('fp16', True):.1f}x arithmetic)",
        }


def _layer_of(node: str) -> str:
    m = re.match(r"layers\.(\d+)\.", node)
    return f"layer {m.group(1)}" if m else node


def simulate_model(model, config: NpuConfig | str | None = None, *, tokens: int = 1, prefill: int = 0,
                   density: float | None = None) -> SimReport:
    """Simulate `tokens` decode steps and a `prefill`-token prompt of a ModelGraph (weights used exactly
    when it has them, else `density` non-zero weights, default 0.69)."""
    from ternkit.codegen.plan import lower
    from ternkit.codegen.targets import get_target
    from ternkit.errors import TernkitError

    cfg = config if isinstance(config, NpuConfig) else load_npu_config(config)
    if tokens < 0 or prefill < 0 or tokens + prefill == 0:
        raise TernkitError("simulate at least one token: --tokens >= 1 or --prefill >= 1")
    if density is not None and not 0 <= density <= 1:
        raise TernkitError(f"density must be in [0, 1] (the fraction of non-zero weights), got {density}")
    exact = model.params is not None and density is None
    dens = DEFAULT_DENSITY if density is None else density
    layers: dict[str, Part] = {}
    total = Part("total")
    zeros = weights = 0
    counted: set[str] = set()    # zero statistics once a weight, not once a workload
    cache: dict[tuple, dict[str, Events]] = {}
    # decode (one-token kernels, `tokens` calls) and prefill (one `prefill`-token call) are lowered apart,
    # so equal token counts (--tokens 10 --prefill 1) still give 10 + 1 steps
    for n, calls in ((1, tokens), (prefill, 1)):
        if not n or not calls:
            continue
        for spec, nodes in lower(model, get_target("npu"), (n,)).users.items():
            for node in nodes:
                w_q = model.quantized_weight(node)[0] if exact else None
                if w_q is not None and node not in counted:
                    counted.add(node)
                    zeros += int((w_q == 0).sum())
                    weights += w_q.size
                key = (spec.M, spec.K, spec.N) if w_q is None else (node, spec.N)
                if key not in cache:
                    cache[key] = {a: kernel_events(cfg, spec.M, spec.K, spec.N, w_q=w_q if a == "ternary" else None,
                                                   density=dens, arith=a) for a in ARITHS}
                part = layers.setdefault(_layer_of(node), Part(_layer_of(node)))
                for a, ev in cache[key].items():
                    scaled = ev.scaled(calls)
                    part.add(a, scaled, cfg)
                    total.add(a, scaled, cfg)
                part.macs += spec.M * spec.K * spec.N * calls
                total.macs += spec.M * spec.K * spec.N * calls
    zero_fraction = zeros / weights if exact and weights else 1 - dens
    return SimReport(model.name, cfg, tokens, prefill, list(layers.values()), total, zero_fraction, exact)
