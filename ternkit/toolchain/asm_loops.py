"""Static checks of generated kernels' machine code, for ISAs this machine may not run: compile C to
assembly (`gcc -S`), find the innermost loops, count what is wasted in them (vector register-to-register
copies, spills) and ask `llvm-mca` what a CPU model predicts for one pass.

Only for inspection (tests, benchmarks/avx512_loops.py): nothing here is timed, and llvm-mca's cycles
are a model's prediction (steady state, every load hitting L1), not a measurement."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ternkit.errors import ToolchainError
from ternkit.toolchain import compiler

_FUNCTION = re.compile(r"^([A-Za-z_][\w.]*):")
_LABEL = re.compile(r"^(\.L\w+):")
_JUMP = re.compile(r"^\s+j\w+\s+(\.L\w+)\s*$")
# a whole-register vector copy (zmm / ymm / xmm, any of the move mnemonics gcc uses for one)
_VEC_COPY = re.compile(r"^v?movdq[au](?:8|16|32|64)?\s+%([xyz]mm\d+),\s*%([xyz]mm\d+)$")
_STACK_STORE = re.compile(r",\s*-?\w*\(%r[sb]p[^)]*\)$")   # AT&T: the destination is the last operand
_MCA_CPUS = ("sapphirerapids", "znver4")


@dataclass(frozen=True)
class Loop:
    function: str
    label: str
    instructions: tuple[str, ...]   # AT&T syntax, one a line, from the loop's label to its back-branch

    def count(self, mnemonic: str) -> int:
        return sum(1 for i in self.instructions if i.split()[0] == mnemonic)

    def destinations(self, mnemonic: str) -> set[str]:
        """The registers the `mnemonic` instructions write (AT&T: the last operand)."""
        return {i.split(",")[-1].strip() for i in self.instructions if i.split()[0] == mnemonic}

    @property
    def vector_copies(self) -> tuple[str, ...]:
        """Moves of a whole vector register into another (not masked, not to or from memory)."""
        return tuple(i for i in self.instructions if _VEC_COPY.match(i))

    @property
    def spills(self) -> tuple[str, ...]:
        """Stores to the stack (the kernels' hot loops write no stack arrays, so these are spills; loads
        from the stack may be arrays the kernel keeps there, and are not counted)."""
        return tuple(i for i in self.instructions if _STACK_STORE.search(i))


def compile_to_asm(source: str, flags: tuple[str, ...]) -> str:
    """gcc's assembly of `source` (one translation unit) compiled with `flags`."""
    cc = compiler()
    if shutil.which(cc) is None:
        raise ToolchainError(f"no C compiler {cc!r}: install gcc (or set CC)")
    with tempfile.TemporaryDirectory(prefix="ternkit-asm-") as tmp:
        src, out = Path(tmp) / "k.c", Path(tmp) / "k.s"
        src.write_text(source)
        r = subprocess.run([cc, *flags, "-S", str(src), "-o", str(out)], capture_output=True, text=True)
        if r.returncode != 0:
            last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit status {r.returncode}"
            raise ToolchainError(f"{cc} -S failed: {last}")
        return out.read_text()


def innermost_loops(asm: str) -> list[Loop]:
    """Every loop of gcc's assembly that contains no other one: a label and a later jump back to it in
    the same function, with no such pair inside."""
    loops = []
    for name, lines in _functions(asm).items():
        labels, spans = {}, []
        for i, line in enumerate(lines):
            if m := _LABEL.match(line):
                labels[m.group(1)] = i
            elif (m := _JUMP.match(line)) and m.group(1) in labels:
                spans.append((labels[m.group(1)], i))
        for a, b in spans:
            if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in spans):
                # an empty inline asm statement leaves a blank line between #APP and #NO_APP
                body = tuple(ln.strip() for ln in lines[a + 1:b + 1]
                             if ln.startswith("\t") and ln.strip() and not ln.strip().startswith((".", "#")))
                loops.append(Loop(name, lines[a].strip().rstrip(":"), body))
    return loops


def _functions(asm: str) -> dict[str, list[str]]:
    functions: dict[str, list[str]] = {}
    current = None
    for line in asm.splitlines():
        if (m := _FUNCTION.match(line)) and not line.startswith("."):
            current = m.group(1)
            functions[current] = []
        elif current is not None:
            functions[current].append(line)
    return functions


@functools.cache
def llvm_mca() -> str | None:
    """An llvm-mca that has scheduling models for every CPU in `_MCA_CPUS` (LLVM >= 17), newest first."""
    names = [f"llvm-mca-{v}" for v in range(30, 16, -1)] + ["llvm-mca"]
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        r = subprocess.run([path, "-mcpu=help"], capture_output=True, text=True, input="")
        if all(f" {cpu} " in r.stdout + r.stderr for cpu in _MCA_CPUS):
            return path
    return None


@dataclass(frozen=True)
class McaResult:
    cpu: str
    cycles: float          # predicted cycles for one pass through the loop, steady state
    bottleneck: str        # what llvm-mca's bottleneck analysis blames, "" when nothing


def mca(loop: Loop, cpu: str, iterations: int = 200) -> McaResult:
    """llvm-mca's prediction for `loop` run back to back `iterations` times on `cpu`."""
    tool = llvm_mca()
    if tool is None:
        raise ToolchainError("no llvm-mca with Sapphire Rapids / Zen 4 models: apt-get install llvm-19")
    r = subprocess.run([tool, f"-mcpu={cpu}", f"-iterations={iterations}", "-bottleneck-analysis"],
                       input="\n".join(loop.instructions) + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolchainError(f"llvm-mca failed on {loop.function} {loop.label}: {r.stderr.strip()[:200]}")
    total = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1))
    return McaResult(cpu, total / iterations, _bottleneck(r.stdout))


def _bottleneck(report: str) -> str:
    """The larger of the two causes llvm-mca's bottleneck analysis reports (the busiest port for resource
    pressure), with the share of cycles it costs; "" when it reports none."""
    resource = re.search(r"Resource Pressure\s+\[\s*([\d.]+)%", report)
    deps = re.search(r"Data Dependencies:\s+\[\s*([\d.]+)%", report)
    if not resource or not deps:
        return ""
    if float(resource.group(1)) >= float(deps.group(1)):
        ports = re.findall(r"^\s+- (\w+)\s+\[\s*([\d.]+)%", report[resource.end():deps.start()], re.M)
        port = max(ports, key=lambda p: float(p[1]))[0] if ports else "ports"
        return f"{port} {float(resource.group(1)):.0f}%"
    return f"dependencies {float(deps.group(1)):.0f}%"
