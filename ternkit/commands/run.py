"""`ternkit run [MODEL] [--target T] [--out DIR]`: the main job (`ternkit.pipeline.run_model`).

lower -> generate -> compile -> validate bit-exact -> prefill/decode throughput against the numpy
reference -> NPU simulation -> one report (printed; JSON + Markdown with --out). Steps go to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ternkit.graph import DEFAULT_MODEL


def register(sub) -> None:
    from ternkit.commands._args import positive

    p = sub.add_parser("run", help="compile, validate, benchmark and simulate a model (default: the built-in tiny model)")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help="kernel target (default: the best available on this CPU)")
    p.add_argument("--out", type=Path, default=None, help="write report.json and report.md to this folder")
    p.add_argument("--npu", default=None, help="NPU config YAML for the simulation step (default config otherwise)")
    p.add_argument("--prompt", type=positive, default=32, help="prompt (prefill) length in tokens")
    p.add_argument("--decode", type=positive, default=16, help="tokens to decode for throughput and the exactness check")
    p.set_defaults(func=run)


def step(msg: str) -> None:
    print(f"[ternkit run] {msg}", file=sys.stderr, flush=True)


def run(args) -> int:
    from ternkit.pipeline import run_model
    from ternkit.runtime.report import RunReport

    if args.out is not None:
        RunReport.check_out(args.out)     # before the work: a refusal costs nothing
    report = run_model(args.model, args.target, prompt=args.prompt, decode=args.decode, npu=args.npu, log=step)
    print(report.text())
    if args.out is not None:
        for path in report.write(args.out):
            step(f"wrote {path}")
    return 0 if report.exact in (True, None) else 1
