"""The avx512 target: i2 VNNI GEMV and unpack-once GEMM and tl2 vpermb lookups, bit-exact on any shape,
any tiling (run natively, or through SIMDe on CPUs without AVX-512)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import EDGE_CASES, assert_exact, case, run_cases
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.cli import main
from ternkit.codegen import ctarget
from ternkit.codegen.targets import best_native_target, get_target, native_target
from ternkit.codegen.targets.avx512 import Avx512Target
from ternkit.errors import TernkitError, ToolchainError
from ternkit.runtime.kernels import compile_plan
from ternkit.toolchain import cpu

AVX512 = get_target("avx512")
# bit-exactness runs everywhere the kernels build: natively, or through SIMDe on CPUs without AVX-512
buildable = pytest.mark.skipif(AVX512.unavailable_reason() is not None, reason=str(AVX512.unavailable_reason()))
needs_avx512 = pytest.mark.skipif(not AVX512.runs_natively(), reason=str(AVX512.isa.missing("avx512")))


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


@buildable
@pytest.mark.parametrize("tiling", [{}, {"gemm_min": 2, "gemm_rows": 5, "gemm_tb": 3, "mc": 16, "rows": 3},
                                    {"gemm_min": 4, "gemm_rows": 8, "gemm_tb": 1, "mc": 24, "rows": 8}])
def test_avx512_edge_cases_bit_exact(tiling):
    cases = EDGE_CASES + [(70, 300, 40, "random", "min"), (7, 513, 17, "minus", "min"), (1, 1, 33, "plus", "min")]
    assert_exact(run_cases(Tiled(**tiling), ["i2"], cases, threads=3))


@buildable
@given(st.lists(case, min_size=3, max_size=6), st.sampled_from([1, 2, 4]), st.sampled_from([2, 4, 7]),
       st.sampled_from([256, 512]))
@settings(max_examples=4, deadline=None, derandomize=True)
def test_avx512_random_shapes_bit_exact(cases, rows, gemm_rows, kc):
    t = Tiled(gemm_min=2, rows=rows, gemm_rows=gemm_rows, gemm_tb=2, mc=16, kc=kc)
    assert_exact(run_cases(t, ["i2"], cases))


# (tiling, M, K, n, K blocks, token blocks the GEMM runs through: checked against the kernel context)
K_BLOCKED = [
    ({"kc": 256, "gemm_rows": 5, "gemm_tb": 1, "mc": 16}, 37, 700, 33, 3, 1),      # K = 700: last block 188 of 256
    ({"kc": 1024, "gemm_rows": 6, "gemm_tb": 2, "mc": 48}, 13, 2560, 40, 3, 1),    # 1024 + 1024 + 512
    ({"kc": 512, "gemm_rows": 7, "gemm_tb": 3, "mc": 24}, 50, 1300, 17, 3, 1),     # 1300 = 512 + 512 + 276
    ({"kc": 4096, "gemm_rows": 4, "gemm_tb": 2, "mc": 16}, 9, 8400, 70, 3, 2),     # 4096 + 4096 + 256; 64 + 6 tokens
]


@buildable
@pytest.mark.parametrize("tiling, M, K, n, k_blocks, token_blocks", K_BLOCKED)
def test_avx512_i2_gemm_k_blocks_bit_exact(tiling, M, K, n, k_blocks, token_blocks):
    """The GEMM sums each K block into y (sums - xsum on the first, gather-add-scatter after): three K
    blocks with a short last one, K not a multiple of kc, n not a multiple of 16, M not a multiple of
    gemm_rows, several token blocks, +-1 everywhere against -128 / +127, two threads."""
    t = Tiled(gemm_min=2, **tiling)
    ctx = t.kernel_context(t.specialise(KernelSpec(M, K, n)))
    assert (-(-ctx["k_pad"] // ctx["kc"]), -(-n // ctx["nc"])) == (k_blocks, token_blocks)
    cases = [(M, K, n, "plus", "min"), (M, K, n, "minus", "min"), (M, K, n, "plus", "max"),
             (M, K, n, "random", "alternate"), (M, K, n, "random", "random")]
    assert_exact(run_cases(t, ["i2"], cases, threads=2))


@buildable
@pytest.mark.parametrize("chunk", [64, 85, 7])
def test_avx512_tl2_edge_cases_bit_exact(chunk):
    """tl2 in blocks of 64 rows: M not a multiple of 64, K not a multiple of 3, every int16 chunk bound, int8
    sums of 5 groups at their bound (all weights one sign against x = -128, where h = -8, and x = 120, where
    l = -8 and h = 8), K leaving 1-4 groups after the last 5."""

    class Chunked(Avx512Target):
        def specialise(self, spec):
            return super().specialise(KernelSpec(spec.M, spec.K, spec.N, weight_format=spec.weight_format,
                                                 tiling=(("chunk", chunk),)))

    cases = EDGE_CASES + [(65, 600, 2, "plus", "min"), (130, 1000, 1, "minus", "min"), (64, 256, 3, "plus", "max"),
                          (70, 300, 1, "plus", "split_max"), (64, 777, 2, "minus", "split_max"),
                          (3, 3 * 85 * 3 - 2, 1, "minus", "split_max")]
    assert_exact(run_cases(Chunked(), ["tl2"], cases, threads=3))


@buildable
@given(st.lists(case, min_size=3, max_size=6))
@settings(max_examples=3, deadline=None, derandomize=True)
def test_avx512_tl2_random_shapes_bit_exact(cases):
    assert_exact(run_cases(AVX512, ["tl2"], cases))


def test_avx512_refuses_bad_tiling_and_cpu_without_vnni(monkeypatch):
    with pytest.raises(TernkitError, match="rows must be one of"):
        AVX512.specialise(KernelSpec(4, 4, 1, tiling=(("rows", 5),)))
    with pytest.raises(TernkitError, match=r"kc must be one of \[256, 512,"):
        AVX512.specialise(KernelSpec(4, 4, 64, tiling=(("kc", 300),)))
    with pytest.raises(TernkitError, match="28 accumulators"):
        AVX512.specialise(KernelSpec(4, 4, 1, tiling=(("gemm_rows", 8), ("gemm_tb", 4))))
    monkeypatch.setattr(cpu, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu, "flags", lambda: frozenset({"avx2", "avx512f"}))
    with pytest.raises(ToolchainError, match="lacks avx512bw, avx512_vnni, avx512vbmi"):
        native_target("avx512", "bench")      # emulation (SIMDe) is for tests, never for timings
    assert best_native_target().name != "avx512"
    monkeypatch.setattr(ctarget, "simde_include", lambda: None)   # without SIMDe it cannot even build
    spec = AVX512.specialise(KernelSpec(4, 4, 1))
    with pytest.raises(ToolchainError, match="lacks avx512bw, avx512_vnni, avx512vbmi"):
        compile_plan(Plan("avx512", "t", [spec]))


@buildable
def test_avx512_large_k_shifts_codes_instead():
    """Past IN_PLACE_MAX_K the 64 * code products could overflow int32 sums: the kernel shifts instead."""
    from ternkit.codegen.targets.avx512 import IN_PLACE_MAX_K

    K = IN_PLACE_MAX_K + 300
    assert not AVX512.kernel_context(AVX512.specialise(KernelSpec(3, K, 1)))["in_place"]
    assert_exact(run_cases(AVX512, ["i2"], [(3, K, 1, "plus", "min"), (2, K, 17, "minus", "min")]))


@pytest.mark.skipif(shutil.which("make") is None or cpu.machine() not in cpu.X86, reason="needs make on x86-64")
def test_avx512_generated_library_compiles_with_real_flags(tmp_path):
    """Compile-only on any x86-64 machine: the emitted Makefile builds every avx512 kernel with the real
    -mavx512* flags and -Werror (the SIMDe build above runs them)."""
    out = tmp_path / "avx512"
    for fmt in AVX512.formats:
        assert main(["generate", "tiny", "--target", "avx512", "--format", fmt, "--tokens", "1,32", "-o", str(out),
                     "--force"]) == 0
        text = (out / "Makefile").read_text()
        assert "-mavx512vnni" in text and "-Werror" in text
        r = subprocess.run(["make"], cwd=out, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@buildable
def test_avx512_b3_bit_exact():
    assert_exact(run_cases(AVX512, ["b3"], EDGE_CASES + [(9, 2560, 2, "plus", "min"), (70, 961, 3, "random", "random")],
                           threads=3))
