"""Model configuration: dataclasses, the YAML schema and its validation (every bad field is reported
with its path in the file, e.g. `layers[3].ffn.hidden: must be a positive int`)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ValidationInfo, field_validator

from ternkit.errors import ConfigError
from ternkit.schema import (MISSING, Bool, Name, NonNegativeInt, PositiveInt, PositiveNumber, Section, Text, check,
                            checked, lines, one_of, problem, section)
from ternkit.yamlio import read_yaml

FFN_ACTIVATIONS = ("relu2", "swiglu")
WEIGHT_MODES = ("ternary", "binary")
_HIDDEN = "__model_hidden__"   # the model's hidden size, handed to each attention to derive head_dim


def _positive(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


@section
class AttentionConfig(Section):
    heads: PositiveInt
    kv_heads: PositiveInt      # in YAML, default: heads
    head_dim: PositiveInt      # in YAML, default: the model's hidden // heads

    @classmethod
    def prepare(cls, data: dict) -> dict:
        """The derived defaults. Where heads or hidden is bad (its own error is reported), placeholders
        keep the derived fields from being reported as well."""
        data = dict(data)
        from_model = _HIDDEN in data
        hidden, heads = data.pop(_HIDDEN, None), data.get("heads")
        if not _positive(heads):
            return {"kv_heads": 1, "head_dim": 2, **data}
        data.setdefault("kv_heads", heads)
        if "head_dim" not in data and from_model:
            if not _positive(hidden):
                data["head_dim"] = 2
            elif hidden % heads:
                raise problem("heads", f"must divide hidden ({hidden}) or set head_dim, got {heads}")
            else:
                data["head_dim"] = hidden // heads
        return data

    @field_validator("kv_heads")
    @classmethod
    def _groups(cls, kv_heads: int, info: ValidationInfo) -> int:
        heads = info.data.get("heads")
        if heads and heads % kv_heads:
            raise problem("", f"must divide heads ({heads}), got {kv_heads}")
        return kv_heads

    @field_validator("head_dim")
    @classmethod
    def _rope_pairs(cls, head_dim: int) -> int:
        if head_dim % 2:
            raise problem("", f"must be even for RoPE, got {head_dim}")
        return head_dim


@section
class FFNConfig(Section):
    hidden: PositiveInt
    activation: one_of(*FFN_ACTIVATIONS) = "relu2"  # gated: down(act(gate(x)) * up(x)); relu2 = relu(.)^2, swiglu = silu


@section
class LayerConfig(Section):
    attention: AttentionConfig
    ffn: FFNConfig


def _layer_list(v: Any) -> Any:
    if not isinstance(v, (list, tuple)) or not v:
        raise problem("", "must be a positive int (with `defaults`) or a non-empty list of layers, "
                          f"got {None if v is MISSING else v!r}")
    return v


def _outlier_k(v: Any) -> int | None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
        raise ValueError(f"must be a non-negative int or null, got {v!r}")
    return v


@section
class ModelConfig(Section):
    name: Name
    vocab_size: PositiveInt
    hidden: PositiveInt
    layers: Annotated[tuple[LayerConfig, ...], BeforeValidator(_layer_list)]
    weights: one_of(*WEIGHT_MODES) = "ternary"   # ternary (b1.58 absmean) | binary (v1 centred sign)
    activation_bits: one_of(8, 4) = 8            # 8 (absmax int8) | 4 (a4.8: int4 + int8 outliers)
    outlier_k: checked(_outlier_k) = None        # a4.8 outliers per token; None = max(1, K // 64)
    subln: Bool = True                           # RMSNorm before o_proj and down_proj (SubLN)
    norm_eps: PositiveNumber = 1e-5
    rope_theta: PositiveNumber = 10000.0
    max_seq: PositiveInt = 2048
    tie_embeddings: Bool = False
    description: Text = ""
    seed: NonNegativeInt = 0

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


def _with_defaults(layer: Any, defaults: dict, hidden: Any) -> Any:
    """A layer's mapping under the file's `defaults`, with the model's hidden size for head_dim."""
    if not isinstance(layer, dict):
        return layer
    out = dict(layer)
    for part in ("attention", "ffn"):
        mine, common = layer.get(part), defaults.get(part)
        if isinstance(common, dict) and (mine is None or isinstance(mine, dict)):
            out[part] = {**common, **(mine or {})}
        elif mine is None and common is not None:
            out[part] = common            # not a mapping: reported as the layer's
    if isinstance(out.get("attention"), dict):
        out["attention"] = {**out["attention"], _HIDDEN: hidden}
    elif "attention" not in out:
        out["attention"] = {_HIDDEN: hidden}
    return out


def config_from_dict(data: Any, source: str = "<dict>") -> ModelConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the model spec must be a YAML mapping")
    doc = {"name": Path(source).stem, **data}
    defaults, errors = doc.pop("defaults", None), []
    if defaults is None:
        defaults = {}
    elif not isinstance(defaults, dict):
        errors.append("defaults: must be a mapping")
        defaults = {}
    errors += [f"defaults.{k}: unknown field (expected one of: attention, ffn)" for k in defaults
               if k not in ("attention", "ffn")]
    layers, repeat = doc.get("layers"), 0
    if _positive(layers):             # `layers: N`: N copies of `defaults`, checked once under that name
        layers, repeat = [{}], layers
    if isinstance(layers, list):
        doc["layers"] = [_with_defaults(layer, defaults, doc.get("hidden")) for layer in layers]
    config, found = check(ModelConfig, doc)
    if repeat:                        # the one layer checked stands for `defaults`
        found = [("defaults" + path[len("layers[0]"):] if path.startswith("layers[0].") else path, message)
                 for path, message in found]
    errors += lines(found)
    if errors:
        # one line (the CLI prints errors on one line); every problem is listed with its path
        raise ConfigError(f"{source}: invalid model spec: " + "; ".join(errors))
    return replace(config, layers=config.layers * repeat) if repeat else config


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
