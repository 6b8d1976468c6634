"""An `Isa`: what a target's C needs from a CPU (architecture, feature flags, compiler flags) and how a
machine without it can still build and run that C (SIMDe emulation in-process, a cross compiler + a
user-mode emulator for programs). Targets declare one; the toolchain and the host checks read it."""

from __future__ import annotations

from dataclasses import dataclass

from ternkit.toolchain import cpu

ARCH_NAMES = {cpu.X86: "an x86-64", cpu.ARM64: "an AArch64"}


@dataclass(frozen=True)
class Cross:
    """Building for the ISA elsewhere: a cross compiler, and a user-mode emulator running its programs."""

    cc: str                     # e.g. aarch64-linux-gnu-gcc
    emulator: str               # e.g. qemu-aarch64
    sysroot: str                # where the emulator finds the target's shared libraries (-L)
    packages: tuple[str, ...]   # Debian packages providing cc, then the emulator

    def runner(self) -> tuple[str, ...]:
        return (self.emulator, "-L", self.sysroot)


@dataclass(frozen=True)
class Isa:
    name: str                          # AVX2, AVX-512, NEON, C
    flags: tuple[str, ...] = ()        # compiler flags enabling it (-mavx2, -march=armv8.2-a+dotprod)
    arches: tuple[str, ...] = ()       # cpu.machine() values that can run it; () = any
    features: tuple[str, ...] = ()     # cpu.flags() it needs
    simde: bool = False                # SIMDe emulates it elsewhere (the templates' TERNKIT_SIMDE branch)
    cross: Cross | None = None         # cross-building + emulating programs on other machines
    instead: str = "scalar"            # the target to suggest when this machine cannot run it

    def missing(self, target: str) -> str | None:
        """Why this machine cannot run the ISA natively (None when it can)."""
        if self.arches and cpu.machine() not in self.arches:
            return f"the {target} target needs {ARCH_NAMES.get(self.arches, 'a different')} CPU, this is {cpu.machine()}"
        have = cpu.flags()
        lacking = [f for f in self.features if f not in have]
        if len(lacking) == 1 and len(self.features) == 1:
            return f"this CPU has no {self.name} (no {lacking[0]!r} in /proc/cpuinfo flags)"
        if lacking:
            return (f"this CPU lacks {', '.join(lacking)} (not in /proc/cpuinfo flags), which the {target} "
                    "target needs")
        return None
