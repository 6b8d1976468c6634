"""Quantizers and the exact integer core (the kernel contract)."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ternkit.errors import ShapeError
from ternkit.reference.quant import (
    bitlinear, bitlinear_q, default_outlier_k, quantize_activations, quantize_activations_a48, quantize_weights,
    ternary_matmul,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def matrices(max_side=24):
    return st.tuples(st.integers(1, max_side), st.integers(1, max_side)).flatmap(
        lambda s: arrays(np.float32, s, elements=finite))


@settings(max_examples=80, deadline=None)
@given(w=matrices())
def test_ternary_weights_in_range_and_absmean(w):
    w_q, scale = quantize_weights(w, "ternary")
    assert w_q.dtype == np.int8 and w_q.shape == w.shape
    assert set(np.unique(w_q)) <= {-1, 0, 1}
    assert scale > 0 and np.isfinite(scale)
    gamma = np.mean(np.abs(w.astype(np.float64)))
    if gamma > 1e-3:
        assert scale == pytest.approx(gamma, rel=1e-5)
        # RoundClip(W / γ): |W| < γ/2 -> 0, |W| > 3γ/2 -> ±1 with W's sign
        small, big = np.abs(w) < 0.49 * gamma, np.abs(w) > 0.51 * gamma
        assert not w_q[small].any()
        assert np.array_equal(w_q[big], np.sign(w[big]).astype(np.int8))


@settings(max_examples=80, deadline=None)
@given(w=matrices())
def test_binary_weights_are_centred_signs(w):
    w_q, scale = quantize_weights(w, "binary")
    assert set(np.unique(w_q)) <= {-1, 1}
    assert scale > 0
    alpha = np.mean(w, dtype=np.float64)
    clear = np.abs(w - alpha) > 1e-3 * (1 + abs(alpha))
    assert np.array_equal(w_q[clear], np.where(w[clear] > alpha, 1, -1))


def test_binary_sign_of_zero_is_minus_one_and_scale_is_mean_abs():
    w = np.array([[1.0, -1.0, 0.0, 0.0]], dtype=np.float32)  # mean 0: the zeros sit on the centre
    w_q, scale = quantize_weights(w, "binary")
    assert w_q.tolist() == [[1, -1, -1, -1]] and scale == pytest.approx(0.5)


def test_all_zero_weights_give_zero_and_positive_scale():
    w_q, scale = quantize_weights(np.zeros((3, 5), np.float32))
    assert not w_q.any() and scale > 0


@pytest.mark.parametrize("bits, lo, hi", [(8, -128, 127), (4, -8, 7)])
@settings(max_examples=60, deadline=None)
@given(x=matrices())
def test_activations_absmax_per_token(bits, lo, hi, x):
    """Qb = 2^(b-1), x_q = clip(round(x * Qb / γ), -Qb, Qb - 1): the row maximum lands on -Qb or
    (clipped) Qb - 1, and every other entry is within half a step."""
    x_q, x_scale = quantize_activations(x, bits)
    qb = 2 ** (bits - 1)
    assert x_q.dtype == np.int8 and lo <= x_q.min() and x_q.max() <= hi
    assert np.all(x_scale > 0) and np.all(np.isfinite(x_scale))
    amax = np.abs(x).max(axis=1)
    live = amax > 1e-3
    np.testing.assert_allclose(x_scale[live], amax[live] / qb, rtol=1e-6)
    assert np.all(np.isin(np.abs(x_q[live].astype(np.int16)).max(axis=1), (qb - 1, qb)))
    err = np.abs(x_q * x_scale[:, None] - x)
    unclipped = x_q < qb - 1
    assert np.all(err[live][unclipped[live]] <= 0.5 * np.repeat(x_scale[live], x.shape[1]).reshape(-1, x.shape[1])
                  [unclipped[live]] * (1 + 1e-4) + 1e-6)
    assert np.all(err[live] <= 1.0 * x_scale[live][:, None] * (1 + 1e-4) + 1e-6)


def test_zero_rows_give_no_nan():
    x = np.zeros((2, 7), np.float32)
    x[1, 3] = 2.0
    for bits in (8, 4):
        x_q, s = quantize_activations(x, bits)
        assert not x_q[0].any() and np.all(np.isfinite(s)) and np.all(s > 0)
    y = bitlinear(x, np.random.default_rng(0).standard_normal((5, 7)))
    assert np.all(np.isfinite(y)) and not y[0].any()
    xl, ls, xh, hs = quantize_activations_a48(x)
    assert np.all(np.isfinite(ls)) and np.all(np.isfinite(hs)) and not xl[0].any() and not xh[0].any()


def test_bad_inputs_raise_shape_errors():
    with pytest.raises(ShapeError, match="bits must be 8 or 4"):
        quantize_activations(np.ones((1, 4)), 6)
    with pytest.raises(ShapeError, match="NaN"):
        quantize_activations(np.array([[np.nan, 1.0]]))
    with pytest.raises(ShapeError, match="unknown weight mode"):
        quantize_weights(np.ones((2, 2)), "quaternary")
    with pytest.raises(ShapeError, match="bits must be 8 or 4"):
        bitlinear_q(np.ones((1, 4)), np.ones((2, 4), np.int8), 1.0, activation_bits=2)


@st.composite
def int_problem(draw):
    n, k, m = draw(st.integers(1, 9)), draw(st.integers(1, 70)), draw(st.integers(1, 9))
    x_q = draw(arrays(np.int8, (n, k), elements=st.integers(-128, 127)))
    w_q = draw(arrays(np.int8, (m, k), elements=st.integers(-1, 1)))
    return x_q, w_q


@settings(max_examples=150, deadline=None)
@given(p=int_problem())
def test_ternary_matmul_is_the_exact_int_product(p):
    x_q, w_q = p
    y = ternary_matmul(x_q, w_q)
    assert y.dtype == np.int32 and y.shape == (x_q.shape[0], w_q.shape[0])
    assert np.array_equal(y, x_q.astype(np.int64) @ w_q.astype(np.int64).T)


def test_ternary_matmul_extremes_and_errors():
    k = 5000  # worst case magnitude 128 * K: still exact
    x_q = np.full((2, k), -128, np.int8)
    w_q = np.ones((3, k), np.int8)
    w_q[1] = -1
    w_q[2] = 0  # an all-zero row
    assert ternary_matmul(x_q, w_q).tolist() == [[-128 * k, 128 * k, 0]] * 2
    with pytest.raises(ShapeError, match="K mismatch"):
        ternary_matmul(np.zeros((1, 3), np.int8), np.zeros((1, 4), np.int8))
    with pytest.raises(ShapeError, match="not ternary"):
        ternary_matmul(np.zeros((1, 3), np.int8), np.full((1, 3), 2, np.int8))
    with pytest.raises(ShapeError, match="x_q must be int8"):
        ternary_matmul(np.zeros((1, 3), np.int32), np.zeros((1, 3), np.int8))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 300), seed=st.integers(0, 2**31), kk=st.integers(0, 8))
def test_a48_outliers_and_ranges(n, k, seed, kk):
    kk = min(kk, k)
    x = np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)
    x_lo, lo_s, x_hi, hi_s = quantize_activations_a48(x, kk)
    assert -8 <= x_lo.min() and x_lo.max() <= 7 and -128 <= x_hi.min() and x_hi.max() <= 127
    assert np.all(np.count_nonzero(x_hi, axis=1) <= kk)
    assert not np.any((x_hi != 0) & (x_lo != 0))  # an entry is an outlier or an inlier, never both
    # the outliers are the kk largest magnitudes of each row
    if kk:
        thresh = -np.sort(-np.abs(x), axis=1)[:, kk - 1]
        rows, _ = np.nonzero(x_hi)
        assert np.all(np.abs(x)[x_hi != 0] >= thresh[rows])
    assert default_outlier_k(k) == max(1, k // 64)


def test_a48_beats_plain_int4_on_outlier_data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 512)).astype(np.float32)
    x[:, rng.choice(512, 6, replace=False)] *= 20  # a few outlier channels, as in LLM activations
    x_lo, lo_s, x_hi, hi_s = quantize_activations_a48(x)
    hybrid = x_lo * lo_s[:, None] + x_hi * hi_s[:, None]
    x4, s4 = quantize_activations(x, 4)
    plain = x4 * s4[:, None]
    e_hybrid, e_plain = np.mean((hybrid - x) ** 2), np.mean((plain - x) ** 2)
    assert e_hybrid < 0.5 * e_plain
    # and the a4.8 BitLinear is the sum of two exact integer products
    w = rng.standard_normal((16, 512)).astype(np.float32)
    y = bitlinear(x, w, activation_bits=4)
    w_q, ws = quantize_weights(w)
    ref = ((x_lo.astype(np.int64) @ w_q.T.astype(np.int64)) * lo_s[:, None]
           + (x_hi.astype(np.int64) @ w_q.T.astype(np.int64)) * hi_s[:, None]) * ws
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_bitlinear_int8_equals_dequantised_integer_core():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((4, 33)).astype(np.float32), rng.standard_normal((7, 33)).astype(np.float32)
    w_q, ws = quantize_weights(w)
    x_q, xs = quantize_activations(x)
    expect = (x_q.astype(np.int64) @ w_q.astype(np.int64).T) * ws * xs[:, None]
    np.testing.assert_allclose(bitlinear(x, w), expect, rtol=1e-5, atol=1e-6)
    # and it approximates the float product
    rel = np.linalg.norm(bitlinear(x, w) - x @ (w_q * ws).T) / np.linalg.norm(x @ (w_q * ws).T)
    assert rel < 0.02


def test_float16_weights_are_quantized_in_float32():
    # in float16, 0.4287 / mean|W| = 0.4287 / 0.857 rounds to 0.5 and then to 0; in float32 it is 0.5002 -> 1
    w_q, scale = quantize_weights(np.array([[0.4287, 1, 1, 1]], dtype=np.float16))
    np.testing.assert_array_equal(w_q, [[1, 1, 1, 1]])
    assert scale == pytest.approx(0.8572, abs=1e-3)


@settings(max_examples=50, deadline=None)
@example(np.array([[0.4287, 1, 1, 1]], dtype=np.float16), "ternary")
@given(arrays(np.float16, st.tuples(st.integers(1, 6), st.integers(1, 40)),
              elements=st.floats(-4, 4, width=16)), st.sampled_from(["ternary", "binary"]))
def test_float16_inputs_quantize_as_their_float32_values(w, mode):
    """Every quantizer computes in float32 at least, so a float16 array quantizes exactly like the same
    values given as float32."""
    q16, s16 = quantize_weights(w, mode)
    q32, s32 = quantize_weights(w.astype(np.float32), mode)
    np.testing.assert_array_equal(q16, q32)
    assert s16 == s32
    for got, want in zip(quantize_activations(w), quantize_activations(w.astype(np.float32))):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(quantize_activations_a48(w, 1), quantize_activations_a48(w.astype(np.float32), 1)):
        np.testing.assert_array_equal(got, want)
