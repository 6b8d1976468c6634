"""Every way ternkit compiles C, in one place:

- in-process with cffi for this machine (`build_module`, content-hash cached): kernels, the thread
  pool, the bench roofline, the C NPU model. Natively with the ISA's flags, or, for an ISA this CPU
  lacks, through SIMDe (`simde_flags`: its intrinsics emulated in portable C, bit-exact, slow);
- programs (`Toolchain`): the standalone runtime and the cross-build test driver, natively or with a
  cross compiler whose output runs under a user-mode emulator (qemu).

All of them compile with `WARNINGS`."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ternkit.errors import TernkitError, ToolchainError
from ternkit.toolchain.isa import Isa

WARNINGS = ("-Wall", "-Wextra", "-Werror")


def compiler() -> str:
    return os.environ.get("CC", "gcc")


def simde_include() -> str | None:
    """The include folder of SIMDe's headers (the simde-py package), None when it is not installed."""
    try:
        import simde_py
    except ImportError:
        return None
    return simde_py.get_include()


@dataclass(frozen=True)
class CFlags:
    flags: tuple[str, ...]
    include_dirs: tuple[str, ...] = ()


def native_flags(isa: Isa, opt: str = "-O3") -> CFlags:
    return CFlags((opt, *isa.flags))


def simde_flags() -> CFlags:
    """Build a template's TERNKIT_SIMDE branch: the ISA's intrinsics from SIMDe's portable C. -O1 -g0:
    SIMDe's headers are large and these builds are for correctness, not speed (they compile 4x faster);
    -Wno-psabi: SIMDe passes 512-bit vectors by value, which gcc notes when AVX-512 is not enabled."""
    include = simde_include()
    if include is None:
        raise ToolchainError("SIMDe is not installed: pip install simde-py")
    return CFlags(("-O1", "-g0", "-DTERNKIT_SIMDE", "-Wno-psabi"), (include,))


@dataclass(frozen=True)
class Toolchain:
    """Builds and runs C programs for one ISA: `cc` with `cflags`; `runner` (an emulator) prefixes the
    program when it cannot run here natively."""

    cc: str
    cflags: tuple[str, ...]
    runner: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()   # Debian packages providing cc and the runner

    def check(self) -> None:
        for exe in (self.cc.split()[0], *self.runner[:1]):
            if shutil.which(exe) is None:
                hint = f"apt-get install {' '.join(self.packages)}" if self.packages else "see .ci/run"
                raise ToolchainError(f"{exe!r} not found: install it ({hint})")

    def compile(self, folder: Path, sources: list[str], output: str, *, extra: tuple[str, ...] = (),
                libs: tuple[str, ...] = ()) -> Path:
        """Compile `sources` (relative to `folder`) into the program `folder/output`."""
        self.check()
        cmd = [*self.cc.split(), *self.cflags, *WARNINGS, *extra, *sources, *libs, "-o", output]
        done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        if done.returncode:
            raise TernkitError(f"compiling {output} failed: {' '.join(cmd)}\n{done.stderr.strip()[-2000:]}")
        return folder / output

    def run(self, program: Path, args: list[str], *, timeout: float = 300) -> str:
        """Run a built program (under the emulator when there is one); its stdout."""
        done = subprocess.run([*self.runner, str(program), *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise TernkitError(f"{program.name} failed (exit {done.returncode}): {done.stderr.strip()}")
        return done.stdout


def native_toolchain(cflags: tuple[str, ...] = ()) -> Toolchain:
    return Toolchain(compiler(), cflags)


def program_toolchain(isa: Isa, cflags: tuple[str, ...], target: str) -> Toolchain:
    """The toolchain building `isa` programs: native when this CPU runs the ISA, else its cross compiler
    and emulator; refused with the reason when neither exists."""
    missing = isa.missing(target)
    if missing is None:
        return native_toolchain(cflags)
    if isa.cross is None:
        raise ToolchainError(f"{missing}, and ternkit knows no cross toolchain for it")
    return cross_toolchain(isa, cflags)


def cross_toolchain(isa: Isa, cflags: tuple[str, ...]) -> Toolchain:
    """The ISA's cross compiler and emulator, whatever this machine is (tests run both ways)."""
    if isa.cross is None:
        raise ToolchainError(f"no cross toolchain for {isa.name}")
    c = isa.cross
    return Toolchain(c.cc, cflags, c.runner(), c.packages)
