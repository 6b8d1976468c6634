"""The avx2 target: i2 (maddubs), b3, tl1 and tl2 (shuffle_epi8 lookups) bit-exact on any shape."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import EDGE_CASES, assert_exact, case, run_cases
from ternkit.cli import main
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import avx2, get_target
from ternkit.errors import TernkitError, ToolchainError
from ternkit.runtime.kernels import compile_plan
from ternkit.toolchain import cpu

AVX2 = get_target("avx2")
needs_avx2 = pytest.mark.skipif(AVX2.unavailable_reason() is not None, reason=str(AVX2.unavailable_reason()))


@needs_avx2
def test_avx2_edge_cases_bit_exact():
    assert_exact(run_cases(AVX2, AVX2.formats, EDGE_CASES, threads=3))


@needs_avx2
@given(st.lists(case, min_size=3, max_size=6))
@settings(max_examples=3, deadline=None, derandomize=True)
def test_avx2_random_shapes_bit_exact(cases):
    assert_exact(run_cases(AVX2, AVX2.formats, cases))


def test_avx2_refuses_other_formats_and_cpu_without_avx2(monkeypatch):
    with pytest.raises(TernkitError, match="avx2.*no 'tq2_0' kernels"):
        AVX2.specialise(KernelSpec(4, 4, 1, weight_format="tq2_0"))
    monkeypatch.setattr(cpu, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu, "flags", lambda: frozenset({"sse2", "avx"}))
    spec = AVX2.specialise(KernelSpec(4, 4, 1))
    with pytest.raises(ToolchainError, match="no AVX2"):
        compile_plan(Plan("avx2", "t", [spec]))


@needs_avx2
@pytest.mark.parametrize("fmt", ["tl1", "tl2"])
def test_avx2_generate_and_make(tmp_path, fmt):
    out = tmp_path / "avx2"
    assert main(["generate", "tiny", "--target", "avx2", "--format", fmt, "--tokens", "1,4", "-o", str(out)]) == 0
    assert "-mavx2" in (out / "Makefile").read_text()
    if shutil.which("make"):
        r = subprocess.run(["make"], cwd=out, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@needs_avx2
@pytest.mark.parametrize("fmt, chunk", [("tl1", 16), ("tl1", 127)])
def test_avx2_tuned_chunks_bit_exact(fmt, chunk):
    """Every chunk `ternkit tune` may pick for tl1 stays exact (int16 partial sums at their bound)."""
    assert {"chunk": chunk} in AVX2.tune_space(AVX2.specialise(KernelSpec(64, 300, 1, weight_format=fmt)))[0]

    class Chunked(avx2.Avx2Target):
        def specialise(self, spec):
            return super().specialise(KernelSpec(spec.M, spec.K, spec.N, weight_format=spec.weight_format,
                                                 tiling=(("chunk", chunk),)))

    assert_exact(run_cases(Chunked(), [fmt], [(33, 600, 2, "plus", "min"), (64, 1000, 1, "minus", "min"),
                                               (5, 255, 3, "random", "random")]))


@needs_avx2
@pytest.mark.parametrize("tiling", [
    {"gemm_min": 2, "gemm_rows": 3, "gemm_tb": 3, "mc": 24, "kc": 512},   # several K blocks and row blocks
    {"gemm_min": 2, "gemm_rows": 2, "gemm_tb": 6, "mc": 40, "kc": 1024},  # mc padded to 48: a padding group
    {"gemm_min": 2, "gemm_rows": 1, "gemm_tb": 12, "mc": 8, "kc": 384},   # a 256 + 128 K block
    {"gemm_min": 2, "gemm_rows": 2, "gemm_tb": 1, "mc": 16, "kc": 4096},  # int16 sums widened every 256
    {"gemm_min": 2, "gemm_rows": 1, "gemm_tb": 8, "mc": 16, "kc": 2048},
    {"rows": 3, "prefetch": 1024}, {"rows": 6}, {"rows": 1, "prefetch": 8192},   # GEMV row groups and their tails
])
def test_avx2_i2_tilings_bit_exact(tiling):
    """Every GEMV/GEMM tiling `ternkit tune` may pick stays exact: K blocks longer than the int16 bound
    (256 weights a widening), short last K blocks, partial row blocks and 8-row groups, row tiles and token tiles, several token blocks (n = 131 > the 128 tokens whose
    2048-weight K block fills the L2 panel), -128/+127 everywhere."""
    class Tiled(avx2.Avx2Target):
        def specialise(self, spec):
            return super().specialise(KernelSpec(spec.M, spec.K, spec.N, weight_format=spec.weight_format,
                                                 tiling=tuple(tiling.items())))

    cases = [(37, 2100, 7, "plus", "min"), (40, 4096, 5, "minus", "min"), (13, 1000, 2, "plus", "max"),
             (50, 129, 9, "random", "random"), (5, 2048, 1, "minus", "alternate"), (29, 300, 13, "sparse", "random"),
             (6, 4096, 131, "plus", "min"), (7, 2047, 3, "random", "alternate")]
    assert_exact(run_cases(Tiled(), ["i2"], cases, threads=2))


@needs_avx2
@pytest.mark.parametrize("tiling", [{"gemm_min": 2}, {"gemm_min": 2, "gemm_rows": 1, "gemm_tb": 12, "mc": 128, "kc": 384},
                                    {"gemm_min": 3, "gemm_rows": 2, "gemm_tb": 5, "mc": 64, "kc": 1024}])
def test_avx2_tl2_gemm_bit_exact(tiling):
    """The tl2 prefill GEMM (64-row blocks decoded into the shared broadcast tile): several K blocks (384
    = 16 units), a short last unit (K not a multiple of 24), K not a multiple of 3, rows past a 64-row
    block, token tails (n % gemm_tb), signs and -128/+127, two threads splitting M in 64-row blocks."""
    class Tiled(avx2.Avx2Target):
        def specialise(self, spec):
            return super().specialise(KernelSpec(spec.M, spec.K, spec.N, weight_format=spec.weight_format,
                                                 tiling=tuple(tiling.items())))

    cases = [(130, 3100, 7, "plus", "min"), (64, 3072, 6, "minus", "min"), (65, 1537, 13, "plus", "max"),
             (200, 2000, 64, "random", "alternate"), (1, 25, 2, "random", "random"), (129, 700, 5, "sparse", "min")]
    assert_exact(run_cases(Tiled(), ["tl2"], cases, threads=2))


def test_avx2_i2_gemm_token_blocks_fill_the_l2_panel():
    ctx = AVX2.kernel_context(AVX2.specialise(KernelSpec(64, 4096, 131, tiling=(("gemm_tb", 4), ("kc", 2048)))))
    assert (ctx["kc"], ctx["nc"]) == (2048, avx2.GEMM_X_PANEL // 2048)
    assert ctx["nc"] < 131 and ctx["nc"] % 4 == 0


@needs_avx2
@pytest.mark.parametrize("tiling", [{}, {"k_units": 1, "prefetch": 0}, {"k_units": 2, "prefetch": 512}, {"k_units": 8}])
def test_avx2_tl2_bit_exact_at_its_bounds(tiling):
    """tl2 at its int8 / int16 bounds: all weights one sign against x = -128 or 127 (every table entry
    +-24), K long enough for several int16 widenings and a short last unit, K chunks down to one unit,
    rows past a 64-row block, threads splitting M in 64-row blocks."""
    class Tiled(avx2.Avx2Target):
        def specialise(self, spec):
            return super().specialise(KernelSpec(spec.M, spec.K, spec.N, weight_format=spec.weight_format,
                                                 tiling=tuple(tiling.items())))

    assert {"prefetch": 4096} in AVX2.tune_space(AVX2.specialise(KernelSpec(64, 300, 1, weight_format="tl2")))[0]
    cases = [(130, 3100, 2, "plus", "min"), (64, 3072, 1, "minus", "min"), (65, 1537, 3, "plus", "max"),
             (200, 2000, 1, "minus", "alternate"), (1, 25, 2, "random", "random"), (129, 700, 1, "sparse", "min")]
    assert_exact(run_cases(Tiled(), ["tl2"], cases, threads=3))


def test_avx2_i2_refuses_a_tile_that_spills():
    with pytest.raises(TernkitError, match="16 ymm registers"):
        AVX2.specialise(KernelSpec(64, 256, 64, tiling=(("gemm_rows", 2), ("gemm_tb", 7))))
