"""The model graph: config/YAML schema, networkx graph of typed ops, built-in models, importers."""

from __future__ import annotations

from pathlib import Path

from ternkit.errors import TernkitError
from ternkit.graph.builtin import DEFAULT_MODEL, builtin_config, builtin_names
from ternkit.graph.config import ModelConfig, config_from_dict, load_config, save_config
from ternkit.graph.modelgraph import ModelGraph, build_graph, init_params, param_shapes
from ternkit.graph.random_weights import FLOAT_RANDOM_MAX_PARAMS, packed_random_params


def load_model(source: str | Path = DEFAULT_MODEL, *, with_params: bool = True, seed: int | None = None,
               packed_random: bool = False) -> ModelGraph:
    """Load a model by built-in name, YAML spec path, or checkpoint path.

    With `with_params`, models without stored weights get deterministic random ones: latent float32
    weights up to `FLOAT_RANDOM_MAX_PARAMS` (50 M) parameters; above that, random packed ternary codes
    and a float16 embedding with `packed_random` (what running a 2B4T-size model needs), else none
    (shapes only: what simulating or benchmarking kernel shapes needs)."""
    src = str(source)
    path = Path(src)
    if path.suffix in (".yaml", ".yml"):
        config = load_config(path)
    elif path.suffix in (".npz", ".safetensors", ".gguf"):
        from ternkit.graph.checkpoint import load_checkpoint  # importers own real files

        return load_checkpoint(path)
    elif path.exists():
        raise TernkitError(f"{path}: unsupported model file type {path.suffix!r} "
                           "(expected .yaml, .npz, .safetensors or .gguf)")
    else:
        config = builtin_config(src)
    model = build_graph(config)
    if with_params and model.parameter_count() <= FLOAT_RANDOM_MAX_PARAMS:
        model.set_params(init_params(config, seed))
    elif with_params and packed_random:
        model.set_params(packed_random_params(config, seed))
    return model


__all__ = [
    "DEFAULT_MODEL", "ModelConfig", "ModelGraph", "build_graph", "builtin_config", "builtin_names",
    "config_from_dict", "init_params", "load_config", "load_model", "param_shapes", "save_config",
]
