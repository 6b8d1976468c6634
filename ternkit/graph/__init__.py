"""The model graph: config/YAML schema, networkx graph of typed ops, built-in models, importers."""

from __future__ import annotations

from pathlib import Path

from ternkit.errors import TernkitError
from ternkit.graph.builtin import _MAX_RANDOM_PARAMS, DEFAULT_MODEL, builtin_config, builtin_names
from ternkit.graph.config import ModelConfig, config_from_dict, load_config, save_config
from ternkit.graph.model import ModelGraph, build_graph, init_params, param_shapes


def load_model(source: str | Path = DEFAULT_MODEL, *, with_params: bool = True, seed: int | None = None) -> ModelGraph:
    """Load a model by built-in name, YAML spec path, or checkpoint path.

    With `with_params`, models without stored weights get deterministic random ones when they are small
    enough (shape-only otherwise, e.g. the 2B4T shapes)."""
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
    if with_params and model.parameter_count() <= _MAX_RANDOM_PARAMS:
        model.set_params(init_params(config, seed))
    return model


__all__ = [
    "DEFAULT_MODEL", "ModelConfig", "ModelGraph", "build_graph", "builtin_config", "builtin_names",
    "config_from_dict", "init_params", "load_config", "load_model", "param_shapes", "save_config",
]
