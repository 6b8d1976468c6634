"""Token generation with any integer core (the compiled kernels or numpy): prefill the prompt, then
one token at a time with the KV cache, greedy or sampled (temperature, top-p, seed), timing prefill
and decode separately.

Greedy decoding takes `argmax` of the same logits `reference.greedy_generate` sees, so with exact
kernels the tokens equal the reference's. Sampling draws from `numpy.random.default_rng(seed)`, one
uniform number per token, so a seed reproduces a generation exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from ternkit.blas import single_threaded_blas
from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import ModelGraph
from ternkit.reference.forward import IntegerCore, KVCache, forward, reference_core


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0   # 0: greedy (argmax)
    top_p: float = 1.0         # nucleus: smallest set of most likely tokens whose probability reaches top_p
    seed: int | None = None

    def __post_init__(self):
        if not (self.temperature >= 0 and np.isfinite(self.temperature)):
            raise TernkitError(f"--temperature must be a number >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise TernkitError(f"--top-p must be in (0, 1], got {self.top_p}")


class Sampler:
    """Picks the next token from a row of logits."""

    def __init__(self, sampling: Sampling):
        self.s = sampling
        self.rng = np.random.default_rng(sampling.seed)

    def __call__(self, logits: np.ndarray) -> int:
        if self.s.temperature == 0:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / self.s.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, self.s.top_p * cum[-1])) + 1]
        pk = p[keep] / p[keep].sum()
        pick = int(np.searchsorted(np.cumsum(pk), self.rng.random() * pk.sum(), side="right"))
        return int(keep[min(pick, keep.size - 1)])


@dataclass
class Generation:
    prompt_tokens: int
    tokens: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0   # the forward passes after the prefill (one per token but the first)
    prefill_cpu_seconds: float = 0.0   # CPU time of the process in the same spans (a busy machine
    decode_cpu_seconds: float = 0.0    # stretches the wall time, not this)
    stopped: str = "length"       # length | eos | context

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_seconds if self.prefill_seconds else 0.0

    @property
    def decode_steps(self) -> int:
        return max(0, len(self.tokens) - 1)

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds else 0.0


@single_threaded_blas()
def generate(model: ModelGraph, prompt: Iterable[int], max_new: int, *, core: IntegerCore = reference_core,
             sampling: Sampling = Sampling(), stop: Iterable[int] = (),
             on_token: Callable[[int], None] | None = None) -> Generation:
    """Generate up to `max_new` tokens after `prompt`, calling `on_token` as each one is chosen.
    Stops early at a token in `stop` (not included) or at the model's context length."""
    prompt = np.asarray(list(prompt), dtype=np.int64)
    cfg = model.config
    if prompt.size == 0:
        raise TernkitError("the prompt is empty: give at least one token of text")
    if prompt.size >= cfg.max_seq:
        raise TernkitError(f"the prompt is {prompt.size} tokens; model {cfg.name!r} holds {cfg.max_seq} "
                           "(its max_seq): shorten the prompt")
    if max_new < 1:
        raise TernkitError(f"the number of tokens to generate must be at least 1, got {max_new}")
    stop = frozenset(int(s) for s in stop)
    sample = Sampler(sampling)
    out = Generation(int(prompt.size))
    cache = KVCache()
    t0, c0 = time.perf_counter(), time.process_time()
    logits = forward(model, prompt, cache=cache, core=core)
    out.prefill_seconds, out.prefill_cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    while True:
        token = sample(logits[-1])
        if token in stop:
            out.stopped = "eos"
            break
        out.tokens.append(token)
        if on_token is not None:
            on_token(token)
        if len(out.tokens) == max_new:
            break
        if cache.length >= cfg.max_seq:
            out.stopped = "context"
            break
        t0, c0 = time.perf_counter(), time.process_time()
        logits = forward(model, np.array([token]), cache=cache, core=core)
        out.decode_seconds += time.perf_counter() - t0
        out.decode_cpu_seconds += time.process_time() - c0
    return out
