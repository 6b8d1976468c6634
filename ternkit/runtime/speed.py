"""End-to-end speed of a whole model on this machine, any size up to BitNet b1.58 2B4T: prefill and
decode tokens/s, peak resident memory, and the fraction of the weight-bandwidth roofline, through the
Python runtime (numpy + compiled kernels) and the standalone C runtime (`runtime/model.c.j2` + the same
kernels, split across its thread pool).

A model without stored weights gets random ones; above 50 M parameters they are drawn directly as
packed ternary codes with a float16 embedding (`graph/random_weights.py`), so 2B4T fits in ~1.2 GB.

Both runtimes decode with the GEMVs in the decode format and prefill with the GEMMs in theirs
(`codegen/decode_format.py`; avx2: tl2 for both unless told otherwise), holding two packed copies of a
BitLinear whose two formats differ.

Roofline: decoding a token reads every packed BitLinear weight once (the decode copy) plus the LM head
(the embedding matrix when tied), so `weight bytes per token / single-core stream-read bandwidth`
(measured here with the generated read-only kernel of `runtime/bench.py`, over a buffer far larger than
the caches, read as the number of sequential streams that one core reads fastest: on Zen 3 three read
1.25-1.45x faster than one) is the fastest decode possible on one core; a runtime's decode tokens/s
divided by that is its roofline fraction.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import ModelGraph
from ternkit.textable import table

STREAM_MB = 512
PREFILL_KERNEL_TOKENS = 64


@dataclass
class SpeedRow:
    runtime: str
    threads: int
    prompt_tokens: int
    decode_tokens: int
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    peak_rss_bytes: int
    tokens: list[int] = field(default_factory=list)   # the greedy tokens it generated
    prefill_cpu_s: float = 0.0   # process CPU time (all threads) of the prefill / the decode
    decode_cpu_s: float = 0.0

    @property
    def prefill_per_cpu_s(self) -> float:
        return self.prompt_tokens / self.prefill_cpu_s if self.prefill_cpu_s else 0.0

    @property
    def decode_per_cpu_s(self) -> float:
        return self.decode_tokens / self.decode_cpu_s if self.decode_cpu_s else 0.0


@dataclass
class SpeedReport:
    """Tokens/s by the wall clock, and per CPU-second of the process: on a machine shared with other
    jobs the wall clock also counts the time this process waited for a core, which CPU time does not
    (waiting on memory still counts). The roofline fraction is given both ways, each against the
    stream read measured the same way."""

    model: str
    target: str
    parameters: int
    weights: str                   # how the weights were made / where from
    bitlinear_bytes: int           # packed BitLinear bytes read per decoded token
    head_bytes: int                # LM head bytes read per decoded token
    stream_gbs: float              # single-core stream-read bandwidth (GB/s, best stream count), wall clock
    stream_cpu_gbs: float          # the same per CPU-second
    rows: list[SpeedRow] = field(default_factory=list)
    weights_file: str = ""         # the C runtime's weights file: size and packed copies
    formats: str = ""              # the kernels' weight formats, e.g. "decode tl2, prefill i2"
    stream_count: int = 1          # sequential streams at once of the stream read (the fastest count)

    @property
    def bytes_per_token(self) -> int:
        return self.bitlinear_bytes + self.head_bytes

    @property
    def roofline_tokens_per_s(self) -> float:
        return self.stream_gbs * 1e9 / self.bytes_per_token

    @property
    def roofline_per_cpu_s(self) -> float:
        return self.stream_cpu_gbs * 1e9 / self.bytes_per_token

    def fraction(self, row: SpeedRow) -> float:
        """Decode tokens/s over the fastest decode the stream read allows (wall clock)."""
        return row.decode_tokens_per_s / self.roofline_tokens_per_s

    def cpu_fraction(self, row: SpeedRow) -> float:
        return row.decode_per_cpu_s / self.roofline_per_cpu_s

    def text(self) -> str:
        mib = 1 << 20
        lines = [
            f"model     {self.model}: {self.parameters:,} params ({self.weights}), target {self.target}"
            + (f" ({self.formats})" if self.formats else ""),
            f"roofline  {self.bitlinear_bytes / mib:,.1f} MiB BitLinear + {self.head_bytes / mib:,.1f} MiB LM head = "
            f"{self.bytes_per_token / mib:,.1f} MiB read per decoded token; stream read (1 core, {self.stream_count} streams) {self.stream_gbs:.1f} "
            f"GB/s wall, {self.stream_cpu_gbs:.1f} GB/s per CPU-s -> at most {self.roofline_tokens_per_s:,.2f} tok/s "
            f"({self.roofline_per_cpu_s:,.2f} per CPU-s)",
        ]
        if self.weights_file:
            lines.append(f"weights   {self.weights_file}")
        header = ("runtime", "threads", "prefill tok/s", "decode tok/s", "per CPU-s (prefill, decode)", "peak RSS",
                  "% of roofline (wall, CPU)", "greedy tokens vs 1st row")
        body = [(r.runtime, str(r.threads), f"{r.prefill_tokens_per_s:,.2f} ({r.prompt_tokens})",
                 f"{r.decode_tokens_per_s:,.2f} ({r.decode_tokens})",
                 f"{r.prefill_per_cpu_s:,.2f}, {r.decode_per_cpu_s:,.2f}", f"{r.peak_rss_bytes / mib:,.0f} MiB",
                 f"{100 * self.fraction(r):.0f} %, {100 * self.cpu_fraction(r):.0f} %",
                 "(compared with)" if i == 0 else f"{sum(a == b for a, b in zip(r.tokens, self.rows[0].tokens))}/"
                 f"{len(self.rows[0].tokens)} same")
                for i, r in enumerate(self.rows)]
        return "\n".join([*lines, table(header, body)])


def runtime_plan(model: ModelGraph, target, decode_format: str, weight_format: str | None = None):
    """The plan both runtimes run: GEMVs in the decode format, GEMMs for the prefill (every kernel in
    `weight_format` when given)."""
    from ternkit.codegen import decode_format as decode
    from ternkit.codegen.plan import lower

    plan = lower(model, target, (1, PREFILL_KERNEL_TOKENS), weight_format)
    return decode.choose(plan, target, decode_format, forced=weight_format is not None)


def plan_formats(plan) -> str:
    """The plan's weight formats by kernel kind, e.g. "decode tl2, prefill i2"."""
    from ternkit.runtime.standalone import weight_formats

    prefill = weight_formats(s for s in plan.kernels if s.N > 1)
    return f"decode {weight_formats(s for s in plan.kernels if s.N == 1)}" + (f", prefill {prefill}" if prefill else "")


def weight_traffic(model: ModelGraph, plan, target) -> tuple[int, int]:
    """(packed BitLinear bytes of the decode kernels, LM head bytes) read per decoded token."""
    bitlinear = sum(target.packed_bytes(plan.kernel_for(node, 1)) for node in model.bitlinears())
    p = model.require_params()
    head = p["embed.weight"] if model.config.tie_embeddings else p["lm_head.weight"]
    return bitlinear, int(head.nbytes)


def stream_bandwidth(mb: int = STREAM_MB, repeat: int = 5) -> tuple[float, float]:
    """Single-core read bandwidth from DRAM over `mb` MiB, read as the fastest number of sequential
    streams (`bench.best_streams`): (GB/s by the wall clock, GB/s per CPU-second), medians of `repeat`
    passes after a warm-up."""
    import statistics
    import time

    from ternkit.runtime.bench import Stream

    buf = np.ones(mb << 20, dtype=np.uint8)
    read = Stream([buf]).runner(1)
    read()
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        read()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return buf.nbytes / statistics.median(wall) / 1e9, buf.nbytes / statistics.median(cpu) / 1e9


def _peak_rss_self() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def python_runtime(model: ModelGraph, lowered, prompt: np.ndarray, decode: int) -> SpeedRow:
    from ternkit.runtime.generation import generate

    gen = generate(model, prompt, decode + 1, core=lowered.core)
    return SpeedRow(f"python + {lowered.target} kernels", lowered.threads, int(prompt.size), gen.decode_steps,
                    gen.prefill_tokens_per_s, gen.decode_tokens_per_s, _peak_rss_self(), gen.tokens,
                    gen.prefill_cpu_seconds, gen.decode_cpu_seconds)


def build_c_runtime(model: ModelGraph, target, folder: Path, decode_format: str = "auto",
                    weight_format: str | None = None, plan=None) -> str:
    """Generate the kernel library + C runtime + weights file for `model` in `folder` and compile it;
    a line saying the weights file's size and packed copies. `plan`: the `runtime_plan` of these
    arguments when the caller has it already."""
    from ternkit.codegen.library import HEADER, LIB, emit_library
    from ternkit.runtime.standalone import (PROGRAM, SOURCE, WEIGHTS, all_copies, build_program, copies_summary,
                                            runtime_source, write_weights)
    from ternkit.toolchain import native_toolchain

    plan = plan or runtime_plan(model, target, decode_format, weight_format)
    for name, text in emit_library(plan, target, runtime=PROGRAM).items():
        (folder / name).write_text(text)
    total = write_weights(model, plan, target, folder / WEIGHTS)
    (folder / SOURCE).write_text(runtime_source(model, plan, target, HEADER, total))
    build_program(folder, [f"{LIB}.c"], native_toolchain(tuple(target.cflags())))
    return f"{WEIGHTS} {total / (1 << 20):,.1f} MiB; {copies_summary(all_copies(model, plan, target))}"


def c_runtime(folder: Path, prompt: np.ndarray, decode: int, threads: int, target: str) -> SpeedRow:
    from ternkit.runtime.standalone import PROGRAM, WEIGHTS

    cmd = [str(folder / PROGRAM), str(folder / WEIGHTS), "--threads", str(threads), "--generate", str(decode + 1),
           *map(str, prompt.tolist())]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise TernkitError(f"the C runtime failed: {done.stderr.strip()[-500:]}")
    stats = done.stderr.split()
    got = {k: float(v) for k, v in zip(stats[::2], stats[1::2])}
    return SpeedRow(f"C runtime + {target} kernels", threads, int(got["prefill_tokens"]), int(got["decode_tokens"]),
                    got["prefill_tokens"] / got["prefill_s"], got["decode_tokens"] / got["decode_s"],
                    int(got["peak_rss_kib"]) * 1024, [int(t) for t in done.stdout.split()], got["prefill_cpu_s"],
                    got["decode_cpu_s"])


def measure_speed(model: ModelGraph, weights: str, *, target: str | None = None, prompt_tokens: int = 64,
                  decode_tokens: int = 16, threads: tuple[int, ...] = (1,), python: bool = True, c: bool = True,
                  decode_format: str = "auto", weight_format: str | None = None,
                  log: Callable[[str], None] = lambda s: None) -> SpeedReport:
    """Measure `model` end to end (see the module doc). `weights` says where its weights came from;
    `decode_format` the GEMVs' format (`codegen/decode_format.py`)."""
    from ternkit.codegen.targets import native_target
    from ternkit.runtime.bench import best_streams
    from ternkit.runtime.lowered import lower_model

    cfg = model.config
    if prompt_tokens < 1 or decode_tokens < 1:
        raise TernkitError("--prompt and --decode must be at least 1")
    if prompt_tokens + decode_tokens + 1 > cfg.max_seq:
        raise TernkitError(f"--prompt + --decode + 1 must fit the model's {cfg.max_seq} positions")
    t = native_target(target, "run")
    prompt = (np.arange(prompt_tokens) * 7 + 1) % cfg.vocab_size
    plan = runtime_plan(model, t, decode_format, weight_format)
    bitlinear, head = weight_traffic(model, plan, t)
    rows = []
    if python:
        log(f"compiling {t.name} kernels and packing the weights into them")
        lowered = lower_model(model, t.name, tokens=(1, PREFILL_KERNEL_TOKENS), weight_format=weight_format,
                              decode_format=decode_format)
        for n in threads:
            log(f"python runtime, {n} thread(s): prefill {prompt_tokens} tokens, decode {decode_tokens}")
            lowered.threads = n
            rows.append(python_runtime(model, lowered, prompt, decode_tokens))
        del lowered
    log(f"measuring the single-core stream-read bandwidth ({STREAM_MB} MiB)")   # after: its buffer is no RSS of theirs
    report = SpeedReport(cfg.name, t.name, model.parameter_count(), weights, bitlinear, head, *stream_bandwidth(), rows,
                         formats=plan_formats(plan), stream_count=best_streams())
    if c:
        folder = Path(tempfile.mkdtemp(prefix="ternkit-speed-"))
        try:
            log(f"generating and compiling the C runtime in {folder}")
            report.weights_file = build_c_runtime(model, t, folder, plan=plan)
            log(report.weights_file)
            for n in threads:
                log(f"C runtime, {n} thread(s): prefill {prompt_tokens} tokens, decode {decode_tokens}")
                report.rows.append(c_runtime(folder, prompt, decode_tokens, n, t.name))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return report
