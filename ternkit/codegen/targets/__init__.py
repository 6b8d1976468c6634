"""Target registry: every `Target` subclass defined in a module of this folder is a target, found
automatically. Adding a target = one module here + one template folder `ternkit/templates/<name>/`."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

from ternkit.codegen.target import Target
from ternkit.errors import TernkitError


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


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    reg = _registry()
    if name not in reg:
        raise TernkitError(f"unknown target {name!r}: use one of {', '.join(reg)}")
    return reg[name]


def best_native_target() -> Target:
    """The fastest target this machine builds and runs natively (scalar always qualifies)."""
    ok = [t for t in _registry().values()
          if getattr(t, "runs_natively", lambda: True)() and t.unavailable_reason() is None]
    return max(ok, key=lambda t: getattr(t, "priority", 0))


def native_target(name: str | None, purpose: str) -> Target:
    """The named target (default: the best native one), refused with the reason when this machine
    cannot run it natively (`purpose` says what for: "bench", "tune", ...)."""
    from ternkit.errors import ToolchainError

    target = get_target(name) if name else best_native_target()
    reason = target.unavailable_reason()
    if reason or not getattr(target, "runs_natively", lambda: False)():
        raise ToolchainError(f"cannot {purpose} {target.name} on this machine: {reason or 'it does not run natively'}")
    return target
