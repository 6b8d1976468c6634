"""The model graph: a networkx DiGraph of typed ops with shapes, plus (optionally) its parameters.

Node names are parameter prefixes (`layers.0.attn.q_proj`), so `params[f"{node}.weight"]` is the
node's weight. Ops and their attributes:

| op          | attributes (every node also has `inputs`: its input nodes in order)                                                                |
|-------------|----------------------------------------------------------------------------|
| embedding   | vocab_size, hidden                                                         |
| rmsnorm     | dim, eps                                                                   |
| bitlinear   | in_features (K), out_features (M), weights, activation_bits, outlier_k, layer, role |
| attention   | heads, kv_heads, head_dim, rope_theta, layer                               |
| ffn_act     | activation (relu2 / swiglu), dim, layer                                    |
| add         | dim (residual)                                                             |
| linear      | in_features, out_features (full-precision LM head)                        |

A BitLinear's weight is stored either latent (`<node>.weight`, float32, quantized on use), already
quantized (`<node>.weight_q` int8 + `<node>.weight_scale`: one scale, or float32 [M] with one per output
row), as a ternary checkpoint provides it, or packed (`<node>.weight_i2`: 2-bit codes in the `i2`
format, k_align 4, + one `<node>.weight_scale`), as random weights for big models are made
(`graph/random_weights.py`); packed weights are unpacked on each use and never cached, so a 2B-weight
model stays at 2 bits a weight in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.config import ModelConfig, save_config
from ternkit.reference.quant import quantize_weights


# A transformer layer's BitLinears in execution order (their `role`): the one place that spells it.
ROLES = ("q", "k", "v", "o", "gate", "up", "down")
ATTENTION_ROLES = ROLES[:4]


def bitlinear_node(layer: int, role: str) -> str:
    """The node (and parameter prefix) of layer `layer`'s BitLinear `role`, e.g. `layers.3.ffn.up_proj`."""
    return f"layers.{layer}.{'attn' if role in ATTENTION_ROLES else 'ffn'}.{role}_proj"


def layer_weights(config: ModelConfig, layer: int) -> list[tuple[str, tuple[int, ...]]]:
    """(node, weight shape) of every parameterised node of one layer, in execution order: its norms and
    BitLinears (`param_shapes` and the standalone runtime's weights file both follow it)."""
    c, lc = config, config.layers[layer]
    p, a, f = f"layers.{layer}", lc.attention, lc.ffn
    q_dim, kv_dim = a.heads * a.head_dim, a.kv_heads * a.head_dim
    bitlinear = {"q": (q_dim, c.hidden), "k": (kv_dim, c.hidden), "v": (kv_dim, c.hidden), "o": (c.hidden, q_dim),
                 "gate": (f.hidden, c.hidden), "up": (f.hidden, c.hidden), "down": (c.hidden, f.hidden)}
    out = [(f"{p}.attn_norm", (c.hidden,))]
    for role in ROLES:
        if role == "o":
            out += [(f"{p}.attn.sub_norm", (q_dim,))] if c.subln else []
        elif role == "gate":
            out.append((f"{p}.ffn_norm", (c.hidden,)))
        elif role == "down" and c.subln:
            out.append((f"{p}.ffn.sub_norm", (f.hidden,)))
        out.append((bitlinear_node(layer, role), bitlinear[role]))
    return out


@dataclass
class ModelGraph:
    config: ModelConfig
    graph: nx.DiGraph
    params: dict[str, np.ndarray] | None = None
    _quantized: dict[str, tuple[np.ndarray, float | np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    def nodes(self, op: str | None = None) -> list[str]:
        """Node names in execution (topological) order, optionally only those of one op."""
        order = list(nx.topological_sort(self.graph))
        return [n for n in order if op is None or self.graph.nodes[n]["op"] == op]

    def attrs(self, node: str) -> dict:
        return self.graph.nodes[node]

    def bitlinears(self) -> list[str]:
        return self.nodes("bitlinear")

    def require_params(self) -> dict[str, np.ndarray]:
        if self.params is None:
            raise TernkitError(f"model {self.name!r} has shapes only, no weights: call init_params() "
                               "or load a checkpoint")
        return self.params

    def quantized_weight(self, node: str) -> tuple[np.ndarray, float | np.ndarray]:
        """`(w_q int8 [M, K], w_scale)` of a BitLinear node, cached until params change (packed weights:
        unpacked on every call, not cached). `w_scale` is one float, or float32 [M] (one per output row)
        for checkpoints that carry per-row scales."""
        if node not in self._quantized:
            p = self.require_params()
            if f"{node}.weight_i2" in p:
                from ternkit import formats

                a = self.attrs(node)
                w_q = formats.unpack("i2", p[f"{node}.weight_i2"], a["out_features"], a["in_features"])
                return w_q, float(p[f"{node}.weight_scale"])
            if f"{node}.weight_q" in p:
                scale = np.asarray(p[f"{node}.weight_scale"], dtype=np.float32)
                self._quantized[node] = (p[f"{node}.weight_q"], float(scale.reshape(-1)[0]) if scale.size == 1 else scale)
            else:
                self._quantized[node] = quantize_weights(p[f"{node}.weight"], self.attrs(node)["weights"])
        return self._quantized[node]

    def weight_scale(self, node: str) -> float | np.ndarray:
        """A BitLinear's weight scale (one float or float32 [M], as `quantized_weight`), without unpacking
        stored codes."""
        p = self.require_params()
        if f"{node}.weight_scale" in p:
            scale = np.asarray(p[f"{node}.weight_scale"], dtype=np.float32)
            return float(scale.reshape(-1)[0]) if scale.size == 1 else scale
        return self.quantized_weight(node)[1]

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        self.params = params
        self._quantized.clear()

    def parameter_count(self) -> int:
        return sum(int(np.prod(shape)) for shape in param_shapes(self.config).values())

    def save_yaml(self, path: str | Path) -> None:
        save_config(self.config, path)


def build_graph(config: ModelConfig) -> ModelGraph:
    g = nx.DiGraph()
    c = config
    bl = dict(weights=c.weights, activation_bits=c.activation_bits, outlier_k=c.outlier_k)

    def add(name: str, op: str, inputs: list[str], **attrs) -> str:
        g.add_node(name, op=op, inputs=tuple(inputs), **attrs)
        for src in inputs:
            g.add_edge(src, name)
        return name

    x = add("embed", "embedding", [], vocab_size=c.vocab_size, hidden=c.hidden)
    for i, layer in enumerate(c.layers):
        p, a, f = f"layers.{i}", layer.attention, layer.ffn
        q_dim, kv_dim = a.heads * a.head_dim, a.kv_heads * a.head_dim
        h = add(f"{p}.attn_norm", "rmsnorm", [x], dim=c.hidden, eps=c.norm_eps, layer=i)
        q = add(bitlinear_node(i, "q"), "bitlinear", [h], in_features=c.hidden, out_features=q_dim, layer=i, role="q", **bl)
        k = add(bitlinear_node(i, "k"), "bitlinear", [h], in_features=c.hidden, out_features=kv_dim, layer=i, role="k", **bl)
        v = add(bitlinear_node(i, "v"), "bitlinear", [h], in_features=c.hidden, out_features=kv_dim, layer=i, role="v", **bl)
        att = add(f"{p}.attn", "attention", [q, k, v], heads=a.heads, kv_heads=a.kv_heads, head_dim=a.head_dim,
                  rope_theta=c.rope_theta, layer=i)
        if c.subln:
            att = add(f"{p}.attn.sub_norm", "rmsnorm", [att], dim=q_dim, eps=c.norm_eps, layer=i)
        o = add(bitlinear_node(i, "o"), "bitlinear", [att], in_features=q_dim, out_features=c.hidden, layer=i, role="o", **bl)
        x = add(f"{p}.attn_residual", "add", [x, o], dim=c.hidden, layer=i)
        h = add(f"{p}.ffn_norm", "rmsnorm", [x], dim=c.hidden, eps=c.norm_eps, layer=i)
        gate = add(bitlinear_node(i, "gate"), "bitlinear", [h], in_features=c.hidden, out_features=f.hidden, layer=i, role="gate", **bl)
        up = add(bitlinear_node(i, "up"), "bitlinear", [h], in_features=c.hidden, out_features=f.hidden, layer=i, role="up", **bl)
        act = add(f"{p}.ffn.act", "ffn_act", [gate, up], activation=f.activation, dim=f.hidden, layer=i)
        if c.subln:
            act = add(f"{p}.ffn.sub_norm", "rmsnorm", [act], dim=f.hidden, eps=c.norm_eps, layer=i)
        down = add(bitlinear_node(i, "down"), "bitlinear", [act], in_features=f.hidden, out_features=c.hidden, layer=i, role="down", **bl)
        x = add(f"{p}.ffn_residual", "add", [x, down], dim=c.hidden, layer=i)
    x = add("final_norm", "rmsnorm", [x], dim=c.hidden, eps=c.norm_eps)
    add("lm_head", "linear", [x], in_features=c.hidden, out_features=c.vocab_size, tied=c.tie_embeddings)
    return ModelGraph(config=config, graph=g)


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in a stable order."""
    c = config
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (c.vocab_size, c.hidden)}
    for i in range(c.n_layers):
        shapes.update((f"{node}.weight", shape) for node, shape in layer_weights(c, i))
    shapes["final_norm.weight"] = (c.hidden,)
    if not c.tie_embeddings:
        shapes["lm_head.weight"] = (c.vocab_size, c.hidden)
    return shapes


def init_params(config: ModelConfig, seed: int | None = None, std: float = 0.02) -> dict[str, np.ndarray]:
    """Deterministic random initialisation: norms at 1, matrices N(0, std²)."""
    rng = np.random.default_rng(config.seed if seed is None else seed)
    params = {}
    for name, shape in param_shapes(config).items():
        if len(shape) == 1:
            params[name] = np.ones(shape, dtype=np.float32)
        else:
            params[name] = (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)
    return params
