"""Technology tables: energy per event (pJ), loaded from `ternkit/sim/tech/<name>.yaml` or a path,
with per-field overrides from the NPU config. Each table cites its source and states its assumptions."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ternkit.errors import ConfigError
from ternkit.yamlio import read_yaml

TECH_DIR = Path(__file__).parent / "tech"


@dataclass(frozen=True)
class Tech:
    name: str
    source: str
    assumptions: str
    int_add_pj: dict           # bits -> pJ, interpolated linearly in bits
    int_mult_pj: dict
    fp16_add_pj: float
    fp16_mult_pj: float
    fp32_add_pj: float
    fp32_mult_pj: float
    mux_pj_per_bit: float
    reg_pj_per_bit: float
    sram_pj_per_bit: dict      # KiB -> pJ per bit, interpolated in log2(size)
    dram_pj_per_bit: float
    # area, leakage and timing (ternkit.sim.area): optional in user tables, required for area reports
    logic_mtr_per_mm2: float = 0.0      # million transistors a mm2 of standard-cell logic
    sram_um2_per_bit: float = 0.0       # SRAM bitcell area
    sram_array_efficiency: float = 0.0  # bitcell area / macro area (periphery, sense amps, decoders)
    leakage_mw_per_mm2: float = 0.0     # static power a mm2
    gate_delay_ps: float = 0.0          # delay of one generic gate level on a synthesized path

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
OPTIONAL_FIELDS = ("logic_mtr_per_mm2", "sram_um2_per_bit", "sram_array_efficiency", "leakage_mw_per_mm2",
                   "gate_delay_ps")
TABLE_FIELDS = ("int_add_pj", "int_mult_pj", "sram_pj_per_bit")     # {bits or KiB: pJ}


def _number(x, positive: bool = False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return ok and (x > 0 if positive else x >= 0)


def _bad_value(field: str, v) -> str:
    """Why a table or override value is unusable ('' when fine): tables map positive sizes to finite
    non-negative energies, the rest are finite non-negative energies."""
    if field in TABLE_FIELDS:
        if not isinstance(v, dict) or not v:
            return f"must be a mapping of sizes to energies (e.g. {{8: 0.03, 32: 0.1}}), got {v!r}"
        if not all(_number(size, positive=True) for size in v):
            return f"sizes must be finite positive numbers, got {list(v)!r}"
        if not all(_number(e) for e in v.values()):
            return f"energies must be finite non-negative numbers, got {v!r}"
        return ""
    if field == "sram_array_efficiency" and _number(v) and v > 1:
        return f"is a fraction of the macro area, at most 1, got {v!r}"
    return "" if _number(v) else f"energies must be finite non-negative numbers, got {v!r}"


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
    names = {f.name for f in fields(Tech)}
    merged = {**(data or {}), **(overrides or {})}
    errors = [f"{where}.overrides.{k}: unknown field (expected one of: {', '.join(sorted(names - set(TEXT_FIELDS)))})"
              for k in (overrides or {}) if k not in names]
    errors += [f"{path}: missing {k}" for k in sorted(names - set(merged) - set(OPTIONAL_FIELDS))]
    if errors:
        raise ConfigError("; ".join(errors))
    for k, v in merged.items():
        if k not in TEXT_FIELDS:
            problem = _bad_value(k, v)
            if problem:
                errors.append(f"{where}.overrides.{k}: {problem}" if k in (overrides or {}) else f"{path}: {k}: {problem}")
    if errors:
        raise ConfigError("; ".join(errors))
    tech = Tech(**{k: merged[k] for k in names if k in merged})
    if overrides:
        tech = replace(tech, name=f"{tech.name} (overridden: {', '.join(sorted(overrides))})")
    return tech
