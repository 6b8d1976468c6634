"""The main job as a library call: load a model, lower + generate + compile its kernels, validate them
bit-exact against the numpy reference, time prefill/decode against it, simulate the NPU, and return one
`RunReport` (`ternkit run` is this plus argparse and printing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph import DEFAULT_MODEL, load_model
from ternkit.reference.forward import reference_core
from ternkit.runtime.lowered import check_exact
from ternkit.runtime.report import RunReport
from ternkit.runtime.throughput import compare
from ternkit.sim.config import load_npu_config
from ternkit.toolchain.cffi_build import check_cache

REPEATS = 5                   # interleaved throughput runs; the median is reported
SAMPLE_PROMPT = "import os\ndef main("
SAMPLE_TOKENS = 40


def run_model(source: str = DEFAULT_MODEL, target: str | None = None, *, prompt: int = 32, decode: int = 16,
              npu: str | Path | None = None, log: Callable[[str], None] = lambda msg: None) -> RunReport:
    """Every step on `source` (built-in name, YAML spec or checkpoint) with kernels for `target` (default:
    the best native one); `prompt`/`decode` tokens for throughput and the exactness check, `npu` a config
    YAML for the simulation. `log` receives one line per step."""
    t_start = time.perf_counter()
    npu_config = load_npu_config(npu)     # a bad config fails now, not after benchmarking
    check_cache()
    model = load_model(source)
    cfg = model.config
    if model.params is None:
        raise TernkitError(f"model {cfg.name!r} is too big for `run` with random weights (it validates against the "
                           "numpy reference token by token): time it with `ternkit speed` (random packed ternary "
                           "weights, Python and C runtimes) or give a checkpoint (.gguf / .safetensors / .npz)")
    if prompt + decode > cfg.max_seq:
        raise TernkitError(f"--prompt {prompt} + --decode {decode} tokens exceed the context of model "
                           f"{cfg.name} ({cfg.max_seq} tokens, max_seq); use at most {cfg.max_seq} in total")
    log(f"loaded {source}")
    zeros = total = 0
    for node in model.bitlinears():
        w_q, _ = model.quantized_weight(node)
        zeros += int(np.count_nonzero(w_q == 0))
        total += w_q.size
    report = RunReport(model=cfg.name, layers=cfg.n_layers, hidden=cfg.hidden, parameters=model.parameter_count(),
                       bitlinears=len(model.bitlinears()), weight_zeros=zeros / max(total, 1))
    tokens = (np.arange(prompt) * 7 + 1) % cfg.vocab_size

    lowered = _lower(model, target, prompt, report, log)
    log("validating: every BitLinear y_int vs numpy, logits, greedy tokens")
    ex = check_exact(lowered, tokens, n_new=min(8, decode))
    report.exact, report.bitlinear_calls_checked = ex.ok, ex.bitlinear_calls
    report.mismatches, report.max_logit_diff = ex.mismatched_calls, ex.max_logit_diff
    report.tokens_generated, report.tokens_reference = ex.tokens_generated, ex.tokens_reference
    log(f"benchmarking {lowered.target} kernels against the numpy reference, interleaved (median of "
        f"{REPEATS}): prefill {prompt} tokens, decode {decode} tokens")
    for name, tp in compare(model, tokens, decode, {"kernels": lowered.core, "reference": reference_core},
                            REPEATS).items():
        report.prefill_tps[name], report.decode_tps[name] = tp.prefill_tokens_per_s, tp.decode_tokens_per_s
        report.prefill_tokens, report.decode_tokens = tp.prefill_tokens, tp.decode_tokens
    if cfg.vocab_size == 256:
        report.sample = _sample_text(source, model, lowered, log)
    _simulate(model, report, prompt, decode, npu_config, npu, log)
    report.seconds = time.perf_counter() - t_start
    return report


def _sample_text(source: str, model, lowered, log: Callable[[str], None]) -> str:
    """A few words the model writes through the kernels (byte-level models), greedy."""
    from ternkit.runtime.textmodel import TextModel
    from ternkit.runtime.tokenizer import ByteTokenizer

    log(f"generating text through the kernels: {SAMPLE_PROMPT!r} + {SAMPLE_TOKENS} bytes")
    pieces: list[str] = []
    TextModel(model, ByteTokenizer(), lowered.core, lowered.target).complete(SAMPLE_PROMPT, SAMPLE_TOKENS,
                                                                            on_text=pieces.append)
    trained = Path(source).suffix in (".npz", ".safetensors", ".gguf")
    note = "" if trained else " (random weights: a trained model is examples/tiny-trained.safetensors)"
    return f"{SAMPLE_PROMPT!r} -> {''.join(pieces)!r}{note}"


def _lower(model, target: str | None, n_prompt: int, report: RunReport, log: Callable[[str], None]):
    from ternkit.codegen.targets import best_native_target, get_c_target
    from ternkit.runtime.lowered import lower_model

    t = get_c_target(target) if target else best_native_target()
    report.emulated = t.emulation() is not None
    log(f"lowering + generating + compiling {t.name} kernels (cached after the first run)"
        + (f"; {t.name} is emulated on this machine" if report.emulated else ""))
    lowered = lower_model(model, t.name, tokens=(1, n_prompt) if n_prompt > 1 else (1,))
    report.target = lowered.target
    report.kernels = lowered.n_specs
    report.compile_seconds = lowered.compile_seconds
    return lowered


def _simulate(model, report: RunReport, n_prompt: int, n_decode: int, config, source, log) -> None:
    from ternkit.sim import simulate_model

    log(f"simulating the NPU ({source or 'default config'}): prefill {n_prompt} tokens, decode {n_decode} tokens")
    sim = simulate_model(model, config, tokens=n_decode, prefill=n_prompt)
    report.npu = {"config": sim.config.name, "cycles": sim.total.cycles(), "seconds": sim.seconds(),
                  "energy_uj": sim.total.total_pj() / 1e6, "savings_vs_int8": sim.savings("int8"),
                  "savings_vs_fp16": sim.savings("fp16"), "arithmetic_savings_vs_fp16": sim.savings("fp16", True)}
