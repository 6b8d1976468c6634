"""Code generation: registry, formats, scalar kernels, emitted library, CLI generate/validate."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import EDGE_CASES, assert_exact, case, run_cases
from ternkit import formats
from ternkit.cli import main
from ternkit.codegen.library import emit_library
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import best_native_target, get_target, target_names
from ternkit.errors import ShapeError, TernkitError
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.kernels import compile_plan


def test_registry_finds_targets_and_rejects_unknown():
    assert {"scalar", "avx2", "neon"} <= set(target_names())
    assert get_target("scalar").name == "scalar"
    with pytest.raises(TernkitError, match="unknown target 'z80'.*scalar"):
        get_target("z80")
    assert best_native_target().unavailable_reason() is None


@pytest.mark.parametrize("fmt", formats.KERNEL_FORMATS)
@pytest.mark.parametrize("m_block", [1, 32])
@given(M=st.integers(1, 70), K=st.integers(1, 300), seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_pack_unpack_roundtrip(fmt, m_block, M, K, seed):
    if fmt == "i2" and m_block > 1:
        return
    w = np.random.default_rng(seed).integers(-1, 2, (M, K)).astype(np.int8)
    for k_align in (4, 64, 128) if fmt == "i2" else (4,):
        packed = formats.pack(fmt, w, m_block=m_block, k_align=k_align)
        assert packed.dtype == np.uint8 and packed.ndim == 1
        assert packed.size == formats.get_format(fmt).nbytes(M, K, m_block=m_block, k_align=k_align)
        np.testing.assert_array_equal(formats.unpack(fmt, packed, M, K, m_block=m_block, k_align=k_align), w)


def test_pack_documented_bits():
    # i2: code w+1, little end first; tl1: 3*(w0+1)+(w1+1), low nibble first; tl2: sign + canonical index
    w = np.array([[-1, 0, 1, 1, 0]], np.int8)
    assert list(formats.pack("i2", w)) == [0b10_10_01_00, 0b01_01_01_01]
    assert list(formats.pack("tl1", w)) == [(3 * 0 + 1) | ((3 * 2 + 2) << 4), 3 * 1 + 1]
    tl2 = formats.get_format("tl2")
    assert tl2.COMBOS.index((1, 0, -1)) == 8
    # (-1, 0, 1) = -(1, 0, -1): index 8, sign 1; (1, 0, pad 0): index 9, sign 0
    assert list(formats.pack("tl2", w)) == [8 | (9 << 4), 0b01]
    with pytest.raises(ShapeError, match="not ternary"):
        formats.pack("i2", np.full((2, 2), 2, np.int8))


def test_specialise_honours_preset_format():
    t = get_target("scalar")
    for fmt in formats.KERNEL_FORMATS:
        assert t.specialise(KernelSpec(4, 4, 1, weight_format=fmt)).weight_format == fmt
    assert t.specialise(KernelSpec(4, 4, 1)).weight_format == "i2"
    with pytest.raises(TernkitError, match="no 'q4' kernels"):
        t.specialise(KernelSpec(4, 4, 1, weight_format="q4"))


def test_scalar_edge_cases_bit_exact():
    assert_exact(run_cases(get_target("scalar"), formats.KERNEL_FORMATS, EDGE_CASES, threads=2))


@given(st.lists(case, min_size=3, max_size=6))
@settings(max_examples=3, deadline=None, derandomize=True)
def test_scalar_random_shapes_bit_exact(cases):
    assert_exact(run_cases(get_target("scalar"), formats.KERNEL_FORMATS, cases))


@pytest.fixture(scope="module")
def small_kernel():
    t = get_target("scalar")
    spec = t.specialise(KernelSpec(M=10, K=9, N=1, weight_format="tl1"))
    lib = compile_plan(Plan("scalar", "test", [spec]))
    w = np.random.default_rng(0).integers(-1, 2, (10, 9)).astype(np.int8)
    return lib.kernel(spec, w), w


def test_kernel_rejects_bad_input(small_kernel):
    kern, _ = small_kernel
    x = np.zeros((2, 9), np.int8)
    with pytest.raises(ShapeError, match="must be int8, got int16"):
        kern(x.astype(np.int16))
    with pytest.raises(ShapeError, match=r"must be \[n, 9\]"):
        kern(np.zeros((2, 8), np.int8))
    with pytest.raises(ShapeError, match="C-contiguous"):
        kern(np.zeros((9, 2), np.int8).T)
    with pytest.raises(ShapeError, match="numpy int8 array"):
        kern([[0] * 9])


def test_bound_call_is_the_checked_call_without_python(small_kernel):
    kern, w = small_kernel
    x = np.random.default_rng(1).integers(-128, 128, (3, 9)).astype(np.int8)
    out = np.zeros((3, 10), np.int32)
    run = kern.bound(x, out)
    x[:] = x[::-1].copy()          # bound to the buffers, not to their values at bind time
    run()
    np.testing.assert_array_equal(out, ternary_matmul(x, w))
    with pytest.raises(ShapeError, match="out must be C-contiguous int32"):
        kern.bound(x, np.zeros((3, 10), np.float32))
    with pytest.raises(ShapeError, match="must be int8"):
        kern.bound(x.astype(np.int16), out)


def test_kernel_threads_split_and_no_write_outside(small_kernel):
    kern, w = small_kernel
    x = np.random.default_rng(1).integers(-128, 128, (3, 9)).astype(np.int8)
    ref = x.astype(np.int32) @ w.astype(np.int32).T
    for threads in (1, 2, 3, 16, "auto"):
        np.testing.assert_array_equal(kern(x, threads=threads), ref)
    for parts in (1, 2, 3, 16):
        np.testing.assert_array_equal(kern.call_split(x, parts), ref)
    assert kern.split(3) == [(0, 3), (3, 6), (6, 10)]
    out = np.full((3, 10), 7, np.int32)
    kern._fn(kern._ffi.from_buffer("uint8_t[]", kern.packed), kern._ffi.from_buffer("int8_t[]", x),
             kern._ffi.from_buffer("int32_t[]", out), 3, 2, 5)
    assert (out[:, :2] == 7).all() and (out[:, 5:] == 7).all()
    np.testing.assert_array_equal(out[:, 2:5], ref[:, 2:5])


def test_emitted_header_documents_layout_and_prototypes():
    t = get_target("scalar")
    specs = [t.specialise(KernelSpec(5, 7, 1, weight_format=f)) for f in formats.KERNEL_FORMATS]
    files = emit_library(Plan("scalar", "m", specs), t)
    assert set(files) == {"ternkit_kernels.h", "ternkit_kernels.c", "Makefile"}
    h = files["ternkit_kernels.h"]
    for s in specs:
        assert f"void {s.name}(const uint8_t *w, const int8_t *x, int32_t *y, int32_t n, int32_t m0, int32_t m1);" in h
    assert "code = w + 1" in h and "3*(w0+1) + (w1+1)" in h and "sign bit" in h


def test_generate_refuses_nonempty_dir_and_force_keeps_users_files(tmp_path, capsys):
    out = tmp_path / "gen"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["generate", "tiny", "--target", "scalar", "-o", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    # --force replaces only what ternkit wrote: a folder holding the user's file is refused, untouched
    assert main(["generate", "tiny", "--target", "scalar", "-o", str(out), "--force", "--format", "tl2"]) == 2
    err = capsys.readouterr().err
    assert "keep.txt, which ternkit did not write" in err and err.count("\n") == 1
    assert (out / "keep.txt").read_text() == "mine" and len(list(out.iterdir())) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_generate_force_replaces_its_own_folder_and_make_builds(tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "tiny", "--target", "scalar", "-o", str(out), "--format", "tl1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".ternkit-manifest", "Makefile", "ternkit_kernels.c",
                                                     "ternkit_kernels.h"]
    if shutil.which("make"):
        r = subprocess.run(["make"], cwd=out, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert (out / "libternkit_kernels.a").exists()
    # what ternkit wrote and what its Makefile built may be replaced
    assert main(["generate", "tiny", "--target", "scalar", "-o", str(out), "--force", "--format", "tl2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".ternkit-manifest", "Makefile", "ternkit_kernels.c",
                                                     "ternkit_kernels.h"]
    assert "tl2" in (out / "ternkit_kernels.c").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp folders left behind


def test_generate_unknown_target_writes_nothing(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "tiny", "--target", "z80", "-o", str(out)]) == 2
    assert "unknown target 'z80'" in capsys.readouterr().err
    assert not out.exists()


def test_validate_cli_prints_table(capsys):
    assert main(["validate", "tiny", "--target", "scalar", "--format", "tl1", "--tokens", "1,3"]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "gemv_m352_k128_tl1_a8" in out and "all bit-exact" in out


def test_preset_tiling_is_checked():
    neon = get_target("neon")
    assert neon.specialise(KernelSpec(4, 4, 1, weight_format="tl2", tiling=(("chunk", 85),))).tile("chunk") == 85
    with pytest.raises(TernkitError, match="chunk must be in"):
        neon.specialise(KernelSpec(4, 4, 1, weight_format="tl2", tiling=(("chunk", 86),)))
    with pytest.raises(TernkitError, match="need m_block=32"):
        get_target("avx2").specialise(KernelSpec(4, 4, 1, weight_format="tl1", tiling=(("m_block", 16),)))


@pytest.mark.parametrize("name", ["scalar", "avx2", "neon"])
def test_corrupted_weights_are_caught(name):
    # the bit-exact comparison can fail: one flipped weight byte changes the result
    t = get_target(name)
    if t.unavailable_reason():
        pytest.skip(t.unavailable_reason())
    rng = np.random.default_rng(7)
    specs = [t.specialise(KernelSpec(M=33, K=70, N=1, weight_format=f)) for f in t.formats]
    lib = compile_plan(Plan(name, "test", specs), t)
    x = rng.integers(-128, 128, (2, 70)).astype(np.int8)
    w = rng.integers(-1, 2, (33, 70)).astype(np.int8)
    for spec in specs:
        kern = lib.kernel(spec, w)
        good = kern(x)
        np.testing.assert_array_equal(good, x.astype(np.int32) @ w.astype(np.int32).T)
        kern.packed[0] ^= 0x11
        assert not np.array_equal(kern(x), good), spec.name


def test_validate_needs_weights():
    from ternkit.runtime.validation import validate
    from ternkit.graph import load_model

    with pytest.raises(TernkitError, match="shapes only"):
        validate(load_model("bitnet-b1.58-2b4t"), "scalar")
