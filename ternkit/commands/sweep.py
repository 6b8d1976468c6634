"""`ternkit sweep MODEL [--grid GRID.yaml]`: simulate a grid of NPU configurations in parallel and print
the Pareto front of energy against latency."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("sweep", help="explore NPU configurations; print the energy/latency Pareto front")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--grid", default=None, help="grid YAML (see examples/npu/sweep.yaml); default: a built-in grid")
    p.add_argument("--tokens", type=int, default=1, help="decode tokens, default 1")
    p.add_argument("--prefill", type=int, default=0, help="prompt tokens, default 0")
    p.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--area", action="store_true", help="Pareto front over latency, energy and the area proxy")
    p.add_argument("--out", type=Path, default=None, help="write every point as .csv")
    p.set_defaults(func=run)


def run(args) -> int:
    import multiprocessing

    from tqdm import tqdm

    from ternkit.errors import TernkitError
    from ternkit.graph import load_model
    from ternkit.outputs import check_file
    from ternkit.sim.report import as_csv, write_atomic
    from ternkit.sim.sweep import evaluate, load_grid, pareto, points

    if args.jobs < 1:
        raise TernkitError(f"--jobs must be at least 1, got {args.jobs}")
    if args.out:
        check_file(args.out, "--out")       # before the work: a refusal costs nothing
    load_model(args.model, with_params=False)          # a bad model name fails here, once
    base, grid = load_grid(args.grid)
    jobs = [(base, s, args.model, args.tokens, args.prefill) for s in points(grid)]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        results = list(tqdm(pool.imap(evaluate, jobs), total=len(jobs), desc="sweep", unit="config"))
    failed = [p for p in results if p.error]
    front = pareto(results, args.area)
    keys = list(grid)
    widths = [max(len(k), 12) for k in keys]
    axes = "latency, energy and area" if args.area else "latency vs energy"
    print(f"{len(results)} configurations, {len(failed)} invalid; Pareto front ({axes}), fastest first:")
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)) + "  time us       energy uJ     util  area")
    for p in front:
        vals = dict(p.settings)
        print("  ".join(str(vals[k]).ljust(w) for k, w in zip(keys, widths))
              + f"  {p.seconds * 1e6:<12,.1f}  {p.energy_uj:<12,.2f}  {p.utilisation:<4.0%}  {p.area:,.0f}")
    for p in failed[:3]:
        print(f"skipped {dict(p.settings)}: {p.error}")
    if args.out:
        table = [{**{k: v for k, v in p.settings}, "time_us": p.seconds * 1e6, "energy_uJ": p.energy_uj,
                  "utilisation": p.utilisation, "area": p.area, "pareto": p in front, "error": p.error} for p in results]
        write_atomic(args.out, as_csv(table))
        print(f"wrote {args.out}")
    return 0
