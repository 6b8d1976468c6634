"""`ternkit validate MODEL --target T`: build the model's kernels on this machine and check them
bit-exactly against the numpy reference; prints a table."""

from __future__ import annotations


def register(sub) -> None:
    from ternkit.codegen.targets import target_names
    from ternkit.commands._args import counts, positive

    p = sub.add_parser("validate", help="build a model's kernels and check them against the reference")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help=f"one of: {', '.join(target_names())} (default: best native)")
    p.add_argument("--format", dest="weight_format", default=None, help="force one weight format (i2, tl1, tl2)")
    p.add_argument("--tokens", type=counts, default="1,8", help="token counts to check (default 1,8)")
    p.add_argument("--threads", type=positive, default=1, help="split M into this many parts on as many threads (forced)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.codegen.targets import best_native_target, get_target
    from ternkit.runtime.validation import format_table, validate
    from ternkit.graph import load_model
    from ternkit.toolchain.cffi_build import check_cache

    target = get_target(args.target) if args.target else best_native_target()
    check_cache()
    model = load_model(args.model)
    rows = validate(model, target, tokens=args.tokens, weight_format=args.weight_format,
                    threads=args.threads)
    note = f" ({target.emulation()} on this machine)" if target.emulation() else ""
    print(f"model {model.name}, target {target.name}{note}: {len(rows)} kernels")
    print(format_table(rows))
    bad = [r for r in rows if not r.bit_exact]
    print("all bit-exact" if not bad else f"{len(bad)} kernel(s) NOT bit-exact")
    return 1 if bad else 0
