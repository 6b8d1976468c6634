"""`ternkit run [MODEL] [--target T] [--out DIR]`: the main job.

lower -> generate -> compile -> validate bit-exact -> prefill/decode throughput against the numpy
reference -> NPU simulation -> one report (printed; JSON + Markdown with --out). Steps go to stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph import DEFAULT_MODEL, load_model
from ternkit.runtime.model import check_exact
from ternkit.runtime.report import RunReport
from ternkit.runtime.throughput import measure


def register(sub) -> None:
    p = sub.add_parser("run", help="compile, validate, benchmark and simulate a model (default: the built-in tiny model)")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="built-in name, YAML spec or checkpoint")
    p.add_argument("--target", "-t", default=None, help="kernel target (default: the best available on this CPU)")
    p.add_argument("--out", type=Path, default=None, help="write report.json and report.md to this folder")
    p.add_argument("--npu", default=None, help="NPU config YAML for the simulation step (default config otherwise)")
    p.add_argument("--prompt", type=int, default=32, help="prompt (prefill) length in tokens")
    p.add_argument("--decode", type=int, default=16, help="tokens to decode for throughput and the exactness check")
    p.set_defaults(func=run)


def step(msg: str) -> None:
    print(f"[ternkit run] {msg}", file=sys.stderr, flush=True)


def run(args) -> int:
    t_start = time.perf_counter()
    if args.out is not None:
        RunReport.check_out(args.out)     # before the work: a refusal costs nothing
    step(f"loading {args.model}")
    model = load_model(args.model)
    cfg = model.config
    if model.params is None:
        raise TernkitError(f"model {cfg.name!r} has shapes only (too big for random weights): give a checkpoint "
                           "(.gguf / .safetensors / .npz) or a smaller model")
    if args.prompt < 1 or args.decode < 1:
        raise TernkitError("--prompt and --decode must be at least 1")
    zeros = total = 0
    for node in model.bitlinears():
        w_q, _ = model.quantized_weight(node)
        zeros += int(np.count_nonzero(w_q == 0))
        total += w_q.size
    report = RunReport(model=cfg.name, layers=cfg.n_layers, hidden=cfg.hidden, parameters=model.parameter_count(),
                       bitlinears=len(model.bitlinears()), weight_zeros=zeros / max(total, 1))
    n_prompt = min(args.prompt, cfg.max_seq - 1)
    prompt = (np.arange(n_prompt) * 7 + 1) % cfg.vocab_size
    n_decode = min(args.decode, cfg.max_seq - n_prompt)

    lowered = _lower(model, args.target, n_prompt, report)
    step("validating: every BitLinear y_int vs numpy, logits, greedy tokens")
    ex = check_exact(lowered, prompt, n_new=min(8, n_decode))
    report.exact, report.bitlinear_calls_checked = ex.ok, ex.bitlinear_calls
    report.mismatches, report.max_logit_diff = ex.mismatched_calls, ex.max_logit_diff
    report.tokens_generated, report.tokens_reference = ex.tokens_generated, ex.tokens_reference
    step(f"benchmarking {lowered.target} kernels: prefill {n_prompt} tokens, decode {n_decode} tokens")
    tp = measure(model, prompt, n_decode, core=lowered.core)
    report.prefill_tps["kernels"], report.decode_tps["kernels"] = tp.prefill_tokens_per_s, tp.decode_tokens_per_s
    step("benchmarking the numpy reference")
    tp = measure(model, prompt, n_decode)
    report.prefill_tps["reference"], report.decode_tps["reference"] = tp.prefill_tokens_per_s, tp.decode_tokens_per_s
    report.prefill_tokens, report.decode_tokens = tp.prefill_tokens, tp.decode_tokens
    _simulate(model, report, n_prompt, n_decode, args.npu)
    report.seconds = time.perf_counter() - t_start
    print(report.text())
    if args.out is not None:
        for path in report.write(args.out):
            step(f"wrote {path}")
    return 0 if report.exact in (True, None) else 1


def _lower(model, target: str | None, n_prompt: int, report: RunReport):
    from ternkit.codegen.targets import best_native_target
    from ternkit.runtime.model import lower_model

    name = target or best_native_target().name
    step(f"lowering + generating + compiling {name} kernels (cached after the first run)")
    lowered = lower_model(model, name, tokens=(1, n_prompt) if n_prompt > 1 else (1,))
    report.target = lowered.target
    report.kernels = lowered.n_specs
    report.compile_seconds = lowered.compile_seconds
    return lowered


def _simulate(model, report: RunReport, n_prompt: int, n_decode: int, config) -> None:
    from ternkit.sim import simulate_model

    step(f"simulating the NPU ({config or 'default config'}): prefill {n_prompt} tokens, decode {n_decode} tokens")
    report.npu = simulate_model(model, config, tokens=n_decode, prefill=n_prompt).summary()
