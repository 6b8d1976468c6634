"""Autotuned tilings: a `tuning.yaml` written by `ternkit tune` next to the generated code, read back
by `ternkit generate` / `ternkit bench` (and anything lowering a plan) so the winners are used.

    # tuning.yaml
    machine: AMD EPYC                 # lscpu model name the winners were measured on
    targets:
      avx512:
        gemv_m2560_k2560_i2_a8: {rows: 1, prefetch: 8192}
        gemm_m2560_k2560_n64_i2_a8: {gemm_rows: 6, gemm_tb: 4, mc: 48}
        formats: {gemv_m2560_k2560_a8: i2}   # the fastest format measured per shape

Keys are kernel names (shape, token count, format); values override the target's default tiling and
are checked by `Target.specialise` like any other tiling. `formats` (written when `ternkit tune` compares
the target's formats) picks the weight format per shape unless a format is forced."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.target import Target
from ternkit.errors import ConfigError, TernkitError
from ternkit.outputs import write_file
from ternkit.schema import Section, checked, section, validate
from ternkit.toolchain import cpu

FILENAME = "tuning.yaml"

Tuning = dict  # {target: {kernel name: {key: value}}}


def machine_name() -> str:
    return cpu.model_name()


_SHAPE = "expected a mapping 'targets: {target: {kernel: {key: value}}}'"


def _targets(v: Any) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(kernels, dict) for kernels in v.values()):
        raise ValueError(_SHAPE)
    return v


@section
class TuningFile(Section):
    open_keys = True                  # `machine:` and notes are for the reader
    targets: checked(_targets, dict) = dataclasses.field(default_factory=dict)


def load(path: Path) -> Tuning:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise TernkitError(f"cannot read tuning file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TernkitError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {_SHAPE}")
    return validate(TuningFile, data, f"{path}: ").targets


def save(path: Path, tuning: Tuning) -> None:
    path = Path(path)
    old = load(path) if path.exists() else {}
    for target, kernels in tuning.items():
        entry = old.setdefault(target, {})
        entry.setdefault("formats", {}).update(kernels.get("formats", {}))
        entry.update({k: v for k, v in kernels.items() if k != "formats"})
        if not entry["formats"]:
            del entry["formats"]
    text = ("# Written by `ternkit tune`: the fastest tiling measured per kernel; `ternkit generate` uses it.\n"
            + yaml.safe_dump({"machine": machine_name(), "targets": old}, sort_keys=True, default_flow_style=None))
    write_file(path, text, "-o")


def tiling_for(tuning: Tuning | None, target: Target, kernel_name: str) -> dict:
    return dict((tuning or {}).get(target.name, {}).get(kernel_name, {}))


def formats_for(tuning: Tuning | None, target: Target) -> dict[str, str]:
    """The fastest format `ternkit tune` measured per shape key on `target` ({} when not compared)."""
    return dict((tuning or {}).get(target.name, {}).get("formats", {}))


def specialise(target: Target, spec: KernelSpec, tuning: Tuning | None, weight_format: str | None = None) -> KernelSpec:
    """`spec` in `weight_format` (default: its own) with its tuned tiling, if any (else the defaults)."""
    fmt = weight_format or spec.weight_format
    if fmt != spec.weight_format:
        spec = target.specialise(dataclasses.replace(spec, weight_format=fmt, tiling=()))
    tiles = tiling_for(tuning, target, spec.name)
    return target.specialise(dataclasses.replace(spec, tiling=tuple(sorted(tiles.items())))) if tiles else spec


def apply(plan: Plan, target: Target, tuning: Tuning | None, choose_format: bool = True) -> Plan:
    """Re-specialise the plan's kernels with their tuned formats (`choose_format`) and tilings (kernels
    without an entry keep theirs)."""
    if not tuning or not tuning.get(target.name):
        return plan
    chosen = formats_for(tuning, target) if choose_format else {}
    return plan.remap(lambda spec: specialise(target, spec, tuning, chosen.get(spec.shape_key)))
