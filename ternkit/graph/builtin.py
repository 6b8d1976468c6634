"""Built-in models (YAML specs shipped in `ternkit/graph/models/`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ternkit.errors import TernkitError
from ternkit.graph.config import ModelConfig, load_config

DEFAULT_MODEL = "tiny"


def _models_dir() -> Path:
    return Path(str(resources.files("ternkit.graph") / "models"))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in _models_dir().glob("*.yaml"))


def builtin_config(name: str) -> ModelConfig:
    path = _models_dir() / f"{name}.yaml"
    if not path.is_file():
        raise TernkitError(f"unknown built-in model {name!r}: choose one of {', '.join(builtin_names())} "
                           "(see `ternkit models`) or give a path to a YAML spec or checkpoint")
    return load_config(path)
