"""The i2s target (bitnet.cpp I2_S-style AVX2 kernel) is bit-exact too."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_helpers import EDGE_CASES, assert_exact, case, run_cases
from ternkit.codegen.targets import best_native_target, get_target
from ternkit.codegen.targets.i2s import tq2_order

BASE = get_target("i2s")
needs_avx2 = pytest.mark.skipif(BASE.unavailable_reason() is not None, reason=str(BASE.unavailable_reason()))


def test_tq2_order_is_a_permutation_of_each_block():
    order = tq2_order(300)
    assert sorted(order) == list(range(512))
    assert list(order[:5]) == [0, 32, 64, 96, 1]


@needs_avx2
def test_i2s_edge_cases_bit_exact():
    assert_exact(run_cases(BASE, BASE.formats, EDGE_CASES, threads=2))
    assert best_native_target().name != "i2s"


@needs_avx2
@given(st.lists(case, min_size=3, max_size=6))
@settings(max_examples=3, deadline=None, derandomize=True)
def test_i2s_random_shapes_bit_exact(cases):
    assert_exact(run_cases(BASE, BASE.formats, cases))
