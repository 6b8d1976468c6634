"""`ternkit bench MODEL --target T`: time the model's kernel shapes side by side in one process, for
every thread count asked: our kernels per format on T, the faithful ggml TQ2_0 (the reference point),
the I2_S-style `i2s` kernel, our scalar kernel, numpy float32 matmul and the stream-read roofline;
progress on stderr, then one table; `--plot out.png` writes the GEMV chart."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ternkit.codegen.targets import target_names
    from ternkit.commands._args import counts, non_negative, positive, thread_counts

    p = sub.add_parser("bench", help="benchmark a model's kernel shapes against ggml TQ2_0, numpy and the roofline")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help=f"one of: {', '.join(target_names())} (default: best native)")
    p.add_argument("--tokens", type=counts, default="1,64", help="token counts (default 1,64)")
    p.add_argument("--threads", type=thread_counts, default="1,auto",
                   help="thread counts to measure, e.g. 1,2,4 or auto (default 1,auto; capped by usable cores)")
    p.add_argument("--repeat", type=positive, default=15, help="timed runs per measurement (median reported)")
    p.add_argument("--dram-mb", type=non_negative, default=512,
                   help="GEMV working set of distinct weight copies streamed from DRAM (0 = hot cache only)")
    p.add_argument("--no-scalar", action="store_true", help="skip the (slow) scalar kernels")
    p.add_argument("--tuning", type=Path, default=None, help="tuning.yaml from `ternkit tune`")
    p.add_argument("--plot", type=Path, default=None, help="write the GEMV bandwidth chart (PNG) here")
    p.set_defaults(func=run)


def model_shapes(model) -> list[tuple[int, int]]:
    seen = []
    for node in model.bitlinears():
        a = model.attrs(node)
        if (a["out_features"], a["in_features"]) not in seen:
            seen.append((a["out_features"], a["in_features"]))
    return seen


def run(args) -> int:
    from ternkit.codegen import tuning
    from ternkit.codegen.targets import native_target
    from ternkit.graph import load_model
    from ternkit.outputs import check_file
    from ternkit.runtime import bench
    from ternkit.toolchain.cffi_build import check_cache
    from ternkit.runtime.pool import usable_cores

    if args.plot:
        check_file(args.plot, "--plot")     # before the work: a refusal costs nothing
    target = native_target(args.target, "bench")
    check_cache()
    model = load_model(args.model, with_params=False)
    shapes = model_shapes(model)
    rows = bench.measure(shapes, args.tokens, [target], threads=args.threads, dram=args.dram_mb > 0,
                         dram_mb=args.dram_mb, scalar=not args.no_scalar, repeat=args.repeat,
                         tuning=tuning.load(args.tuning) if args.tuning else None)
    print(f"model {model.name}, target {target.name}, machine {tuning.machine_name()}, {usable_cores()} usable "
          f"cores; int8 peak {bench.int8_peak_gops():.0f} GOPS/core (measured), median of {args.repeat} runs")
    print(bench.streams_line())
    print(bench.format_table(rows))
    print(bench.NOTES)
    if args.plot:
        bench.plot_gemv(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0
