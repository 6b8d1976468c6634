"""Design-space sweeps: a grid of NPU configurations simulated in parallel (the whole step), and the
Pareto front of energy against latency (and area: with `with_area`, each point's array is synthesized,
its clock is capped at what the synthesized column's longest path allows, and static power counts)."""

from __future__ import annotations

import copy
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ternkit.errors import ConfigError
from ternkit.schema import Section, checked, problem, section, validate
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
    area: float = 0.0       # mm2 (array logic from synthesis + SRAM), with_area only
    clock_ghz: float = 0.0  # the clock simulated (capped at the synthesized fmax with_area)
    error: str = ""


def _grid(v: Any) -> dict:
    if not isinstance(v, dict) or not v:
        raise ValueError("a sweep grid needs `grid:` mapping dotted config paths to lists of values")
    bad = [key for key, values in v.items() if not isinstance(values, list) or not values]
    if bad:
        raise problem(str(bad[0]), "must be a non-empty list of values")
    return v


def _base(v: Any) -> str | None:
    if v is not None and (not isinstance(v, str) or not v):
        raise ValueError(f"must be the path of an NPU config, got {v!r}")
    return v


@section
class SweepGrid(Section):
    grid: checked(_grid, dict)      # {dotted.config.path: [values]}
    base: checked(_base) = None     # NPU config path, relative to the grid file; None: the default config


def load_grid(path: str | Path | None) -> tuple[dict, dict]:
    """(base config dict, {dotted.path: [values]}) from a grid YAML (`base:` config path, `grid:`)."""
    if path is None:
        return read_yaml(DEFAULT_CONFIG, "NPU config"), DEFAULT_GRID
    data = read_yaml(path, "sweep grid")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a sweep grid needs `grid:` mapping dotted config paths to lists of values")
    spec = validate(SweepGrid, data, f"{path}: ")
    base = read_yaml(Path(path).parent / spec.base if spec.base else DEFAULT_CONFIG, "NPU config")
    return base, spec.grid


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
    from ternkit.sim.area import fmax_ghz
    from ternkit.sim.whole_model import simulate_model

    base, settings, model, tokens, prefill, with_area = job
    name = "sweep " + ", ".join(f"{k}={v}" for k, v in settings)
    try:
        cfg = config_from_dict(apply(base, settings), name)
    except ConfigError as exc:   # e.g. inputs not a power of this fan-in: reported, not fatal
        return Point(settings, float("inf"), float("inf"), 0.0, error=str(exc).split(": invalid NPU config: ")[-1])
    if with_area:
        cfg = cfg.with_(clock_ghz=min(cfg.clock_ghz, fmax_ghz(cfg)))
    r = simulate_model(_model(model), cfg, tokens=tokens, prefill=prefill, area=with_area)
    return Point(settings, r.whole_seconds(), r.whole_pj() / 1e6, r.utilisation(),
                 r.area_mm2["total"] if with_area else 0.0, cfg.clock_ghz)


def plot_front(pts: list[Point], front: list[Point], path, title: str) -> None:
    """Energy against latency for every point (colour: area when known), the Pareto front joined."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ternkit.sim.report import write_atomic

    ok = [p for p in pts if not p.error]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    areas = [p.area for p in ok]
    sc = ax.scatter([p.seconds * 1e3 for p in ok], [p.energy_uj / 1e3 for p in ok], s=14,
                    c=areas if any(areas) else "C0", cmap="viridis", alpha=0.8)
    if any(areas):
        fig.colorbar(sc, ax=ax, label="area (mm2)")
    ax.scatter([p.seconds * 1e3 for p in front], [p.energy_uj / 1e3 for p in front], s=60, facecolors="none",
               edgecolors="red", linewidths=1.2, label="Pareto front")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("energy (mJ)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


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


@dataclass
class Sweep:
    keys: list[str]           # the grid's dotted config paths, in grid order
    results: list[Point]      # every point, in grid order
    front: list[Point]        # the Pareto front, fastest first
    with_area: bool

    @property
    def failed(self) -> list[Point]:
        return [p for p in self.results if p.error]

    def table(self) -> list[dict]:
        """One row per point (settings, objectives, on the front or not, error): what --out writes as CSV."""
        return [{**{k: v for k, v in p.settings}, "time_us": p.seconds * 1e6, "energy_uJ": p.energy_uj,
                 "utilisation": p.utilisation, "clock_ghz": p.clock_ghz, "area_mm2": p.area if self.with_area else "",
                 "pareto": p in self.front, "error": p.error} for p in self.results]


def sweep(model: str, grid: str | Path | None = None, *, tokens: int = 1, prefill: int = 0, jobs: int = 2,
          with_area: bool = False, progress: bool = False) -> Sweep:
    """Simulate `model` (built-in name, YAML spec or checkpoint) on every point of `grid` (a grid YAML;
    default DEFAULT_GRID on the default config) in `jobs` worker processes; invalid points are kept with
    their error and left off the front."""
    import multiprocessing

    from tqdm import tqdm

    from ternkit.graph import load_model

    if with_area:
        from ternkit.sim.rtl import need_tools

        need_tools("yosys")                             # before the workers start
    load_model(model, with_params=False)               # a bad model name fails here, once
    base, axes = load_grid(grid)
    work = [(base, s, model, tokens, prefill, with_area) for s in points(axes)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        results = list(tqdm(pool.imap(evaluate, work), total=len(work), desc="sweep", unit="config",
                            disable=not progress))
    return Sweep(list(axes), results, pareto(results, with_area), with_area)
