"""`ternkit tune MODEL --target T -o DIR`: search each kernel's tiling on this machine and store the
winners in DIR/tuning.yaml, which `ternkit generate ... -o DIR` (and `ternkit bench`) then use."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ternkit.codegen.targets import target_names
    from ternkit.commands._args import counts, non_negative

    p = sub.add_parser("tune", help="autotune a model's kernel tilings on this machine (writes tuning.yaml)")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help=f"one of: {', '.join(target_names())} (default: best native)")
    p.add_argument("-o", "--output", type=Path, default=Path("."), help="folder for tuning.yaml (default .)")
    p.add_argument("--format", dest="weight_format", default=None,
                   help="tune one weight format (default: every format of the target, keeping the fastest per shape)")
    p.add_argument("--tokens", type=counts, default="1,64", help="token counts to tune for (default 1,64)")
    p.add_argument("--dram-mb", type=non_negative, default=128,
                   help="GEMV: also time weights streamed from a working set of this many MB (0 = hot only)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.codegen import tuning
    from ternkit.codegen.targets import native_target
    from ternkit.graph import load_model
    from ternkit.outputs import check_file
    from ternkit.runtime.tune import tune_model
    from ternkit.textable import table
    from ternkit.toolchain.cffi_build import check_cache

    path = check_file(args.output / tuning.FILENAME, "-o")   # before the work: a refusal costs nothing
    target = native_target(args.target, "tune")
    check_cache()
    model = load_model(args.model, with_params=False)
    result = tune_model(model, target, tokens=args.tokens, weight_format=args.weight_format, dram_mb=args.dram_mb,
                        progress=True)
    tuning.save(path, {target.name: result.tuning})
    rows = []
    for shape in result.shapes:
        best = shape.best
        others = ", ".join(f"{r.spec.weight_format} {r.best_seconds * 1e6:,.1f}" for r in shape.others)
        rows.append((shape.shape_key, best.spec.weight_format, f"{best.default_seconds * 1e6:,.1f}",
                     f"{best.best_seconds * 1e6:,.1f}", f"{best.default_seconds / best.best_seconds:.2f}x",
                     ", ".join(f"{k}={v}" for k, v in best.tiling.items()) or "(defaults)", others or "-"))
    header = ("kernel", "format", "default us", "tuned us", "speedup", "tiling", "other formats (us)")
    print(f"model {model.name}, target {target.name}" + (" (GEMV times: hot + DRAM-streamed)" if args.dram_mb else ""))
    print(table(header, rows))
    print(f"wrote {path}")
    return 0
