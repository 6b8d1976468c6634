"""Design-space sweeps: a grid of NPU configurations simulated in parallel, and the Pareto front of
energy against latency."""

from __future__ import annotations

import copy
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

from ternkit.errors import ConfigError
from ternkit.sim.config import DEFAULT_CONFIG, config_from_dict
from ternkit.yamlio import read_yaml

# array size, fan-in, buffer size and technology node
DEFAULT_GRID = {
    "array.columns": [32, 64, 128],
    "array.fan_in": [2, 4, 8],
    "buffers.weight.kib": [128, 512],
    "buffers.activation.kib": [64, 512],
    "tech.table": ["horowitz-45nm", "bitnet-7nm"],
}


@dataclass(frozen=True)
class Point:
    settings: tuple[tuple[str, object], ...]
    seconds: float
    energy_uj: float
    utilisation: float
    area: float = 0.0       # proxy: two-input adders + muxes + 4 x multipliers + SRAM KiB x 64 (see area_units)
    error: str = ""


def load_grid(path: str | Path | None) -> tuple[dict, dict]:
    """(base config dict, {dotted.path: [values]}) from a grid YAML (`base:` config path, `grid:`)."""
    if path is None:
        return read_yaml(DEFAULT_CONFIG, "NPU config"), DEFAULT_GRID
    data = read_yaml(path, "sweep grid")
    if not isinstance(data, dict) or not isinstance(data.get("grid"), dict) or not data["grid"]:
        raise ConfigError(f"{path}: a sweep grid needs `grid:` mapping dotted config paths to lists of values")
    bad = [k for k in data if k not in ("base", "grid")]
    if bad:
        raise ConfigError(f"{path}: unknown field {bad[0]!r} (expected base, grid)")
    base_path = data.get("base")
    base = read_yaml(Path(path).parent / base_path if base_path else DEFAULT_CONFIG, "NPU config")
    for key, values in data["grid"].items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key}: must be a non-empty list of values")
    return base, data["grid"]


def apply(base: dict, settings) -> dict:
    cfg = copy.deepcopy(base)
    for dotted, value in settings:
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


def points(grid: dict) -> list[tuple[tuple[str, object], ...]]:
    keys = list(grid)
    return [tuple(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


@functools.lru_cache(maxsize=4)
def _model(source: str):
    from ternkit.graph import load_model

    return load_model(source)


def evaluate(job: tuple) -> Point:
    """One grid point (runs in a worker process)."""
    from ternkit.sim.model import simulate_model

    base, settings, model, tokens, prefill = job
    name = "sweep " + ", ".join(f"{k}={v}" for k, v in settings)
    try:
        cfg = config_from_dict(apply(base, settings), name)
    except ConfigError as exc:   # e.g. inputs not a power of this fan-in: reported, not fatal
        return Point(settings, float("inf"), float("inf"), 0.0, error=str(exc).split(": invalid NPU config: ")[-1])
    r = simulate_model(_model(model), cfg, tokens=tokens, prefill=prefill)
    return Point(settings, r.seconds(), r.total.total_pj() / 1e6, r.utilisation(), area_units(cfg))


def area_units(cfg) -> float:
    """A unitless area proxy to trade against: logic units plus SRAM (a KiB ~ 64 adder-equivalents,
    an assumption), so that "bigger is better" on latency and energy has a price."""
    from ternkit.sim.simulator import area_proxy

    a = area_proxy(cfg)
    sram = cfg.weight_buf.kib + cfg.act_buf.kib + cfg.out_buf.kib
    return a["adders"] + a["muxes"] + 4 * a["multipliers"] + 64 * sram


def pareto(pts: list[Point], with_area: bool = False) -> list[Point]:
    """Points no other point beats on latency and energy (and area, `with_area`), fastest first."""
    ok = [p for p in pts if not p.error]

    def key(p: Point) -> tuple:
        return (p.seconds, p.energy_uj, p.area) if with_area else (p.seconds, p.energy_uj)

    def dominated(p: Point) -> bool:
        return any(all(a <= b for a, b in zip(key(q), key(p))) and key(q) != key(p) for q in ok)

    front = sorted((p for p in ok if not dominated(p)), key=key)
    unique: dict[tuple, Point] = {}
    for p in front:                     # equal objectives (e.g. a setting that changes nothing): keep one
        unique.setdefault(key(p), p)
    return list(unique.values())
