"""The neon target: tl1/tl2 (vqtbl1q_s8) and i2 (vdotq_s32) kernels, bit-exact on any shape, checked
two ways: compiled for this machine through SIMDe (in-process, via cffi), and cross-compiled with
aarch64-linux-gnu-gcc -static and run under qemu-aarch64 (all cases batched into one qemu process)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import EDGE_CASES, activations, assert_exact, case, run_cases, weights
from ternkit.cli import main
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.errors import ToolchainError
from ternkit.runtime.cross import SENTINEL, run_cross
from ternkit.toolchain import cross_toolchain

NEON = get_target("neon")


def _cross_available() -> bool:
    try:
        cross_toolchain(NEON.isa, NEON.cflags()).check()
        return True
    except ToolchainError:
        return False


needs_cross = pytest.mark.skipif(not _cross_available(), reason="aarch64-linux-gnu-gcc / qemu-aarch64 missing")


def via_qemu(plan, target, calls):
    return run_cross(plan, target, calls)


def test_neon_simde_edge_cases_bit_exact():
    assert_exact(run_cases(NEON, NEON.formats, EDGE_CASES, threads=2))


@given(st.lists(case, min_size=3, max_size=6))
@settings(max_examples=3, deadline=None, derandomize=True)
def test_neon_simde_random_shapes_bit_exact(cases):
    assert_exact(run_cases(NEON, NEON.formats, cases))


@needs_cross
@given(st.lists(case, min_size=8, max_size=12))
@settings(max_examples=1, deadline=None, derandomize=True)
def test_neon_qemu_bit_exact(cases):
    # one cross build + one qemu process for the edge cases and a batch of random shapes
    assert_exact(run_cases(NEON, NEON.formats, EDGE_CASES + cases, compile_and_run=via_qemu))


@needs_cross
def test_neon_qemu_writes_only_columns_m0_m1():
    rng = np.random.default_rng(3)
    specs = [NEON.specialise(KernelSpec(M=70, K=50, N=2, weight_format=f)) for f in NEON.formats]
    plan = Plan("neon", "test", specs)
    w = weights("random", 70, 50, rng)
    x = activations("random", 2, 50, rng)
    ref = x.astype(np.int32) @ w.astype(np.int32).T
    calls = [(s, w, x, 32, 64) if s.tile("m_block") == 32 else (s, w, x, 5, 40) for s in specs]
    for (s, _, _, m0, m1), y in zip(calls, run_cross(plan, NEON, calls)):
        np.testing.assert_array_equal(y[:, m0:m1], ref[:, m0:m1])
        assert (y[:, :m0] == SENTINEL).all() and (y[:, m1:] == SENTINEL).all(), s.name


@needs_cross
def test_neon_generated_makefile_cross_builds(tmp_path):
    out = tmp_path / "neon"
    assert main(["generate", "tiny", "--target", "neon", "--tokens", "1,8", "-o", str(out)]) == 0
    text = (out / "Makefile").read_text()
    assert "-march=armv8.2-a+dotprod" in text and "-Werror" in text
    if shutil.which("make"):
        r = subprocess.run(["make", "CC=aarch64-linux-gnu-gcc"], cwd=out, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        file = subprocess.run(["file", str(out / "ternkit_kernels.o")], capture_output=True, text=True).stdout \
            if shutil.which("file") else "aarch64"
        assert "aarch64" in file.lower() or "arm" in file.lower()
