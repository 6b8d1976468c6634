"""Model configuration: dataclasses, the YAML schema and its validation (every bad field is reported
with its path in the file, e.g. `layers[3].ffn.hidden: must be a positive int`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ternkit.errors import ConfigError
from ternkit.yamlio import read_yaml

FFN_ACTIVATIONS = ("relu2", "swiglu")
WEIGHT_MODES = ("ternary", "binary")


@dataclass(frozen=True)
class AttentionConfig:
    heads: int
    kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class FFNConfig:
    hidden: int
    activation: str = "relu2"  # gated: down(act(gate(x)) * up(x)); relu2 = relu(.)^2, swiglu = silu


@dataclass(frozen=True)
class LayerConfig:
    attention: AttentionConfig
    ffn: FFNConfig


@dataclass(frozen=True)
class ModelConfig:
    name: str
    vocab_size: int
    hidden: int
    layers: tuple[LayerConfig, ...]
    weights: str = "ternary"          # ternary (b1.58 absmean) | binary (v1 centred sign)
    activation_bits: int = 8          # 8 (absmax int8) | 4 (a4.8: int4 + int8 outliers)
    outlier_k: int | None = None      # a4.8 outliers per token; None = max(1, K // 64)
    subln: bool = True                # RMSNorm before o_proj and down_proj (SubLN)
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq: int = 2048
    tie_embeddings: bool = False
    description: str = ""
    seed: int = 0

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: uniform layers collapse to `layers: N` plus `defaults`."""
        d = asdict(self)
        layers = [asdict(layer) for layer in self.layers]
        if layers and all(layer == layers[0] for layer in layers):
            d["defaults"] = layers[0]
            d["layers"] = len(layers)
        else:
            d["layers"] = layers
        if not d["description"]:
            del d["description"]
        return d


_TOP_FIELDS = {
    "name", "description", "vocab_size", "hidden", "layers", "defaults", "weights", "activation_bits",
    "outlier_k", "subln", "norm_eps", "rope_theta", "max_seq", "tie_embeddings", "seed",
}


class _Reader:
    """Walks a YAML mapping, collecting errors with their paths."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else str(key),
                          f"unknown field (expected one of: {', '.join(sorted(allowed))})")
        return value

    def pos_int(self, d: dict, key: str, path: str, default: Any = ...) -> int | None:
        if key not in d:
            if default is ...:
                self.fail(_join(path, key), "is required (a positive int)")
                return None
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            self.fail(_join(path, key), f"must be a positive int, got {v!r}")
            return None
        return v

    def pos_float(self, d: dict, key: str, path: str, default: float) -> float:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            self.fail(_join(path, key), f"must be a positive number, got {v!r}")
            return default
        return float(v)

    def choice(self, d: dict, key: str, path: str, options: tuple, default: Any) -> Any:
        v = d.get(key, default)
        if v not in options:
            self.fail(_join(path, key), f"must be one of {', '.join(map(str, options))}, got {v!r}")
            return default
        return v

    def boolean(self, d: dict, key: str, path: str, default: bool) -> bool:
        v = d.get(key, default)
        if not isinstance(v, bool):
            self.fail(_join(path, key), f"must be true or false, got {v!r}")
            return default
        return v


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _layer(r: _Reader, spec: Any, defaults: dict, path: str, hidden: int | None) -> LayerConfig | None:
    spec = r.mapping(spec, path, {"attention", "ffn"})
    att = {**(defaults.get("attention") or {}), **(r.mapping(spec.get("attention"), f"{path}.attention",
                                                              {"heads", "kv_heads", "head_dim"}))}
    ffn = {**(defaults.get("ffn") or {}), **(r.mapping(spec.get("ffn"), f"{path}.ffn", {"hidden", "activation"}))}
    n_err = len(r.errors)
    heads = r.pos_int(att, "heads", f"{path}.attention")
    kv_heads = r.pos_int(att, "kv_heads", f"{path}.attention", heads)
    head_dim = None
    if heads and hidden:
        if "head_dim" in att:
            head_dim = r.pos_int(att, "head_dim", f"{path}.attention")
        elif hidden % heads:
            r.fail(f"{path}.attention.heads", f"must divide hidden ({hidden}) or set head_dim, got {heads}")
        else:
            head_dim = hidden // heads
    if heads and kv_heads and heads % kv_heads:
        r.fail(f"{path}.attention.kv_heads", f"must divide heads ({heads}), got {kv_heads}")
    if head_dim and head_dim % 2:
        r.fail(f"{path}.attention.head_dim", f"must be even for RoPE, got {head_dim}")
    f_hidden = r.pos_int(ffn, "hidden", f"{path}.ffn")
    act = r.choice(ffn, "activation", f"{path}.ffn", FFN_ACTIVATIONS, "relu2")
    if len(r.errors) > n_err:
        return None
    return LayerConfig(AttentionConfig(heads, kv_heads, head_dim), FFNConfig(f_hidden, act))


def config_from_dict(data: Any, source: str = "<dict>") -> ModelConfig:
    r = _Reader()
    d = r.mapping(data, "", _TOP_FIELDS)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the model spec must be a YAML mapping")
    name = d.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        r.fail("name", f"must be a non-empty string, got {name!r}")
    vocab = r.pos_int(d, "vocab_size", "")
    hidden = r.pos_int(d, "hidden", "")
    defaults = r.mapping(d.get("defaults"), "defaults", {"attention", "ffn"})
    layers_spec = d.get("layers")
    layers: list[LayerConfig | None] = []
    if isinstance(layers_spec, int) and not isinstance(layers_spec, bool) and layers_spec > 0:
        layer = _layer(r, {}, defaults, "defaults", hidden)
        layers = [layer] * layers_spec
    elif isinstance(layers_spec, list) and layers_spec:
        layers = [_layer(r, spec, defaults, f"layers[{i}]", hidden) for i, spec in enumerate(layers_spec)]
    else:
        r.fail("layers", f"must be a positive int (with `defaults`) or a non-empty list of layers, got {layers_spec!r}")
    weights = r.choice(d, "weights", "", WEIGHT_MODES, "ternary")
    bits = r.choice(d, "activation_bits", "", (8, 4), 8)
    outlier_k = d.get("outlier_k")
    if outlier_k is not None and (isinstance(outlier_k, bool) or not isinstance(outlier_k, int) or outlier_k < 0):
        r.fail("outlier_k", f"must be a non-negative int or null, got {outlier_k!r}")
    seed = d.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        r.fail("seed", f"must be a non-negative int, got {seed!r}")
    description = d.get("description", "")
    if not isinstance(description, str):
        r.fail("description", "must be a string")
    cfg = dict(
        subln=r.boolean(d, "subln", "", True),
        norm_eps=r.pos_float(d, "norm_eps", "", 1e-5),
        rope_theta=r.pos_float(d, "rope_theta", "", 10000.0),
        max_seq=r.pos_int(d, "max_seq", "", 2048),
        tie_embeddings=r.boolean(d, "tie_embeddings", "", False),
    )
    if r.errors:
        # one line (the CLI prints errors on one line); every problem is listed with its path
        raise ConfigError(f"{source}: invalid model spec: " + "; ".join(r.errors))
    return ModelConfig(name=name, vocab_size=vocab, hidden=hidden, layers=tuple(layers), weights=weights,
                       activation_bits=bits, outlier_k=outlier_k, description=description, seed=seed, **cfg)


def load_config(path: str | Path) -> ModelConfig:
    data = read_yaml(path, "model file")
    return config_from_dict(data, str(path))


def save_config(config: ModelConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def with_overrides(config: ModelConfig, **changes: Any) -> ModelConfig:
    return replace(config, **changes)


__all__ = [
    "AttentionConfig", "FFNConfig", "LayerConfig", "ModelConfig", "config_from_dict", "load_config",
    "save_config", "with_overrides",
]
