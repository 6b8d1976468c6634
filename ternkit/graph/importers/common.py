"""What every importer shares: turning foreign tensors into ternkit parameters and a ModelGraph.

An importer maps each foreign tensor name to a ternkit parameter name (`embed.weight`,
`layers.3.attn.q_proj`, ...). BitLinear weights arrive in one of three forms and become:
- ternary codes + one scale, or one scale per output row (TQ1_0/TQ2_0/I2_S blocks, HF packed uint8):
  `<node>.weight_q` + `<node>.weight_scale` (a scalar or float32 [M]);
- full precision that is already `{-s, 0, +s}` (a converter applied the absmean quantizer and stored the
  result in F16/F32): the same exact form, so the scale is `s` and not re-derived;
- any other full-precision matrix: the latent `<node>.weight`, quantized (absmean) on use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.config import ModelConfig
from ternkit.graph.modelgraph import ModelGraph, build_graph, param_shapes


class CheckpointError(TernkitError):
    """A foreign checkpoint that ternkit cannot map onto its BitNet graph."""


@dataclass
class ParamSet:
    """Parameters collected by an importer."""

    params: dict[str, np.ndarray] = field(default_factory=dict)

    def add_ternary(self, node: str, w_q: np.ndarray, scale: float | np.ndarray) -> None:
        """Codes + one scale, or one scale per output row (float32 [M])."""
        self.params[f"{node}.weight_q"] = np.ascontiguousarray(w_q, dtype=np.int8)
        self.params[f"{node}.weight_scale"] = np.asarray(scale, dtype=np.float32)

    def add_float_matrix(self, node: str, w: np.ndarray) -> None:
        """A full-precision BitLinear weight: exact ternary form when it is one already, else latent."""
        w = np.asarray(w, dtype=np.float32)
        exact = as_scaled_ternary(w)
        if exact is None:
            self.params[f"{node}.weight"] = np.ascontiguousarray(w)
        else:
            self.add_ternary(node, *exact)


def as_scaled_ternary(w: np.ndarray) -> tuple[np.ndarray, float] | None:
    """`(w_q, s)` when every entry of `w` is -s, 0 or +s for one s > 0, else None."""
    mags = np.unique(np.abs(w))
    mags = mags[mags > 0]
    if mags.size != 1:
        return None
    s = float(mags[0])
    return np.sign(w).astype(np.int8), s


def f16_bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values).view(np.float16).astype(np.float32)


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 (raw uint16) -> float32: the upper half of a float32's bits."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def finish(path: Path, config: ModelConfig, ps: ParamSet) -> ModelGraph:
    """Check every parameter the graph needs is there with the right shape, then build the model."""
    model = build_graph(config)
    missing, bad = [], []
    for name, shape in param_shapes(config).items():
        node = name.removesuffix(".weight")
        arr = ps.params.get(name)
        if arr is None and f"{node}.weight_q" in ps.params:
            arr = ps.params[f"{node}.weight_q"]
        if arr is None:
            missing.append(name)
        elif tuple(arr.shape) != tuple(shape):
            bad.append(f"{name} {tuple(arr.shape)} (expected {tuple(shape)})")
        elif f"{node}.weight_scale" in ps.params and ps.params[f"{node}.weight_scale"].size not in (1, shape[0]):
            bad.append(f"{node}.weight_scale {ps.params[f'{node}.weight_scale'].shape} (expected one scale or "
                       f"{shape[0]}, one per row)")
    if missing:
        raise CheckpointError(f"{path}: missing {len(missing)} tensors for a {config.n_layers}-layer model, "
                           f"e.g. {', '.join(missing[:4])}")
    if bad:
        raise CheckpointError(f"{path}: tensor shapes do not fit the config: {'; '.join(bad[:4])}")
    model.set_params(ps.params)
    return model


def unexpected_error(path: Path, unknown: list[str], expected: list[str]) -> CheckpointError:
    return CheckpointError(f"{path}: {len(unknown)} unexpected tensors, e.g. {', '.join(sorted(unknown)[:5])}; "
                        f"expected only names like {', '.join(expected)}")
