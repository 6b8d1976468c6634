"""`ternkit speed MODEL`: end-to-end prefill and decode tokens/s, peak memory and the fraction of the
weight-bandwidth roofline, through the Python runtime and the standalone C runtime (any size up to
BitNet b1.58 2B4T, whose random weights are drawn as packed ternary codes)."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    from ternkit.commands._args import counts, positive

    p = sub.add_parser("speed", help="end-to-end tokens/s, memory and roofline fraction (Python and C runtimes)")
    p.add_argument("model", help="built-in name (e.g. bitnet-b1.58-2b4t), YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help="kernel target (default: the best this CPU runs)")
    p.add_argument("--prompt", type=positive, default=64, help="prompt (prefill) tokens (default 64)")
    p.add_argument("--decode", type=positive, default=16, help="tokens to decode after the first (default 16)")
    p.add_argument("--threads", type=counts, default="1", help="thread counts, e.g. 1,2 (default 1)")
    p.add_argument("--runtime", choices=("both", "python", "c"), default="both", help="which runtimes (default both)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random weights")
    p.add_argument("--format", dest="weight_format", default=None, metavar="FORMAT",
                   help="one weight format for every kernel, GEMVs and GEMMs: one packed copy (default: the "
                        "target's, tl2 for both on avx2)")
    p.add_argument("--decode-format", default="auto", metavar="auto|same|FORMAT",
                   help="weight format of the decode GEMVs: auto (the target's defaults, which also set the GEMMs': "
                        "tl2 for both on avx2), same (the prefill GEMMs' format), or a format of the target (the "
                        "GEMVs only: beside GEMMs in another format a second packed copy, ~415-497 MiB for 2B4T; "
                        "default auto)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.codegen.tuning import machine_name
    from ternkit.graph import load_model
    from ternkit.runtime.speed import measure_speed

    def log(msg: str) -> None:
        print(f"[ternkit speed] {msg}", file=sys.stderr, flush=True)

    from ternkit.codegen import decode_format
    from ternkit.codegen.targets import native_target

    target = native_target(args.target, "run")
    decode_format.check(target, args.decode_format)   # before minutes of loading
    if args.weight_format is not None:
        decode_format.check(target, args.weight_format, option="--format")
    threads = list(args.threads)
    log(f"loading {args.model}")
    model = load_model(args.model, seed=args.seed, packed_random=True)
    stored = Path(args.model).suffix in (".npz", ".safetensors", ".gguf")
    weights = "weights from the checkpoint" if stored else (
        "random packed ternary weights, float16 embedding" if any(k.endswith(".weight_i2") for k in model.params)
        else "random float weights")
    report = measure_speed(model, weights, target=args.target, prompt_tokens=args.prompt, decode_tokens=args.decode,
                           threads=threads, python=args.runtime in ("both", "python"),
                           c=args.runtime in ("both", "c"), decode_format=args.decode_format,
                           weight_format=args.weight_format, log=log)
    print(report.text())
    print(f"machine   {machine_name()}")
    return 0
