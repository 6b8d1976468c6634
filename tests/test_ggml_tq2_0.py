"""The faithful ggml TQ2_0 reference kernel: with unit scales it returns the integer core exactly;
with random fp16 / float block scales it equals, bit for bit, the numpy float32 model of its own
arithmetic; split across threads it gives the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import activations, weights
from ternkit import formats
from ternkit.errors import ShapeError
from ternkit.reference.quant import ternary_matmul
from ternkit.runtime import ggml_tq2_0 as tq

pytestmark = pytest.mark.skipif(tq.unavailable_reason() is not None, reason=str(tq.unavailable_reason()))

shapes = st.tuples(st.integers(1, 40), st.sampled_from([1, 255, 256, 257, 512, 700]), st.integers(1, 3),
                   st.sampled_from(["random", "plus", "minus", "zero", "sparse"]),
                   st.sampled_from(["random", "min", "max", "alternate"]))


@given(shapes)
@settings(max_examples=6, deadline=None, derandomize=True)
def test_unit_scales_give_the_integer_core_exactly(case):
    M, K, n, wm, xm = case
    rng = np.random.default_rng(M * 1000 + K)
    w, x = weights(wm, M, K, rng), activations(xm, n, K, rng)
    kern = tq.Tq2_0Kernel(w, 1.0)
    y = kern(tq.q8_K_blocks(x, 1.0))
    assert y.dtype == np.float32
    assert np.array_equal(y, ternary_matmul(x, w).astype(np.float32))   # |y_int| < 2^24: exact in float32
    out = np.zeros_like(y)
    kern.bound(tq.q8_K_blocks(x, 1.0), out)()       # the bare C call a benchmark times: the same bits
    assert np.array_equal(out, y)
    with pytest.raises(ShapeError, match="out must be"):
        kern.bound(tq.q8_K_blocks(x, 1.0), np.zeros((n, M), np.int32))


@given(shapes)
@settings(max_examples=6, deadline=None, derandomize=True)
def test_block_scales_match_the_float32_model_bit_for_bit(case):
    M, K, n, wm, xm = case
    rng = np.random.default_rng(M * 7 + K)
    w, x = weights(wm, M, K, rng), activations(xm, n, K, rng)
    nb = tq.padded_k(K) // 256
    w_scale = rng.uniform(1e-3, 3.0, (M, nb)).astype(np.float16)
    x_scale = rng.uniform(1e-4, 1.0, (n, nb)).astype(np.float32)
    kern = tq.Tq2_0Kernel(w, w_scale)
    xb = tq.q8_K_blocks(x, x_scale)
    want = tq.model(w, w_scale, xb)
    for threads in (1, 2, 3):
        got = kern(xb, threads=threads)
        assert np.array_equal(got, want), (threads, np.abs(got - want).max())
    exact = np.zeros((n, M))                  # and close to the real-number result
    codes = np.zeros((M, nb * 256), np.int64)
    codes[:, :K] = w
    xs = np.zeros((n, nb * 256), np.int64)
    xs[:, :K] = x
    for b in range(nb):
        sl = slice(256 * b, 256 * b + 256)
        exact += (xs[:, sl] @ codes[:, sl].T) * (x_scale[:, b, None] * w_scale[None, :, b].astype(np.float64))
    assert np.allclose(want, exact, rtol=1e-4, atol=1e-3 * np.abs(exact).max(initial=1.0))


def test_weights_are_ggml_bytes_and_activations_q8_K():
    w = np.random.default_rng(0).integers(-1, 2, (3, 512)).astype(np.int8)
    kern = tq.Tq2_0Kernel(w, 0.5)
    assert kern.packed.nbytes == 3 * 2 * 66
    assert np.array_equal(kern.packed, formats.pack("tq2_0", w, 0.5))
    x = np.arange(-128, 128, dtype=np.int8)[None, :].repeat(2, 0)
    xb = tq.q8_K_blocks(x, 2.0)
    assert tq.Q8_K.itemsize == 292 and xb.shape == (2, 1)
    assert list(xb["bsums"][0, 0, :2]) == [sum(range(-128, -112)), sum(range(-112, -96))]
    with pytest.raises(ShapeError, match="q8_K blocks"):
        kern(tq.q8_K_blocks(x[:, :200]))
