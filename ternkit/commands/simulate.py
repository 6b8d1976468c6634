"""`ternkit simulate MODEL --npu CONFIG`: the model's BitLinears on the multiplier-free NPU, against
INT8 and FP16 MAC arrays of equal peak throughput."""

from __future__ import annotations

from pathlib import Path

from ternkit.commands._args import non_negative


def register(sub) -> None:
    from ternkit.commands._args import fraction, non_negative
    from ternkit.sim.dram import preset_names

    p = sub.add_parser("simulate", help="cycles and energy of a model on the ternary NPU vs MAC arrays")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--npu", default=None, help="NPU config YAML (default: ternkit/sim/configs/default.yaml)")
    p.add_argument("--dram", default=None, choices=preset_names(),
                   help="DRAM energy preset (pJ/bit with its source, ternkit/sim/dram.py); replaces the config's DRAM energy")
    p.add_argument("--tokens", type=non_negative, default=1, help="decode tokens (one-token kernels), default 1")
    p.add_argument("--prefill", type=non_negative, default=0, help="prompt tokens processed in one call, default 0")
    p.add_argument("--density", type=fraction, default=None,
                   help="fraction of non-zero weights to assume (default: the model's own, or 0.69 without weights)")
    p.add_argument("--context", type=non_negative, default=None,
                   help="KV-cache tokens each decode token attends to (default: 1024, or the model's max_seq if smaller)")
    p.add_argument("--kv-bits", type=int, default=None, choices=(16, 8, 4, 3),
                   help="KV-cache precision (default: 3 for a4.8 models, else 16 = BF16)")
    p.add_argument("--lm-head", default="bf16", choices=("bf16", "int8", "ternary"), help="LM head precision (default bf16)")
    p.add_argument("--bitlinear-only", action="store_true", help="model the BitLinear layers only, not the whole step")
    p.add_argument("--area", action="store_true",
                   help="area (mm2), static power and the timing-limited clock from yosys synthesis of the column")
    p.add_argument("--out", type=Path, default=None, help="write the results as .json or .csv")
    p.add_argument("--plot", type=Path, default=None, help="write an energy-breakdown chart (.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.graph import load_model
    from ternkit.sim import load_npu_config, simulate_model
    from ternkit.sim.report import check_out, plot, text, write

    for path, is_plot in ((args.out, False), (args.plot, True)):
        if path:
            check_out(path, is_plot)      # before the work: a refusal costs nothing
    if args.area:
        from ternkit.sim.rtl import need_tools

        need_tools("yosys")
    cfg = load_npu_config(args.npu)
    if args.dram:
        from ternkit.sim.dram import with_dram_preset

        cfg = cfg.with_(tech=with_dram_preset(cfg.tech, args.dram))
    model = load_model(args.model, with_params=args.density is None)
    report = simulate_model(model, cfg, tokens=args.tokens, prefill=args.prefill, density=args.density,
                            whole_step=not args.bitlinear_only, context=args.context, kv_bits=args.kv_bits,
                            lm_head=args.lm_head, area=args.area)
    print(text(report))
    if args.out:
        write(report, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0
