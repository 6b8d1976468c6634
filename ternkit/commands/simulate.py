"""`ternkit simulate MODEL --npu CONFIG`: the model's BitLinears on the multiplier-free NPU, against
INT8 and FP16 MAC arrays of equal peak throughput."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("simulate", help="cycles and energy of a model on the ternary NPU vs MAC arrays")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--npu", default=None, help="NPU config YAML (default: ternkit/sim/configs/default.yaml)")
    p.add_argument("--tokens", type=int, default=1, help="decode tokens (one-token kernels), default 1")
    p.add_argument("--prefill", type=int, default=0, help="prompt tokens processed in one call, default 0")
    p.add_argument("--density", type=float, default=None,
                   help="fraction of non-zero weights to assume (default: the model's own, or 0.69 without weights)")
    p.add_argument("--out", type=Path, default=None, help="write the results as .json or .csv")
    p.add_argument("--plot", type=Path, default=None, help="write an energy-breakdown chart (.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.errors import TernkitError
    from ternkit.graph import load_model
    from ternkit.sim import load_npu_config, simulate_model
    from ternkit.sim.report import check_out, plot, text, write

    if args.density is not None and not 0 <= args.density <= 1:
        raise TernkitError(f"--density must be in [0, 1], got {args.density}")
    for path, is_plot in ((args.out, False), (args.plot, True)):
        if path:
            check_out(path, is_plot)      # before the work: a refusal costs nothing
    cfg = load_npu_config(args.npu)
    model = load_model(args.model, with_params=args.density is None)
    report = simulate_model(model, cfg, tokens=args.tokens, prefill=args.prefill, density=args.density)
    print(text(report))
    if args.out:
        write(report, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0
