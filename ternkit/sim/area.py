"""Area in mm2, static power and the timing-limited clock of an NPU config, from synthesis and
published cell/bitcell areas (the technology table's `logic_mtr_per_mm2`, `sram_um2_per_bit`, ...).

- array logic: columns x the yosys CMOS transistor estimate of one synthesized column
  (ternkit.sim.rtl: select units or multipliers, weight registers, pipelined tree, accumulator)
  / the node's logic density;
- SRAM: the three buffers' bits x the bitcell area / the array efficiency;
- not included: the vector unit, control, DRAM PHY and interconnect (the report says so);
- static power: area x leakage density; the clock the column's longest synthesized path allows:
  1 / (gate levels x gate delay)."""

from __future__ import annotations

from ternkit.errors import TernkitError
from ternkit.sim.config import NpuConfig
from ternkit.sim.rtl import column_of, synthesize


def _need_area_fields(cfg: NpuConfig) -> None:
    t = cfg.tech
    missing = [k for k in ("logic_mtr_per_mm2", "sram_um2_per_bit", "sram_array_efficiency", "gate_delay_ps")
               if not getattr(t, k)]
    if missing:
        raise TernkitError(f"technology table {t.name!r} has no {', '.join(missing)}: area needs them "
                           "(see ternkit/sim/tech/bitnet-7nm.yaml)")


def area_mm2(cfg: NpuConfig, kind: str = "ternary") -> dict[str, float]:
    """{"array logic", "SRAM", "total"} in mm2 for the ternary array or the INT8 MAC array (`kind`)."""
    _need_area_fields(cfg)
    t = cfg.tech
    logic = cfg.columns * synthesize(column_of(cfg, kind))["transistors"] / (t.logic_mtr_per_mm2 * 1e6)
    bits = sum(b.bytes * 8 for b in (cfg.weight_buf, cfg.act_buf, cfg.out_buf))
    sram = bits * t.sram_um2_per_bit / t.sram_array_efficiency / 1e6
    return {"array logic": logic, "SRAM": sram, "total": logic + sram}


def static_mw(cfg: NpuConfig) -> float:
    return area_mm2(cfg)["total"] * cfg.tech.leakage_mw_per_mm2


def fmax_ghz(cfg: NpuConfig, kind: str = "ternary") -> float:
    """The clock the column's longest register-to-register path allows (gate levels x gate delay)."""
    _need_area_fields(cfg)
    return 1e3 / (synthesize(column_of(cfg, kind))["depth"] * cfg.tech.gate_delay_ps)
