"""Technology tables: energy per event (pJ), loaded from `ternkit/sim/tech/<name>.yaml` or a path,
with per-field overrides from the NPU config. Each table cites its source and states its assumptions."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ternkit.errors import ConfigError
from ternkit.schema import MISSING, Section, check, checked, section
from ternkit.yamlio import read_yaml

TECH_DIR = Path(__file__).parent / "tech"


def _number(x, positive: bool = False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return ok and (x > 0 if positive else x >= 0)


def _present(v: Any) -> Any:
    if v is MISSING:
        raise ValueError("missing")
    return v


def _energy(v: Any) -> float:
    if not _number(_present(v)):
        raise ValueError(f"energies must be finite non-negative numbers, got {v!r}")
    return v


def _fraction(v: Any) -> float:
    if _energy(v) > 1:
        raise ValueError(f"is a fraction of the macro area, at most 1, got {v!r}")
    return v


def _table(v: Any) -> dict:
    """Positive sizes (bits or KiB) to finite non-negative energies."""
    if not isinstance(_present(v), dict) or not v:
        raise ValueError(f"must be a mapping of sizes to energies (e.g. {{8: 0.03, 32: 0.1}}), got {v!r}")
    if not all(_number(size, positive=True) for size in v):
        raise ValueError(f"sizes must be finite positive numbers, got {list(v)!r}")
    if not all(_number(e) for e in v.values()):
        raise ValueError(f"energies must be finite non-negative numbers, got {v!r}")
    return v


Citation = checked(_present, str)
Energy = checked(_energy, float)
Table = checked(_table, dict)


@section
class Tech(Section):
    open_keys = True           # a table file may carry notes of its own

    name: Citation
    source: Citation
    assumptions: Citation
    int_add_pj: Table          # bits -> pJ, interpolated linearly in bits
    int_mult_pj: Table
    fp16_add_pj: Energy
    fp16_mult_pj: Energy
    fp32_add_pj: Energy
    fp32_mult_pj: Energy
    mux_pj_per_bit: Energy
    reg_pj_per_bit: Energy
    sram_pj_per_bit: Table     # KiB -> pJ per bit, interpolated in log2(size)
    dram_pj_per_bit: Energy
    # area, leakage and timing (ternkit.sim.area): optional in user tables, required for area reports
    logic_mtr_per_mm2: Energy = 0.0      # million transistors a mm2 of standard-cell logic
    sram_um2_per_bit: Energy = 0.0       # SRAM bitcell area
    sram_array_efficiency: checked(_fraction, float) = 0.0  # bitcell area / macro area (periphery, sense amps, decoders)
    leakage_mw_per_mm2: Energy = 0.0     # static power a mm2
    gate_delay_ps: Energy = 0.0          # delay of one generic gate level on a synthesized path

    def int_add(self, bits: float) -> float:
        return _interp(self.int_add_pj, bits)

    def int_mult(self, bits: float) -> float:
        return _interp(self.int_mult_pj, bits)

    def sram_bit(self, kib: float) -> float:
        table = {math.log2(k): v for k, v in self.sram_pj_per_bit.items()}
        return _interp(table, math.log2(kib))


def _interp(table: dict, x: float) -> float:
    pts = sorted((float(k), float(v)) for k, v in table.items())
    if len(pts) == 1:
        return pts[0][1]
    (x0, y0), (x1, y1) = (pts[0], pts[1]) if x <= pts[0][0] else (pts[-2], pts[-1])
    for a, b in zip(pts, pts[1:]):
        if a[0] <= x <= b[0]:
            (x0, y0), (x1, y1) = a, b
            break
    return max(0.0, y0 + (y1 - y0) * (x - x0) / (x1 - x0))


TEXT_FIELDS = ("name", "source", "assumptions")


def overridable() -> list[str]:
    """The fields an NPU config may override: the numbers, not the table's name and citations."""
    return sorted(f.name for f in dataclasses.fields(Tech) if f.name not in TEXT_FIELDS)


def tech_names() -> list[str]:
    return sorted(p.stem for p in TECH_DIR.glob("*.yaml"))


def load_tech(name_or_path: str, overrides: dict | None = None, where: str = "tech") -> Tech:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = TECH_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"{where}.table: unknown technology table {name_or_path!r}: use one of "
                              f"{', '.join(tech_names())} or a path to a YAML table")
    data = read_yaml(path, "technology table")
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: a technology table must be a YAML mapping of field: value")
    overrides = overrides or {}
    unknown = [k for k in overrides if k not in overridable()]
    if unknown:
        raise ConfigError("; ".join(f"{where}.overrides.{k}: unknown field (expected one of: "
                                    f"{', '.join(overridable())})" for k in unknown))
    tech, found = check(Tech, {**(data or {}), **overrides})
    if found:   # a bad value is named where it came from: the override, or the table file
        raise ConfigError("; ".join(
            f"{path}: missing {k}" if msg == "missing"
            else f"{where}.overrides.{k}: {msg}" if k in overrides else f"{path}: {k}: {msg}"
            for k, msg in found))
    if overrides:
        tech = dataclasses.replace(tech, name=f"{tech.name} (overridden: {', '.join(sorted(overrides))})")
    return tech
