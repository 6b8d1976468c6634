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
from ternkit.reference.model import reference_core
from ternkit.toolchain.cffi_build import check_cache
from ternkit.runtime.model import check_exact
from ternkit.runtime.report import RunReport
from ternkit.runtime.throughput import compare
from ternkit.sim.config import load_npu_config

REPEATS = 5                   # interleaved throughput runs; the median is reported
SAMPLE_PROMPT = "import os\ndef main("
SAMPLE_TOKENS = 40


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
    t_start = time.perf_counter()
    if args.out is not None:
        RunReport.check_out(args.out)     # before the work: a refusal costs nothing
    npu = load_npu_config(args.npu)       # a bad --npu fails now, not after benchmarking
    check_cache()
    model = load_model(args.model)
    cfg = model.config
    if model.params is None:
        raise TernkitError(f"model {cfg.name!r} is too big for `run` with random weights (it validates against the "
                           "numpy reference token by token): time it with `ternkit speed` (random packed ternary "
                           "weights, Python and C runtimes) or give a checkpoint (.gguf / .safetensors / .npz)")
    if args.prompt + args.decode > cfg.max_seq:
        raise TernkitError(f"--prompt {args.prompt} + --decode {args.decode} tokens exceed the context of model "
                           f"{cfg.name} ({cfg.max_seq} tokens, max_seq); use at most {cfg.max_seq} in total")
    step(f"loaded {args.model}")
    zeros = total = 0
    for node in model.bitlinears():
        w_q, _ = model.quantized_weight(node)
        zeros += int(np.count_nonzero(w_q == 0))
        total += w_q.size
    report = RunReport(model=cfg.name, layers=cfg.n_layers, hidden=cfg.hidden, parameters=model.parameter_count(),
                       bitlinears=len(model.bitlinears()), weight_zeros=zeros / max(total, 1))
    n_prompt, n_decode = args.prompt, args.decode
    prompt = (np.arange(n_prompt) * 7 + 1) % cfg.vocab_size

    lowered = _lower(model, args.target, n_prompt, report)
    step("validating: every BitLinear y_int vs numpy, logits, greedy tokens")
    ex = check_exact(lowered, prompt, n_new=min(8, n_decode))
    report.exact, report.bitlinear_calls_checked = ex.ok, ex.bitlinear_calls
    report.mismatches, report.max_logit_diff = ex.mismatched_calls, ex.max_logit_diff
    report.tokens_generated, report.tokens_reference = ex.tokens_generated, ex.tokens_reference
    step(f"benchmarking {lowered.target} kernels against the numpy reference, interleaved (median of "
         f"{REPEATS}): prefill {n_prompt} tokens, decode {n_decode} tokens")
    for name, tp in compare(model, prompt, n_decode, {"kernels": lowered.core, "reference": reference_core},
                            REPEATS).items():
        report.prefill_tps[name], report.decode_tps[name] = tp.prefill_tokens_per_s, tp.decode_tokens_per_s
        report.prefill_tokens, report.decode_tokens = tp.prefill_tokens, tp.decode_tokens
    if cfg.vocab_size == 256:
        report.sample = _sample_text(args.model, model, lowered)
    _simulate(model, report, n_prompt, n_decode, npu, args.npu)
    report.seconds = time.perf_counter() - t_start
    print(report.text())
    if args.out is not None:
        for path in report.write(args.out):
            step(f"wrote {path}")
    return 0 if report.exact in (True, None) else 1


def _sample_text(source: str, model, lowered) -> str:
    """A few words the model writes through the kernels (byte-level models), greedy."""
    from ternkit.runtime.textmodel import TextModel
    from ternkit.runtime.tokenizer import ByteTokenizer

    step(f"generating text through the kernels: {SAMPLE_PROMPT!r} + {SAMPLE_TOKENS} bytes")
    pieces: list[str] = []
    TextModel(model, ByteTokenizer(), lowered.core, lowered.target).complete(SAMPLE_PROMPT, SAMPLE_TOKENS,
                                                                            on_text=pieces.append)
    trained = Path(source).suffix in (".npz", ".safetensors", ".gguf")
    note = "" if trained else " (random weights: a trained model is examples/tiny-trained.safetensors)"
    return f"{SAMPLE_PROMPT!r} -> {''.join(pieces)!r}{note}"


def _lower(model, target: str | None, n_prompt: int, report: RunReport):
    from ternkit.codegen.targets import best_native_target, get_c_target
    from ternkit.runtime.model import lower_model

    t = get_c_target(target) if target else best_native_target()
    report.emulated = t.emulation() is not None
    step(f"lowering + generating + compiling {t.name} kernels (cached after the first run)"
         + (f"; {t.name} is emulated on this machine" if report.emulated else ""))
    lowered = lower_model(model, t.name, tokens=(1, n_prompt) if n_prompt > 1 else (1,))
    report.target = lowered.target
    report.kernels = lowered.n_specs
    report.compile_seconds = lowered.compile_seconds
    return lowered


def _simulate(model, report: RunReport, n_prompt: int, n_decode: int, config, source: str | None) -> None:
    from ternkit.sim import simulate_model

    step(f"simulating the NPU ({source or 'default config'}): prefill {n_prompt} tokens, decode {n_decode} tokens")
    sim = simulate_model(model, config, tokens=n_decode, prefill=n_prompt)
    report.npu = {"config": sim.config.name, "cycles": sim.total.cycles(), "seconds": sim.seconds(),
                  "energy_uj": sim.total.total_pj() / 1e6, "savings_vs_int8": sim.savings("int8"),
                  "savings_vs_fp16": sim.savings("fp16"), "arithmetic_savings_vs_fp16": sim.savings("fp16", True)}
