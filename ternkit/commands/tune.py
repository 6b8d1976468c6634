"""`ternkit tune MODEL --target T -o DIR`: search each kernel's tiling on this machine and store the
winners in DIR/tuning.yaml, which `ternkit generate ... -o DIR` (and `ternkit bench`) then use."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ternkit.codegen.targets import target_names

    p = sub.add_parser("tune", help="autotune a model's kernel tilings on this machine (writes tuning.yaml)")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help=f"one of: {', '.join(target_names())} (default: best native)")
    p.add_argument("-o", "--output", type=Path, default=Path("."), help="folder for tuning.yaml (default .)")
    p.add_argument("--format", dest="weight_format", default=None, help="force one weight format")
    p.add_argument("--tokens", default="1,64", help="token counts to tune for (default 1,64)")
    p.add_argument("--dram-mb", type=int, default=128,
                   help="GEMV: also time weights streamed from a working set of this many MB (0 = hot only)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.codegen import tuning
    from ternkit.codegen.targets import best_native_target, get_target
    from ternkit.codegen.validate import lower_for
    from ternkit.commands.generate import parse_tokens
    from ternkit.errors import ToolchainError
    from ternkit.graph import load_model
    from ternkit.runtime.tune import tune_spec

    target = get_target(args.target) if args.target else best_native_target()
    reason = target.unavailable_reason()
    if reason or not target.runs_natively():
        raise ToolchainError(f"cannot tune {target.name} on this machine: {reason or 'it does not run natively'}")
    model = load_model(args.model, with_params=False)
    plan = lower_for(model, target, parse_tokens(args.tokens), args.weight_format)
    found, rows = {}, []
    for spec in dict.fromkeys(plan.kernels):
        if spec.name in found:
            continue
        if not target.tune_space(spec):
            rows.append((spec.name, "-", "-", "-", "(nothing to tune)"))
            continue
        r = tune_spec(target, spec, dram_mb=args.dram_mb, log=print)
        found[spec.name] = r.tiling
        rows.append((spec.name, f"{r.default_seconds * 1e6:,.1f}", f"{r.best_seconds * 1e6:,.1f}",
                     f"{r.default_seconds / r.best_seconds:.2f}x", ", ".join(f"{k}={v}" for k, v in r.tiling.items())
                     or "(defaults)"))
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / tuning.FILENAME
    tuning.save(path, {target.name: found})
    header = ("kernel", "default us", "tuned us", "speedup", "tiling")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"model {model.name}, target {target.name}" + (" (GEMV times: hot + DRAM-streamed)" if args.dram_mb else ""))
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"wrote {path}")
    return 0
