"""`ternkit sweep MODEL [--grid GRID.yaml]`: simulate a grid of NPU configurations in parallel and print
the Pareto front of energy against latency."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ternkit.commands._args import non_negative, positive

    p = sub.add_parser("sweep", help="explore NPU configurations; print the energy/latency Pareto front")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--grid", default=None, help="grid YAML (see examples/npu/sweep.yaml); default: a built-in grid")
    p.add_argument("--tokens", type=non_negative, default=1, help="decode tokens, default 1")
    p.add_argument("--prefill", type=non_negative, default=0, help="prompt tokens, default 0")
    p.add_argument("-j", "--jobs", type=positive, default=2, help="worker processes (default 2)")
    p.add_argument("--area", action="store_true",
                   help="Pareto front over latency, energy and area (mm2 from yosys synthesis; clock capped at its fmax)")
    p.add_argument("--plot", type=Path, default=None, help="write energy vs latency with the Pareto front (.png)")
    p.add_argument("--out", type=Path, default=None, help="write every point as .csv")
    p.set_defaults(func=run)


def run(args) -> int:
    from collections import Counter

    from ternkit.outputs import check_file
    from ternkit.sim.report import as_csv, check_out, write_atomic
    from ternkit.sim.sweep import plot_front, sweep

    if args.out:
        check_file(args.out, "--out")       # before the work: a refusal costs nothing
    if args.plot:
        check_out(args.plot, plot=True)
    result = sweep(args.model, args.grid, tokens=args.tokens, prefill=args.prefill, jobs=args.jobs,
                   with_area=args.area, progress=True)
    failed, front = result.failed, result.front
    keys = result.keys
    widths = [max(len(k), 12) for k in keys]
    axes = "latency, energy and area" if args.area else "latency vs energy"
    excluded = " (excluded from the front; reasons below)" if failed else ""
    print(f"{len(result.results)} configurations, {len(failed)} invalid{excluded}; Pareto front ({axes}), fastest first:")
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)) + "  time us       energy uJ     util"
          + ("  GHz   area mm2" if args.area else ""))
    for p in front:
        vals = dict(p.settings)
        print("  ".join(str(vals[k]).ljust(w) for k, w in zip(keys, widths))
              + f"  {p.seconds * 1e6:<12,.1f}  {p.energy_uj:<12,.2f}  {p.utilisation:<4.0%}"
              + (f"  {p.clock_ghz:<4.2f}  {p.area:.3f}" if args.area else ""))
    for why, n in Counter(p.error for p in failed).most_common():   # one line per reason, not per point
        example = dict(next(p.settings for p in failed if p.error == why))
        print(f"excluded {n} invalid point{'s' if n > 1 else ''}: {why} (e.g. {example})")
    if args.out:
        write_atomic(args.out, as_csv(result.table()))
        print(f"wrote {args.out}")
    if args.plot:
        plot_front(result.results, front, args.plot,
                   f"{args.model}: {args.tokens} decode + {args.prefill} prefill tokens")
        print(f"wrote {args.plot}")
    return 0
