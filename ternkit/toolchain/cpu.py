"""What this machine's CPU is: its architecture, feature flags and model name, read once.

Linux reports all three in /proc/cpuinfo (x86 `flags` / `model name`, AArch64 `Features`); elsewhere the
flags are unknown (empty) and the model name falls back to `platform`."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

X86 = ("x86_64", "amd64", "i686", "i386")
ARM64 = ("aarch64", "arm64")


def machine() -> str:
    """The architecture as `platform.machine()` names it, lower case (x86_64, aarch64, ...)."""
    return platform.machine().lower()


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first value of each key of /proc/cpuinfo (every core reports the same); {} when unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip().lower(), value.strip())
    return info


def flags() -> frozenset[str]:
    """The CPU feature flags (x86: avx2, avx512f, avx512_vnni, ...; AArch64: asimd, asimddp, ...)."""
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("features") or "").split())


def model_name() -> str:
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or machine()
