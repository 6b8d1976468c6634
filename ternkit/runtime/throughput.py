"""Prefill and decode throughput of a whole model, for any integer core (generated kernels or numpy)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ternkit.graph.model import ModelGraph
from ternkit.reference.model import IntegerCore, KVCache, forward, reference_core


@dataclass
class Throughput:
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    prefill_tokens: int
    decode_tokens: int


def measure(model: ModelGraph, prompt: np.ndarray, decode_tokens: int, core: IntegerCore = reference_core,
            repeats: int = 3) -> Throughput:
    """Best of `repeats`: prefill = one forward over the prompt; decode = single-token steps with the
    KV cache after that prefill (the time per step, so the prefill is not counted)."""
    best_prefill = best_decode = float("inf")
    steps = max(1, min(decode_tokens, model.config.max_seq - prompt.size))
    for _ in range(repeats):
        cache = KVCache()
        t0 = time.perf_counter()
        logits = forward(model, prompt, cache=cache, core=core)
        best_prefill = min(best_prefill, time.perf_counter() - t0)
        tok = int(np.argmax(logits[-1]))
        t0 = time.perf_counter()
        for _ in range(steps):
            tok = int(np.argmax(forward(model, np.array([tok]), cache=cache, core=core)[-1]))
        best_decode = min(best_decode, time.perf_counter() - t0)
    return Throughput(prompt.size / best_prefill, steps / best_decode, int(prompt.size), steps)
