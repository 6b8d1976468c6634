"""Prefill and decode throughput of a whole model for several integer cores (generated kernels, numpy),
measured side by side in one process: each repeat runs every core once, in turn, so all of them see
the same machine state, and the median over repeats is reported (a shared machine's noise moves single
runs by large factors; the median of interleaved runs does not)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from ternkit.blas import single_threaded_blas
from ternkit.graph.modelgraph import ModelGraph
from ternkit.reference.forward import IntegerCore, KVCache, forward, reference_core


@dataclass
class Throughput:
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    prefill_tokens: int
    decode_tokens: int


def _once(model: ModelGraph, prompt: np.ndarray, steps: int, core: IntegerCore) -> tuple[float, float]:
    """(prefill seconds, decode seconds): one forward over the prompt, then `steps` single-token steps
    with the KV cache (the prefill not counted)."""
    cache = KVCache()
    t0 = time.perf_counter()
    logits = forward(model, prompt, cache=cache, core=core)
    prefill = time.perf_counter() - t0
    tok = int(np.argmax(logits[-1]))
    t0 = time.perf_counter()
    for _ in range(steps):
        tok = int(np.argmax(forward(model, np.array([tok]), cache=cache, core=core)[-1]))
    return prefill, time.perf_counter() - t0


@single_threaded_blas()
def compare(model: ModelGraph, prompt: np.ndarray, decode_tokens: int, cores: dict[str, IntegerCore],
            repeats: int = 5) -> dict[str, Throughput]:
    """Median prefill and decode tokens/s of each core over `repeats` interleaved runs (after a warm-up)."""
    steps = max(1, min(decode_tokens, model.config.max_seq - prompt.size))
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cores}
    for r in range(repeats + 1):
        for name, core in cores.items():
            t = _once(model, prompt, steps, core)
            if r:   # the first round warms caches and lazily built state
                times[name].append(t)
    return {name: Throughput(prompt.size / statistics.median(p for p, _ in ts),
                             steps / statistics.median(d for _, d in ts), int(prompt.size), steps)
            for name, ts in times.items()}


def measure(model: ModelGraph, prompt: np.ndarray, decode_tokens: int, core: IntegerCore = reference_core,
            repeats: int = 5) -> Throughput:
    """Median throughput of one core (see `compare`)."""
    return compare(model, prompt, decode_tokens, {"core": core}, repeats)["core"]
