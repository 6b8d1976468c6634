"""The avx512 target: i2 VNNI GEMV and unpack-once GEMM bit-exact on any shape, any tiling."""

from __future__ import annotations

import platform
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import EDGE_CASES, assert_exact, case, run_cases
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import avx2, best_native_target, get_target
from ternkit.codegen.targets.avx512 import Avx512Target
from ternkit.errors import TernkitError, ToolchainError
from ternkit.runtime.kernels import compile_plan

AVX512 = get_target("avx512")
needs_avx512 = pytest.mark.skipif(AVX512.unavailable_reason() is not None, reason=str(AVX512.unavailable_reason()))


class Tiled(Avx512Target):
    """avx512 with a fixed non-default tiling (small GEMM threshold so the GEMM path runs on tiny n)."""

    def __init__(self, **tiling):
        object.__setattr__(self, "name", "avx512")
        object.__setattr__(self, "description", "")
        object.__setattr__(self, "_tiling", tiling)

    def specialise(self, spec):
        return super().specialise(KernelSpec(spec.M, spec.K, spec.N, weight_format=spec.weight_format,
                                             tiling=tuple(self._tiling.items())))


@needs_avx512
def test_avx512_is_best_native():
    assert best_native_target().name == "avx512"


@needs_avx512
@pytest.mark.parametrize("tiling", [{}, {"gemm_min": 2, "gemm_rows": 5, "gemm_tb": 3, "mc": 16, "rows": 3},
                                    {"gemm_min": 4, "gemm_rows": 8, "gemm_tb": 1, "mc": 24, "rows": 8}])
def test_avx512_edge_cases_bit_exact(tiling):
    cases = EDGE_CASES + [(70, 300, 40, "random", "min"), (7, 513, 17, "minus", "min"), (1, 1, 33, "plus", "min")]
    assert_exact(run_cases(Tiled(**tiling), ["i2"], cases, threads=3))


@needs_avx512
@given(st.lists(case, min_size=3, max_size=6), st.sampled_from([1, 2, 4]), st.sampled_from([2, 4, 7]))
@settings(max_examples=4, deadline=None, derandomize=True)
def test_avx512_random_shapes_bit_exact(cases, rows, gemm_rows):
    t = Tiled(gemm_min=2, rows=rows, gemm_rows=gemm_rows, gemm_tb=2, mc=16)
    assert_exact(run_cases(t, ["i2"], cases))


def test_avx512_refuses_bad_tiling_and_cpu_without_vnni(monkeypatch):
    with pytest.raises(TernkitError, match="rows must be one of"):
        AVX512.specialise(KernelSpec(4, 4, 1, tiling=(("rows", 5),)))
    with pytest.raises(TernkitError, match="28 accumulators"):
        AVX512.specialise(KernelSpec(4, 4, 1, tiling=(("gemm_rows", 8), ("gemm_tb", 4))))
    monkeypatch.setattr(avx2.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr("ternkit.codegen.targets.avx512.cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    spec = AVX512.specialise(KernelSpec(4, 4, 1))
    with pytest.raises(ToolchainError, match="lacks avx512bw, avx512_vnni, avx512vbmi"):
        compile_plan(Plan("avx512", "t", [spec]))
    assert best_native_target().name != "avx512"


@needs_avx512
def test_avx512_large_k_shifts_codes_instead():
    """Past IN_PLACE_MAX_K the 64 * code products could overflow int32 sums: the kernel shifts instead."""
    from ternkit.codegen.targets.avx512 import IN_PLACE_MAX_K

    K = IN_PLACE_MAX_K + 300
    assert not AVX512.kernel_context(AVX512.specialise(KernelSpec(3, K, 1)))["in_place"]
    assert_exact(run_cases(AVX512, ["i2"], [(3, K, 1, "plus", "min"), (2, K, 17, "minus", "min")]))


@pytest.mark.skipif(shutil.which("gcc") is None or platform.machine().lower() not in avx2.X86, reason="needs gcc on x86-64")
def test_avx512_kernels_compile_on_any_x86(tmp_path):
    """Compile-only (this machine may lack AVX-512): every avx512 format and both i2 paths build with the
    target's flags and -Wall -Wextra -Werror."""
    from ternkit.codegen.library import cffi_source

    specs = [AVX512.specialise(KernelSpec(M, K, n, weight_format=f))
             for f in AVX512.formats for M, K, n in ((64, 2560, 1), (37, 1000, 64), (5, 7, 3))]
    _, source = cffi_source(Plan("avx512", "t", specs), AVX512)
    (tmp_path / "k.c").write_text(source)
    r = subprocess.run(["gcc", *AVX512.cflags(), "-Wall", "-Wextra", "-Werror", "-c", "k.c", "-o", "k.o"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


@needs_avx512
def test_avx512_b3_bit_exact():
    assert_exact(run_cases(AVX512, ["b3"], EDGE_CASES + [(9, 2560, 2, "plus", "min"), (70, 961, 3, "random", "random")],
                           threads=3))
