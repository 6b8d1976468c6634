"""The bitnet.cpp I2_S baseline (ternkit.runtime.bitnet_cpp) against a stand-in checkout (tests/data/
fake-bitnet-cpp: a plain C++ implementation of the I2_S contract, layout and vec_dot dispatch as
bitnet.cpp documents them), so the driver, packing call, token blocking and sum(x) correction are
checked without bitnet.cpp's source."""

from pathlib import Path

import numpy as np
import pytest

from ternkit.errors import ShapeError, TernkitError
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime.bitnet_cpp import BitnetI2S, checkout

FAKE = Path(__file__).parent / "data" / "fake-bitnet-cpp"
CONFIG = (FAKE / "include" / "gemm-config.h").read_text()


@pytest.mark.parametrize("M,K,n", [(1, 128, 1), (37, 256, 1), (70, 384, 4), (33, 128, 12)])
def test_matches_reference(M, K, n):
    rng = np.random.default_rng(M * K + n)
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    x = rng.integers(-128, 128, (n, K)).astype(np.int8)
    x[0, :3] = (-128, 127, -128)
    kern = BitnetI2S(w, FAKE)
    assert kern.packed.nbytes == M * K // 4 + 32
    np.testing.assert_array_equal(kern.integer(x, kern(x)), ternary_matmul(x, w))
    other = kern.with_packed(kern.packed.copy())
    np.testing.assert_array_equal(other.integer(x, other(x)), ternary_matmul(x, w))
    out = np.zeros((n, M), np.float32)
    other.bound(x, out)()      # the bare C call a benchmark times: the same numbers
    np.testing.assert_array_equal(other.integer(x, out), ternary_matmul(x, w))


def test_refuses_what_it_cannot_run():
    w = np.ones((4, 128), np.int8)
    with pytest.raises(ShapeError, match="multiple of 128"):
        BitnetI2S(np.ones((4, 100), np.int8), FAKE)
    with pytest.raises(ShapeError, match="multiple of 4"):
        BitnetI2S(w, FAKE)(np.ones((3, 128), np.int8))
    with pytest.raises(ShapeError, match="int8"):
        BitnetI2S(w, FAKE)(np.ones((1, 128), np.int32))
    with pytest.raises(ShapeError, match="out must be C-contiguous float32"):
        BitnetI2S(w, FAKE).bound(np.ones((1, 128), np.int8), np.ones((1, 4), np.int32))


def test_checkout_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.delenv("TERNKIT_BITNET_CPP", raising=False)
    with pytest.raises(TernkitError, match="--bitnet-cpp PATH"):
        checkout(None)
    with pytest.raises(TernkitError, match="not a bitnet.cpp checkout: src/ggml-bitnet-mad.cpp, include/gemm-config.h"):
        checkout(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ggml-bitnet-mad.cpp").write_text("#error broken\n")
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "gemm-config.h").write_text(CONFIG)
    with pytest.raises(TernkitError, match="building bitnet.cpp's I2_S kernels .* failed"):
        BitnetI2S(np.ones((4, 128), np.int8), tmp_path)
