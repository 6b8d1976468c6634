"""Checkpoints: ternkit's own (the config travels inside the file) and the importers for foreign ones.

- `.npz`: arrays plus `__config__` (the model YAML as a string) and `__meta__` (JSON).
- `.safetensors`: tensors plus metadata keys `ternkit.config` (YAML) and `ternkit.meta` (JSON).
A safetensors file without `ternkit.config`, and any `.gguf`, is handed to the importers in
`ternkit.graph.importers`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from ternkit.errors import TernkitError
from ternkit.graph.config import config_from_dict
from ternkit.graph.modelgraph import ModelGraph, build_graph, param_shapes
from ternkit.outputs import atomic_path


def save_checkpoint(model: ModelGraph, path: str | Path, meta: dict | None = None,
                    extra: dict[str, np.ndarray] | None = None) -> None:
    """Write params (+ optional extra arrays such as optimizer state) atomically."""
    path = Path(path)
    params = model.require_params()
    config_yaml = yaml.safe_dump(model.config.to_dict(), sort_keys=False)
    meta_json = json.dumps(meta or {})
    arrays = {**params, **(extra or {})}
    if path.suffix not in (".npz", ".safetensors"):
        raise TernkitError(f"{path}: checkpoints are .npz or .safetensors")
    with atomic_path(path) as tmp:
        if path.suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, __config__=np.array(config_yaml), __meta__=np.array(meta_json), **arrays)
        else:
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp),
                      metadata={"ternkit.config": config_yaml, "ternkit.meta": meta_json})


def read_checkpoint(path: str | Path) -> tuple[ModelGraph, dict, dict[str, np.ndarray]]:
    """(model with params, meta, extra arrays that are not parameters) of a ternkit checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise TernkitError(f"{path}: no such checkpoint")
    try:
        config_yaml, meta, arrays = _read_arrays(path)
    except Exception as exc:  # numpy, zipfile and safetensors each raise their own types for a corrupt file
        raise TernkitError(f"{path}: not a readable {path.suffix} checkpoint: the file is corrupt or was not "
                           f"written by ternkit ({type(exc).__name__})") from None
    if not config_yaml:
        raise TernkitError(f"{path}: not a ternkit checkpoint (no embedded config)")
    config = config_from_dict(yaml.safe_load(config_yaml), str(path))
    model = build_graph(config)
    expected = param_shapes(config)
    params, extra = {}, {}
    for name, arr in arrays.items():
        is_param = name in expected or name.endswith((".weight_q", ".weight_scale"))
        (params if is_param else extra)[name] = arr
    missing = [n for n in expected if n not in params and n.removesuffix(".weight") + ".weight_q" not in params]
    if missing:
        raise TernkitError(f"{path}: checkpoint lacks {len(missing)} parameters, e.g. {', '.join(missing[:3])}")
    _check_shapes(path, params, expected)
    model.set_params(params)
    return model, meta, extra


def _read_arrays(path: Path) -> tuple[str, dict, dict[str, np.ndarray]]:
    """(config YAML, meta, arrays) of a ternkit .npz or .safetensors file."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return str(arrays.pop("__config__", "")), json.loads(str(arrays.pop("__meta__", "{}"))), arrays
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(path), framework="numpy") as f:
        md = f.metadata() or {}
    return md.get("ternkit.config", ""), json.loads(md.get("ternkit.meta", "{}")), load_file(str(path))


def _check_shapes(path: Path, params: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]]) -> None:
    """Every tensor has the shape its config gives it: a wrong one is named here, not deep in a kernel."""
    for name, shape in expected.items():
        node = name.removesuffix(".weight")
        for key, want in ((name, shape), (f"{node}.weight_q", shape)):
            if key in params and tuple(params[key].shape) != tuple(shape):
                raise TernkitError(f"{path}: tensor {key} has shape {tuple(params[key].shape)}, but the embedded "
                                   f"config needs {tuple(want)}")
        scale = params.get(f"{node}.weight_scale")
        if scale is not None and scale.size not in (1, shape[0]):
            raise TernkitError(f"{path}: tensor {node}.weight_scale has {scale.size} values; the config needs "
                               f"one, or {shape[0]} (one per row)")


def load_checkpoint(path: str | Path) -> ModelGraph:
    path = Path(path)
    if path.suffix == ".gguf":
        from ternkit.graph.importers.gguf import load_gguf

        return load_gguf(path)
    if path.suffix == ".safetensors" and not _is_ternkit_safetensors(path):
        from ternkit.graph.importers.safetensors import load_safetensors

        return load_safetensors(path)
    return read_checkpoint(path)[0]


def _is_ternkit_safetensors(path: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return "ternkit.config" in (f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise TernkitError(f"{path}: not a readable safetensors file ({exc})") from None
