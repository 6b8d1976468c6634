"""Target registry: every concrete `Target` subclass defined in a module of this folder is a target,
found automatically. Adding a target = one module here (+ one template folder
`ternkit/templates/<name>/` for a `CTarget`)."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

from ternkit.codegen.ctarget import CTarget
from ternkit.codegen.target import Target
from ternkit.errors import TernkitError, ToolchainError


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, Target]:
    found: dict[str, Target] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Target) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                target = cls()
                if target.name in found:
                    raise TernkitError(f"two targets are named {target.name!r}")
                found[target.name] = target
    return dict(sorted(found.items()))


def target_names() -> list[str]:
    return list(_registry())


def all_targets() -> list[Target]:
    return list(_registry().values())


def c_targets() -> list[CTarget]:
    """The targets with C kernels (not the lowering-only ones such as npu)."""
    return [t for t in _registry().values() if isinstance(t, CTarget)]


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    reg = _registry()
    if name not in reg:
        raise TernkitError(f"unknown target {name!r}: use one of {', '.join(reg)}")
    return reg[name]


def get_c_target(name: str | Target) -> CTarget:
    """The named target, refused in one line when it has no C kernels."""
    target = get_target(name)
    if not isinstance(target, CTarget):
        raise TernkitError(f"target {target.name!r} has no C kernels: {target.unavailable_reason()}")
    return target


def native_targets() -> list[CTarget]:
    """The C targets this machine runs at full speed (not emulated)."""
    return [t for t in c_targets() if t.runs_natively()]


def best_native_target() -> CTarget:
    """The fastest target this machine builds and runs natively (scalar always qualifies)."""
    return max(native_targets(), key=lambda t: t.priority)


def native_target(name: str | None, purpose: str) -> CTarget:
    """The named target (default: the best native one), refused with the reason when this machine
    cannot run it natively (`purpose` says what for: "bench", "tune", ...)."""
    target = get_target(name) if name else best_native_target()
    if isinstance(target, CTarget) and target.runs_natively():
        return target
    reason = target.isa.missing(target.name) if isinstance(target, CTarget) else target.unavailable_reason()
    raise ToolchainError(f"cannot {purpose} {target.name} on this machine: {reason}")
