"""The whole model through every available target's generated kernels: bit-exact, same greedy tokens."""

from __future__ import annotations

import numpy as np
import pytest

from ternkit.graph import load_model
from ternkit.reference import forward, greedy_generate
from ternkit.runtime.model import check_exact

PROMPT = np.array([5, 17, 3, 99, 42, 7])
kernels_mod = pytest.importorskip("ternkit.runtime.kernels", reason="code generation has not landed")


def _targets():
    from ternkit.codegen.targets import get_target, target_names

    return [t for t in target_names() if get_target(t).unavailable_reason() is None]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny")


@pytest.mark.parametrize("target", _targets())
def test_every_target_runs_the_model_bit_exactly(tiny, target):
    from ternkit.runtime.model import lower_model

    lowered = lower_model(tiny, target, tokens=(1, PROMPT.size))
    report = check_exact(lowered, PROMPT, n_new=6)
    assert report.ok, report.mismatched_calls[:3]
    assert report.tokens_generated == greedy_generate(tiny, PROMPT, 6)
    np.testing.assert_allclose(lowered.forward(PROMPT), forward(tiny, PROMPT), rtol=1e-6, atol=1e-6)
