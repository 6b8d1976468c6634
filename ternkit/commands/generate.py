"""`ternkit generate MODEL --target T -o DIR`: write the model's C kernel library (header, source,
Makefile) for one target."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ternkit.codegen.targets import target_names
    from ternkit.commands._args import counts

    p = sub.add_parser("generate", help="generate a model's C kernels for a target")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default="scalar", help=f"one of: {', '.join(target_names())} (default scalar)")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output folder (must be empty or absent, unless --force)")
    p.add_argument("--force", action="store_true",
                   help="replace an output folder that ternkit wrote before (refused if it holds anything else)")
    p.add_argument("--format", dest="weight_format", default=None, help="force one weight format on every kernel (e.g. i2, tl1, tl2, b3; "
                        "an explicit --decode-format still sets the GEMVs')")
    p.add_argument("--tokens", type=counts, default="1",
                   help="token counts to generate kernels for, e.g. 1,64 (default 1)")
    p.add_argument("--with-runtime", action="store_true",
                   help="also emit model_runtime.c and weights.bin: a C program running the whole model")
    p.add_argument("--decode-format", default=None, metavar="auto|same|FORMAT",
                   help="weight format of the one-token (decode) GEMVs: auto (tuning.yaml's winner, else the "
                        "target's defaults, which also set the GEMMs': tl2 for both on avx2, one packed copy), same "
                        "(the prefill GEMMs' format: one packed copy of each BitLinear in weights.bin), or a format of "
                        "the target (default: auto with --with-runtime, else same)")
    p.add_argument("--tuning", type=Path, default=None,
                   help="tuning.yaml from `ternkit tune` (default: OUTPUT/tuning.yaml when it exists)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.codegen import decode_format, tuning
    from ternkit.codegen.library import HEADER, emit_library, makefile_products
    from ternkit.codegen.targets import get_target
    from ternkit.codegen.plan import lower
    from ternkit.graph import load_model
    from ternkit.outputs import check_folder, write_folder

    check_folder(args.output, args.force)   # before any work: a refusal costs nothing
    target = get_target(args.target)
    choice = decode_format.check(target, args.decode_format or ("auto" if args.with_runtime else "same"))
    model = load_model(args.model, with_params=args.with_runtime)
    plan = lower(model, target, args.tokens, args.weight_format)
    tuning_file = args.tuning or (args.output / tuning.FILENAME)
    tuned, tuned_note = None, ""
    if args.tuning or tuning_file.is_file():
        tuned = tuning.load(tuning_file)
        plan = tuning.apply(plan, target, tuned, choose_format=not args.weight_format)
        tuned_note = f" (tilings from {tuning_file})"
    plan = decode_format.choose(plan, target, choice, tuning=tuned, forced=args.weight_format is not None)
    if args.with_runtime:
        from ternkit.runtime.standalone import PROGRAM, WEIGHTS, all_copies, copies_summary, runtime_files

        model.require_params()
        sources, blob = runtime_files(model, plan, target, HEADER)
        copies = copies_summary(all_copies(model, plan, target))
        files = {**emit_library(plan, target, runtime=PROGRAM), **sources, WEIGHTS: blob}
        built = makefile_products(PROGRAM)
    else:
        files = emit_library(plan, target)
        built = makefile_products()
    if tuning_file.is_file():   # keep the winners next to the code they shaped
        files[tuning.FILENAME] = tuning_file.read_text()
    write_folder(files, args.output, args.force, built=built)
    print(f"wrote {len(plan.kernels)} kernels for {target.name} to {args.output}{tuned_note}: {', '.join(sorted(files))}")
    if args.with_runtime:
        print(f"{WEIGHTS}: {len(blob) / (1 << 20):,.1f} MiB; {copies}")
    return 0
