"""The training forward and backward of a whole model, walking the same graph as `reference.forward`.

Precision modes:
- `ternary` / `binary`: every BitLinear quantizes its weights (b1.58 absmean / v1 centred sign) and its
  activations (the model's int8, or a4.8) in the forward; the backward is the straight-through estimator.
- `fp32`: no quantization anywhere (full-precision baselines and teachers). The model config keeps a
  nominal `weights` mode; the precision travels in the checkpoint meta (see `checkpointing.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ternkit.errors import ShapeError, TernkitError
from ternkit.graph.modelgraph import ModelGraph
from ternkit.train import ops

PRECISIONS = ("ternary", "binary", "fp32")


@dataclass
class Tape:
    """What the backward needs: per-node caches in execution order, and the input tokens."""

    caches: dict[str, object]
    tokens: np.ndarray
    outputs: dict[str, np.ndarray] | None = None


class TrainModel:
    """Forward/backward over [B, T] token batches for a graph's shapes; params are passed explicitly."""

    def __init__(self, graph: ModelGraph, precision: str = "ternary") -> None:
        if precision not in PRECISIONS:
            raise TernkitError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        if precision != "fp32" and graph.config.weights != precision:
            raise TernkitError(f"precision {precision!r} does not match the model's weights "
                               f"{graph.config.weights!r}: set the model's `weights` to {precision!r}")
        self.graph = graph
        self.precision = precision
        self.order = graph.nodes()

    def _mode(self, attrs: dict) -> ops.LinearMode:
        if self.precision == "fp32":
            return ops.LinearMode(weights=None)
        return ops.LinearMode(attrs["weights"], attrs["activation_bits"], attrs["outlier_k"])

    def forward(self, params: dict[str, np.ndarray], tokens: np.ndarray,
                keep_outputs: bool = False) -> tuple[np.ndarray, Tape]:
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        cfg = self.graph.config
        if tokens.ndim != 2 or tokens.shape[1] > cfg.max_seq:
            raise ShapeError(f"tokens must be [batch, seq] with seq <= max_seq {cfg.max_seq}, got {tokens.shape}")
        vals: dict[str, np.ndarray] = {}
        caches: dict[str, object] = {}
        for node in self.order:
            a = self.graph.attrs(node)
            ins = [vals[i] for i in a["inputs"]]
            op = a["op"]
            if op == "embedding":
                out, c = ops.embedding_fwd(params["embed.weight"], tokens)
            elif op == "rmsnorm":
                out, c = ops.rmsnorm_fwd(ins[0], params[f"{node}.weight"], a["eps"])
            elif op == "bitlinear":
                out, c = ops.bitlinear_fwd(ins[0], params[f"{node}.weight"], self._mode(a))
            elif op == "attention":
                out, c = ops.attention_fwd(*ins, a["heads"], a["kv_heads"], a["head_dim"], a["rope_theta"])
            elif op == "ffn_act":
                out, c = ops.ffn_act_fwd(ins[0], ins[1], a["activation"])
            elif op == "add":
                out, c = ins[0] + ins[1], None
            elif op == "linear":
                w = params["embed.weight"] if a["tied"] else params["lm_head.weight"]
                out, c = ins[0] @ w.T, (ins[0], w)
            else:
                raise ShapeError(f"node {node!r}: op {op!r} has no training implementation")
            vals[node], caches[node] = out, c
        return vals["lm_head"], Tape(caches, tokens, vals if keep_outputs else None)

    def backward(self, params: dict[str, np.ndarray], tape: Tape, dlogits: np.ndarray,
                 extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Gradients of every parameter given d loss / d logits, plus optional d loss / d output of other
        nodes (`extra`, e.g. an attention-relation loss on the q/k/v projections)."""
        grads = {name: np.zeros_like(p) for name, p in params.items()}
        d: dict[str, np.ndarray] = {"lm_head": dlogits}
        for node, g in (extra or {}).items():
            d[node] = d[node] + g if node in d else g

        def push(node: str, g: np.ndarray) -> None:
            d[node] = d[node] + g if node in d else g

        for node in reversed(self.order):
            if node not in d:
                continue
            dout = d.pop(node)
            a = self.graph.attrs(node)
            c = tape.caches[node]
            ins = a["inputs"]
            op = a["op"]
            if op == "embedding":
                grads["embed.weight"] += ops.embedding_bwd(dout, c)
            elif op == "rmsnorm":
                dx, dw = ops.rmsnorm_bwd(dout, c)
                grads[f"{node}.weight"] += dw
                push(ins[0], dx)
            elif op == "bitlinear":
                dx, dw = ops.bitlinear_bwd(dout, c)
                grads[f"{node}.weight"] += dw
                push(ins[0], dx)
            elif op == "attention":
                for src, g in zip(ins, ops.attention_bwd(dout, c)):
                    push(src, g)
            elif op == "ffn_act":
                dg, du = ops.ffn_act_bwd(dout, c)
                push(ins[0], dg)
                push(ins[1], du)
            elif op == "add":
                push(ins[0], dout)
                push(ins[1], dout)
            elif op == "linear":
                x, w = c
                d2 = dout.reshape(-1, dout.shape[-1])
                grads["embed.weight" if a["tied"] else "lm_head.weight"] += d2.T @ x.reshape(-1, x.shape[-1])
                push(ins[0], dout @ w)
        return grads

    def loss_and_grads(self, params, tokens: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        logits, tape = self.forward(params, tokens)
        loss, dlogits = ops.cross_entropy(logits, targets)
        return loss, self.backward(params, tape, dlogits)

    def loss(self, params, tokens: np.ndarray, targets: np.ndarray) -> float:
        logits, _ = self.forward(params, tokens)
        return ops.cross_entropy(logits, targets)[0]
