"""Reading YAML files with errors a user can act on (the file, the line and column, the problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ternkit.errors import ConfigError


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse a YAML file; a missing file or a syntax error is one ConfigError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what}")
    if path.suffix in (".npz", ".safetensors", ".gguf"):
        raise ConfigError(f"{path}: is a checkpoint; expected the {what} (a YAML file)")
    try:
        return yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: a binary file; expected the {what} (a YAML file)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
