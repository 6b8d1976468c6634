"""Autotuning: search a target's tiling axes (`Target.tune_space`) for one kernel spec by measuring
each candidate on this machine (bit-exact checked first). Axes are searched one after the other,
each starting from the winners of the previous ones, so a shape takes a few compiles and seconds.
`tune_model` tunes every kernel shape of a model, in each of the target's formats, keeping the fastest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ternkit.blas import single_threaded_blas
from ternkit.codegen.ctarget import CTarget
from ternkit.codegen.plan import KernelSpec, Plan, lower
from ternkit.codegen.target import Target
from ternkit.errors import TernkitError
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.bench import median_time
from ternkit.runtime.kernels import compile_plan


@dataclass
class TuneResult:
    spec: KernelSpec          # specialised with the winning tiling
    tiling: dict              # the tuned keys only (what tuning.yaml stores)
    default_seconds: float
    best_seconds: float
    tried: int


def _timer(target: Target, spec: KernelSpec, dram_mb: int) -> Callable[[dict], float]:
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, (spec.M, spec.K)).astype(np.int8)
    x = rng.integers(-128, 128, (spec.N, spec.K)).astype(np.int8)
    ref = ternary_matmul(x, w)
    y = np.empty_like(ref)

    def measure(tiles: dict) -> float:
        s = target.specialise(dataclasses.replace(spec, tiling=tuple(sorted(tiles.items()))))
        kern = compile_plan(Plan(target.name, "tune", [s]), target).kernel(s, w)
        if not np.array_equal(kern(x), ref):
            raise TernkitError(f"{s.name} with tiling {tiles} is not bit-exact: refusing to tune with it")
        sec = median_time(lambda: kern(x, threads=1, out=y), 5, min_seconds=0.15)   # tilings are per core
        if spec.N == 1 and dram_mb:   # decode: weights also streamed from DRAM, as in real decoding
            ks = [kern.with_packed(kern.packed.copy()) for _ in range(max(2, (dram_mb << 20) // kern.packed.nbytes))]
            sec += median_time(lambda: [k(x, threads=1, out=y) for k in ks], 3) / len(ks)
        return sec
    return measure


@single_threaded_blas()
def tune_spec(target: Target, spec: KernelSpec, *, dram_mb: int = 128,
              log: Callable[[str], None] = lambda s: None) -> TuneResult:
    spec = target.specialise(spec)
    base = dataclasses.replace(spec, tiling=())
    axes = target.tune_space(spec)
    measure = _timer(target, base, dram_mb)
    chosen: dict = {}
    default = measure({})
    best, tried = default, 1
    for axis in axes:
        scores = []
        for cand in axis:
            tiles = {**chosen, **cand}
            try:
                sec = measure(tiles)
            except TernkitError as exc:
                if "not bit-exact" in str(exc):
                    raise
                log(f"  {spec.name} {cand}: skipped ({exc})")
                continue
            tried += 1
            scores.append((sec, cand))
            log(f"  {spec.name} {tiles}: {sec * 1e6:,.1f} us")
        if scores:
            sec, cand = min(scores, key=lambda sc: sc[0])
            chosen.update(cand)
            best = sec
    if best > default:   # noise: keep the defaults unless the search beat them
        chosen, best = {}, default
    final = target.specialise(dataclasses.replace(base, tiling=tuple(sorted(chosen.items()))))
    return TuneResult(spec=final, tiling=chosen, default_seconds=default, best_seconds=best, tried=tried)


@dataclass
class ShapeTuning:
    shape_key: str
    best: TuneResult               # the fastest format's result
    others: list[TuneResult]      # the other formats tried, in the target's order


@dataclass
class ModelTuning:
    target: str
    shapes: list[ShapeTuning]
    tuning: dict                  # what tuning.yaml stores for this target: {kernel name: tiling, formats: ...}


def tune_model(model, target: CTarget, *, tokens=(1, 64), weight_format: str | None = None, dram_mb: int = 128,
               progress: bool = False) -> ModelTuning:
    """Tune every distinct kernel shape of `model` (a ModelGraph) for `tokens` on `target`: its tiling in
    `weight_format`, or in every format of the target keeping the fastest per shape (recorded under
    `formats`). `progress` draws a bar on stderr (its log lines print above it)."""
    import sys

    from tqdm import tqdm

    fmts = [weight_format] if weight_format else list(target.formats)
    found: dict = {}
    chosen: dict = {}
    shapes: list[ShapeTuning] = []
    specs = list({s.shape_key: s for s in lower(model, target, tokens, weight_format).kernels}.values())
    bar = tqdm(total=len(specs) * len(fmts), desc="tune", unit="kernel", file=sys.stderr, dynamic_ncols=True,
               disable=not progress)
    for spec in specs:
        results = []
        for fmt in fmts:   # the same shape in each format: tune its tiling, keep the fastest format
            s = target.specialise(dataclasses.replace(spec, weight_format=fmt, tiling=()))
            bar.set_postfix_str(s.name)
            r = tune_spec(target, s, dram_mb=dram_mb, log=bar.write if progress else lambda line: None)
            bar.update()
            found[s.name] = r.tiling
            results.append(r)
        best = min(results, key=lambda r: r.best_seconds)
        chosen[spec.shape_key] = best.spec.weight_format
        shapes.append(ShapeTuning(spec.shape_key, best, [r for r in results if r is not best]))
    bar.close()
    if len(fmts) > 1:
        found["formats"] = chosen
    return ModelTuning(target.name, shapes, found)
