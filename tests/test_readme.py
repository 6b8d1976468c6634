"""Every command line in the README's ```sh blocks runs, in order, in one scratch folder, as a user
going through the README would: exactly as written, or through a fast equivalent with the same flags
(the tiny model instead of the 2B4T shapes, a few steps instead of thousands, this machine's SIMD
target instead of one it lacks).

A README line that no entry of FAST knows fails the test: add an entry saying how to run it quickly.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL_2B4T = "bitnet-b1.58-2b4t"


def native_target() -> str:
    from ternkit.codegen.targets import best_native_target

    return best_native_target().name


def runnable_here(target: str) -> bool:
    from ternkit.codegen.targets import get_target

    t = get_target(target)
    return t.unavailable_reason() is None and (t.runs_natively() or target == "neon")


def on_this_machine(cmd: str) -> str:
    """`--target X` -> this machine's best target when X cannot run here (avx512 on an AVX2 machine)."""
    m = re.search(r"--target (\S+)", cmd)
    if m and not runnable_here(m.group(1)):
        cmd = cmd.replace(m.group(0), f"--target {native_target()}")
    return cmd


def tiny(cmd: str) -> str:
    return cmd.replace(MODEL_2B4T, "tiny")


@dataclass
class Fast:
    """README lines matching `pattern` (the whole line, comments and line continuations removed) run as
    `fast(line)`; `fast=None` means the line is covered elsewhere (`why` says where)."""

    pattern: str
    fast: Callable[[str], str] | None
    why: str


FAST = [
    Fast(r"make run", lambda c: "ternkit run --prompt 8 --decode 4",
         "what `make run` runs, in the venv running these tests; shorter prompt"),
    Fast(r"make test", None, "`make test` is this test suite"),
    Fast(r"make -C \S+( CC=\S+)?", lambda c: c, "builds generated code: as written"),
    Fast(r"out/model_runtime out/weights\.bin( --threads \d+ --generate \d+)?[\d ]+", lambda c: c, "as written"),
    Fast(r"qemu-aarch64 -L \S+ arm/model_runtime arm/weights\.bin[\d ]+", lambda c: c, "as written"),
    Fast(r"ternkit (generate|validate) [\w./-]+ .*", lambda c: on_this_machine(tiny(c)), "tiny instead of 2B4T"),
    Fast(r"ternkit tune .*", lambda c: on_this_machine(re.sub(r"--tokens \S+", "--tokens 1", tiny(c)))
         + " --dram-mb 0", "tiny, one token count, no DRAM pass"),
    Fast(r"ternkit bench .*", lambda c: on_this_machine(re.sub(r"--tokens \S+", "--tokens 1,4", tiny(c)))
         + " --repeat 2 --dram-mb 0 --no-scalar", "tiny, 2 repeats, no DRAM pass, no scalar"),
    Fast(r"ternkit simulate .*", lambda c: c, "as written (the 2B4T simulation takes ~0.2 s)"),
    Fast(r"ternkit speed .*", lambda c: tiny(c) + " --prompt 4 --decode 2",
         "tiny, a short prompt (2B4T in C is tests/test_realsize.py's slow test)"),
    Fast(r"ternkit sweep .*", lambda c: tiny(c).replace("/sweep.yaml", "/sweep-fast.yaml"),
         "tiny, and the grid cut to 4 points (written beside it by the test)"),
    Fast(r"(OMP_NUM_THREADS=1 )?ternkit train --experiment \w+ --steps \d+ --out \S+",
         lambda c: re.sub(r"--steps \d+", "--steps 2", c) + " --no-progress", "2 steps instead of 3000"),
    Fast(r"python benchmarks/pool_oversubscribe\.py", lambda c: c + " --help", "its options only (it times for minutes)"),
    Fast(r"git clone https://github\.com/microsoft/BitNet (\S+)",
         lambda c: f"cp -r {ROOT}/tests/data/fake-bitnet-cpp {c.split()[-1]}",
         "no network in tests: the stand-in checkout (tests/data/fake-bitnet-cpp) in its place"),
    Fast(r"python benchmarks/avx2_kernels\.py .*--bitnet-cpp \S+.*",
         lambda c: re.sub(r"--bitnet-cpp \S+", f"--bitnet-cpp {ROOT}/tests/data/fake-bitnet-cpp", c)
         + " --shapes 128x256 --tokens 1,4 --repeat 1 --dram-mb 8",
         "one small shape, one round, a stand-in bitnet.cpp checkout (tests/data/fake-bitnet-cpp)"),
    Fast(r"python benchmarks/avx2_kernels\.py( .*)?", lambda c: c + " --shapes 128x256 --tokens 1,4 --repeat 1 --dram-mb 8",
         "one small shape, one round"),
    Fast(r"python benchmarks/avx512_loops\.py( .*)?", lambda c: c, "as written (static analysis, a few seconds)"),
    Fast(r"python benchmarks/port_limits\.py( .*)?", lambda c: c + " --shape 256x512 --tokens 8 --repeat 1",
         "a small shape, one repeat"),
    Fast(r"python benchmarks/kernel_perf\.py( .*)?",
         lambda c: c + " --shapes 128x256 --tokens 1,4 --threads 1 --repeat 2 --dram-mb 8 --no-scalar --out kernel_perf.txt",
         "one small shape, few repeats"),
]


def readme_commands(text: str) -> list[list[str]]:
    """The commands of every ```sh block, one list per line (`a && b` is two commands that run only
    together): continuations joined, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            chain, cmd = [], []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word != "&&":
                    cmd.append(word)
                elif cmd:
                    chain.append(shlex.join(cmd))
                    cmd = []
            if chain:
                lines.append(chain)
    return lines


def fast_form(cmd: str) -> Fast:
    found = [f for f in FAST if re.fullmatch(f.pattern, cmd)]
    assert found, (f"README command {cmd!r} has no entry in FAST (tests/test_readme.py): add one saying how "
                   "to run it in a few seconds (e.g. the tiny model, fewer steps), so README commands cannot rot")
    return found[0]


def test_every_readme_command_is_known():
    lines = readme_commands((ROOT / "README.md").read_text())
    assert len(lines) > 10
    for cmd in (c for chain in lines for c in chain):
        fast_form(cmd)


def test_commands_parse_like_a_shell():
    text = "```sh\nmake -C out && out/model_runtime out/weights.bin 1 2   # note\nternkit a \\\n    --b c\n```\n"
    assert readme_commands(text) == [["make -C out", "out/model_runtime out/weights.bin 1 2"], ["ternkit a --b c"]]
    with pytest.raises(AssertionError, match="has no entry in FAST"):
        fast_form("ternkit frobnicate bitnet-b1.58-2b4t")


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    """All of them, in README order, in one folder (later commands use earlier ones' outputs)."""
    for name in ("examples", "benchmarks"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "ternkit").symlink_to(ROOT / "ternkit")      # configs named by path, e.g. ternkit/sim/configs
    grid = yaml.safe_load((ROOT / "examples/npu/sweep.yaml").read_text())
    grid["grid"] = {k: v[:2] if i < 2 else v[:1] for i, (k, v) in enumerate(grid["grid"].items())}
    (tmp_path / "examples/npu/sweep-fast.yaml").write_text(yaml.safe_dump(grid))
    bin_dir = tmp_path / ".bin"                               # `ternkit` and `python` = this interpreter
    bin_dir.mkdir()
    for name, run in (("ternkit", f"{sys.executable} -m ternkit"), ("python", sys.executable)):
        (bin_dir / name).write_text(f"#!/bin/sh\nexec {run} \"$@\"\n")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    skipped = []
    for chain in readme_commands((ROOT / "README.md").read_text()):
        for cmd in chain:
            missing = run_fast(cmd, tmp_path, env)
            if missing:
                skipped.append(f"{' && '.join(chain)} ({missing} not installed)")
                break                                         # the rest of an && chain needs this one
    if skipped:
        pytest.skip("every other README command ran; not here: " + "; ".join(skipped))


def run_fast(cmd: str, cwd: Path, env: dict) -> str | None:
    """Run the fast form of one README command; returns the missing tool's name instead when one is."""
    form = fast_form(cmd)
    if form.fast is None:
        return None
    run = form.fast(cmd)
    words = shlex.split(run)
    while "=" in words[0]:                                    # VAR=value prefixes
        key, _, value = words.pop(0).partition("=")
        env = {**env, key: value}
    tool = next((w.removeprefix("CC=") for w in words if w.startswith("CC=")), words[0])
    if "/" not in tool and shutil.which(tool, path=env["PATH"]) is None:
        return tool
    r = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"README command failed: {cmd}\n(ran: {run})\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr, r.stderr
    return None
