"""Execute a model graph end to end in numpy: `forward(model, tokens)` -> logits.

Every BitLinear runs through an integer core `matmul(node, x_q, w_q) -> y_int`; the default is the
exact numpy `ternary_matmul`, and the runtime passes generated C kernels instead, so both paths share
every other step and agree exactly on the integer results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from ternkit.errors import ShapeError
from ternkit.reference.layers import apply_rope, causal_attention, gated_activation, rope_tables
from ternkit.reference.quant import bitlinear_q, rmsnorm, ternary_matmul

if TYPE_CHECKING:  # graph imports the quantizers, so only type-check this import
    from ternkit.graph.modelgraph import ModelGraph

IntegerCore = Callable[[str, np.ndarray, np.ndarray], np.ndarray]
HEAD_ROWS = 2048   # float16 LM-head rows widened to float32 at a time


def reference_core(node: str, x_q: np.ndarray, w_q: np.ndarray) -> np.ndarray:
    return ternary_matmul(x_q, w_q)


@dataclass(frozen=True)
class OwnWeightsCore:
    """An integer core that holds its own (packed) weights, e.g. compiled kernels: `forward` hands it
    no `w_q`, so weights stored packed are never unpacked for it. `widen` (optional) is an exact,
    faster float16 -> float32 conversion for a float16 LM head (same values as numpy's `astype`)."""

    run: Callable[[str, np.ndarray], np.ndarray]
    widen: Callable[[np.ndarray], np.ndarray] | None = None

    def __call__(self, node: str, x_q: np.ndarray, w_q: np.ndarray | None = None) -> np.ndarray:
        return self.run(node, x_q)


def lm_head(x: np.ndarray, w: np.ndarray, widen: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """`x @ w.T` in float32; a float16 head is widened (exactly, by `widen` when given) a block of rows
    at a time (no full float32 copy). Every logit is the same float32 dot product either way."""
    if w.dtype == np.float32:
        return x @ w.T
    widen = widen or (lambda block: block.astype(np.float32))
    out = np.empty((x.shape[0], w.shape[0]), dtype=np.float32)
    for i in range(0, w.shape[0], HEAD_ROWS):
        out[:, i:i + HEAD_ROWS] = x @ widen(w[i:i + HEAD_ROWS]).T
    return out


@dataclass
class KVCache:
    """Per-layer keys (after RoPE) and values, [S, KVH, D] each, for incremental decoding."""

    keys: dict[int, np.ndarray] = field(default_factory=dict)
    values: dict[int, np.ndarray] = field(default_factory=dict)
    length: int = 0


def forward(model: ModelGraph, tokens, *, cache: KVCache | None = None, core: IntegerCore = reference_core,
            trace: dict | None = None) -> np.ndarray:
    """Logits [T, vocab] for a 1-D token sequence. With `cache`, tokens continue the cached sequence
    (positions start at `cache.length`) and the cache is extended. With `trace` (a dict), every node's
    output is recorded in it."""
    params = model.require_params()
    cfg = model.config
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.size == 0 or not np.issubdtype(tokens.dtype, np.integer):
        raise ShapeError(f"tokens must be a non-empty 1-D integer array, got shape {tokens.shape} ({tokens.dtype})")
    if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
        raise ShapeError(f"token ids must be in [0, {cfg.vocab_size}), got range [{tokens.min()}, {tokens.max()}]")
    start = cache.length if cache is not None else 0
    if start + tokens.size > cfg.max_seq:
        raise ShapeError(f"sequence of {start + tokens.size} tokens exceeds max_seq {cfg.max_seq}")
    positions = np.arange(start, start + tokens.size)
    values: dict[str, np.ndarray] = {}
    for node in model.nodes():
        a = model.attrs(node)
        ins = [values[i] for i in a["inputs"]]
        op = a["op"]
        if op == "embedding":
            out = params["embed.weight"][tokens].astype(np.float32)
        elif op == "rmsnorm":
            out = rmsnorm(ins[0], params[f"{node}.weight"], a["eps"])
        elif op == "bitlinear":
            w_q = None if isinstance(core, OwnWeightsCore) else model.quantized_weight(node)[0]
            out = bitlinear_q(ins[0], w_q, model.weight_scale(node), activation_bits=a["activation_bits"],
                              outlier_k=a["outlier_k"], matmul=lambda x_q, w, _n=node: core(_n, x_q, w))
        elif op == "attention":
            out = _attention(ins, a, positions, cache)
        elif op == "ffn_act":
            out = gated_activation(ins[0], ins[1], a["activation"])
        elif op == "add":
            out = ins[0] + ins[1]
        elif op == "linear":
            w = params["embed.weight"] if a["tied"] else params["lm_head.weight"]
            out = lm_head(ins[0], w, core.widen if isinstance(core, OwnWeightsCore) else None)
        else:
            raise ShapeError(f"node {node!r}: unknown op {op!r}")
        values[node] = out
    if cache is not None:
        cache.length = start + tokens.size
    if trace is not None:
        trace.update(values)
    return values["lm_head"]


def _attention(ins, a, positions, cache: KVCache | None) -> np.ndarray:
    q, k, v = ins
    t, h, kvh, d = q.shape[0], a["heads"], a["kv_heads"], a["head_dim"]
    cos, sin = rope_tables(positions, d, a["rope_theta"])
    q = apply_rope(q.reshape(t, h, d), cos, sin)
    k = apply_rope(k.reshape(t, kvh, d), cos, sin)
    v = v.reshape(t, kvh, d)
    k_pos = positions
    if cache is not None:
        layer = a["layer"]
        if layer in cache.keys:
            k = np.concatenate([cache.keys[layer], k])
            v = np.concatenate([cache.values[layer], v])
        cache.keys[layer], cache.values[layer] = k, v
        k_pos = np.arange(k.shape[0])
    return causal_attention(q, k, v, positions, k_pos)


def greedy_generate(model: ModelGraph, prompt, n_new: int, core: IntegerCore = reference_core) -> list[int]:
    """Greedy decoding with a KV cache: prefill the prompt, then one token at a time."""
    cache = KVCache()
    logits = forward(model, np.asarray(prompt), cache=cache, core=core)
    out = []
    for _ in range(n_new):
        nxt = int(np.argmax(logits[-1]))
        out.append(nxt)
        if cache.length >= model.config.max_seq:
            break
        logits = forward(model, np.array([nxt]), cache=cache, core=core)
    return out
