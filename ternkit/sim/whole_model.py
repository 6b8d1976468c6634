"""Simulate a whole model: every BitLinear of the graph (lowered for target `npu`) on the array, for
`tokens` decode steps (one-token kernels) plus one `prefill`-token call, and the same workload on an
INT8 and an FP16 MAC array of equal peak throughput; with `whole_step`, the rest of each step too
(embedding, norms, (de)quantize, attention over a `context`-token KV cache, softmax, LM head: see
`ternkit.sim.step`), which is the same work on every architecture unless the LM head is ternary."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ternkit.errors import TernkitError
from ternkit.sim.area import area_mm2, fmax_ghz, static_mw
from ternkit.sim.config import NpuConfig, load_npu_config
from ternkit.sim.mapper import Mapping, choose_mapping
from ternkit.sim.step import DEFAULT_CONTEXT, STEP_COMPONENTS, Component, check_workload, cost, default_kv_bits, step_work
from ternkit.sim.simulator import (ARITHS, COMPONENTS, DEFAULT_DENSITY, Events, area_proxy, arithmetic_pj, energy,
                                   kernel_events)


@dataclass
class Part:
    """One row of the report (a layer, or the total): events and energy per architecture."""

    name: str
    events: dict[str, Events] = field(default_factory=lambda: {a: Events() for a in ARITHS})
    energy: dict[str, dict[str, float]] = field(default_factory=lambda: {a: dict.fromkeys(COMPONENTS, 0.0) for a in ARITHS})
    macs: float = 0

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
    step: list = field(default_factory=list)       # ternkit.sim.step.Component, one per component
    context: int = 0
    kv_bits: int = 16
    lm_head: str = ""                              # "" when the whole step is not modelled
    static_mw: float | None = None                 # the ternary array's leakage (ternkit.sim.area), with area=True
    area_mm2: dict | None = None                   # {"array logic", "SRAM", "total"} (area=True)
    fmax_ghz: float | None = None                  # the clock the synthesized column's longest path allows
    head: Part | None = None                       # a ternary LM head on the array (not among the BitLinears)
    mappings: dict = field(default_factory=dict)   # (M, K, N) -> the mapper's choice for the ternary array
    dram_bound_bytes: float = 0.0                  # the BitLinears' buffer-aware DRAM lower bound (mapper.buffer_bound)

    # whole step: the BitLinears (per architecture) plus the vector-unit components (the same for all);
    # static energy only for the ternary array (the MAC arrays' is left out: savings stay conservative)
    def _array_parts(self) -> list[Part]:
        return [self.total] + ([self.head] if self.head else [])

    def dynamic_pj(self, arith: str = "ternary") -> float:
        return sum(p.total_pj(arith) for p in self._array_parts()) + sum(c.total_pj for c in self.step)

    def static_pj(self) -> float:
        return (self.static_mw or 0.0) * 1e-3 * self.whole_seconds() * 1e12

    def whole_pj(self, arith: str = "ternary") -> float:
        return self.dynamic_pj(arith) + (self.static_pj() if arith == "ternary" else 0.0)

    def whole_seconds(self, arith: str = "ternary") -> float:
        cycles = sum(p.cycles(arith) for p in self._array_parts()) + sum(c.cycles for c in self.step)
        return cycles / (self.config.clock_ghz * 1e9)

    def whole_macs(self) -> float:
        return sum(p.macs for p in self._array_parts()) + sum(c.macs for c in self.step)

    def tokens_per_s(self, arith: str = "ternary") -> float:
        return (self.tokens + self.prefill) / self.whole_seconds(arith)

    def tokens_per_j(self, arith: str = "ternary") -> float:
        return (self.tokens + self.prefill) / (self.whole_pj(arith) * 1e-12)

    def tops_per_w(self, arith: str = "ternary") -> float:
        """Effective: 2 operations a multiply-add (a ternary select-and-add counts as one MAC)."""
        return 2 * self.whole_macs() / (self.whole_pj(arith) * 1e-12) / 1e12

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
        """A few headline numbers (for `ternkit run`): the BitLinears, then the whole step when modelled."""
        t = self.total
        out = {
            "config": self.config.name,
            "cycles": f"{t.cycles():,}",
            "time": f"{self.seconds() * 1e6:,.1f} us",
            "energy": f"{t.total_pj() / 1e6:,.3f} uJ",
            "vs INT8 MAC": f"{self.savings('int8'):.2f}x less energy",
            "vs FP16 MAC": f"{self.savings('fp16'):.2f}x less energy ({self.savings('fp16', True):.1f}x arithmetic)",
        }
        if self.step:
            out["whole step"] = (f"{self.whole_seconds() * 1e6:,.1f} us, {self.whole_pj() / 1e6:,.3f} uJ, "
                                 f"{self.tokens_per_s():,.1f} tokens/s, {self.dynamic_pj('int8') / self.dynamic_pj():.2f}x "
                                 f"/ {self.dynamic_pj('fp16') / self.dynamic_pj():.2f}x less energy than INT8 / FP16 MAC")
        return out


def _layer_of(node: str) -> str:
    m = re.match(r"layers\.(\d+)\.", node)
    return f"layer {m.group(1)}" if m else node


def simulate_model(model, config: NpuConfig | str | None = None, *, tokens: int = 1, prefill: int = 0,
                   density: float | None = None, whole_step: bool = True, context: int | None = None,
                   kv_bits: int | None = None, lm_head: str = "bf16", area: bool = False) -> SimReport:
    """Simulate `tokens` decode steps and a `prefill`-token prompt of a ModelGraph (weights used exactly
    when it has them, else `density` non-zero weights, default 0.69). `whole_step`: also the non-BitLinear
    work, each decode token attending to `context` cached tokens (default min(1024, the model's
    max_seq); more than max_seq is refused) stored in `kv_bits` (default: 3 for
    a4.8 models, else 16), with an LM head in `lm_head` precision (bf16, int8, ternary). `area`: area,
    static power and the timing-limited clock from synthesizing the column (needs yosys; cached)."""
    from ternkit.codegen.plan import lower
    from ternkit.codegen.targets import get_target
    cfg = config if isinstance(config, NpuConfig) else load_npu_config(config)
    if tokens < 0 or prefill < 0 or tokens + prefill == 0:
        raise TernkitError("simulate at least one token: --tokens >= 1 or --prefill >= 1")
    if density is not None and not 0 <= density <= 1:
        raise TernkitError(f"density must be in [0, 1] (the fraction of non-zero weights), got {density}")
    kv_bits = default_kv_bits(model) if kv_bits is None else kv_bits
    max_seq = model.config.max_seq
    context = min(DEFAULT_CONTEXT, max_seq) if context is None else context
    if whole_step:
        check_workload(context, kv_bits, lm_head)
        if context > max_seq:
            raise TernkitError(f"context {context} exceeds the model's max_seq {max_seq}")
    exact = model.params is not None and density is None
    dens = DEFAULT_DENSITY if density is None else density
    layers: dict[str, Part] = {}
    total = Part("total")
    zeros = weights = 0
    counted: set[str] = set()    # zero statistics once a weight, not once a workload
    mappings: dict[tuple[int, int, int], Mapping] = {}
    dram_bound = 0.0
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
                    mappings.setdefault((spec.M, spec.K, spec.N),
                                        choose_mapping(cfg, spec.M, spec.K, spec.N, cfg.weight_bits, 8))
                dram_bound += mappings[(spec.M, spec.K, spec.N)].dram_bound * calls
                part = layers.setdefault(_layer_of(node), Part(_layer_of(node)))
                for a, ev in cache[key].items():
                    scaled = ev.scaled(calls)
                    part.add(a, scaled, cfg)
                    total.add(a, scaled, cfg)
                part.macs += spec.M * spec.K * spec.N * calls
                total.macs += spec.M * spec.K * spec.N * calls
    zero_fraction = zeros / weights if exact and weights else 1 - dens
    report = SimReport(model.name, cfg, tokens, prefill, list(layers.values()), total, zero_fraction, exact,
                       mappings=mappings, dram_bound_bytes=dram_bound)
    if whole_step:
        _add_step(report, model, cfg, dens, context, kv_bits, lm_head)
    if area:
        report.area_mm2, report.static_mw, report.fmax_ghz = area_mm2(cfg), static_mw(cfg), fmax_ghz(cfg)
    return report


def _add_step(report: SimReport, model, cfg: NpuConfig, density: float, context: int, kv_bits: int,
              lm_head: str) -> None:
    """The vector-unit components of every call, and a ternary LM head on the arrays."""
    comps = {name: Component(name) for name in STEP_COMPONENTS}
    for n, calls, prefill in ((1, report.tokens, False), (report.prefill, 1, True)):
        if not n or not calls:
            continue
        for name, work in step_work(model, n, context, kv_bits, lm_head, prefill).items():
            c = cost(name, work, cfg)
            comps[name].cycles += c.cycles * calls
            comps[name].dram_bytes += c.dram_bytes * calls
            comps[name].macs += c.macs * calls
            for k, v in c.energy.items():
                comps[name].energy[k] += v * calls
        if lm_head == "ternary":    # the vocab x hidden matrix on the array, for the last token of the call
            M, K = model.config.vocab_size, model.config.hidden
            report.head = report.head or Part("LM head (array)")
            for a in ARITHS:
                report.head.add(a, kernel_events(cfg, M, K, 1, density=density, arith=a).scaled(calls), cfg)
            report.head.macs += M * K * calls
    report.step = list(comps.values())
    report.context, report.kv_bits, report.lm_head = context, kv_bits, lm_head
