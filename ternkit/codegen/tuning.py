"""Autotuned tilings: a `tuning.yaml` written by `ternkit tune` next to the generated code, read back
by `ternkit generate` / `ternkit bench` (and anything lowering a plan) so the winners are used.

    # tuning.yaml
    machine: AMD EPYC                 # lscpu model name the winners were measured on
    targets:
      avx512:
        gemv_m2560_k2560_i2_a8: {rows: 1, prefetch: 8192}
        gemm_m2560_k2560_n64_i2_a8: {gemm_rows: 6, gemm_tb: 4, mc: 48}

Keys are kernel names (shape, token count, format); values override the target's default tiling and
are checked by `Target.specialise` like any other tiling."""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

import yaml

from ternkit.codegen.plan import Plan
from ternkit.codegen.target import Target
from ternkit.errors import TernkitError

FILENAME = "tuning.yaml"

Tuning = dict  # {target: {kernel name: {key: value}}}


def machine_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load(path: Path) -> Tuning:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise TernkitError(f"cannot read tuning file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TernkitError(f"{path} is not valid YAML: {exc}") from None
    targets = data.get("targets", {}) if isinstance(data, dict) else None
    if not isinstance(targets, dict) or not all(isinstance(v, dict) for v in targets.values()):
        raise TernkitError(f"{path}: expected a mapping 'targets: {{target: {{kernel: {{key: value}}}}}}'")
    return targets


def save(path: Path, tuning: Tuning) -> None:
    path = Path(path)
    old = load(path) if path.exists() else {}
    for target, kernels in tuning.items():
        old.setdefault(target, {}).update(kernels)
    text = ("# Written by `ternkit tune`: the fastest tiling measured per kernel; `ternkit generate` uses it.\n"
            + yaml.safe_dump({"machine": machine_name(), "targets": old}, sort_keys=True, default_flow_style=None))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def tiling_for(tuning: Tuning | None, target: Target, kernel_name: str) -> dict:
    return dict((tuning or {}).get(target.name, {}).get(kernel_name, {}))


def apply(plan: Plan, target: Target, tuning: Tuning | None) -> Plan:
    """Re-specialise the plan's kernels with their tuned tilings (kernels without an entry keep theirs)."""
    if not tuning or not tuning.get(target.name):
        return plan
    users: dict = {}
    for spec in plan.kernels:
        tiles = tiling_for(tuning, target, spec.name)
        new = target.specialise(dataclasses.replace(spec, tiling=tuple(sorted(tiles.items())))) if tiles else spec
        users.setdefault(new, []).extend(plan.users.get(spec, []))
    return Plan(target=plan.target, model=plan.model, kernels=list(users), users=users)
