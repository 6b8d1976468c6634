"""The whole model through every available target's generated kernels (every format it has):
bit-exact BitLinears, identical logits, the same greedy text as the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ternkit.codegen.targets import get_target, target_names
from ternkit.graph import load_model
from ternkit.reference import forward, greedy_generate
from ternkit.runtime.lowered import check_exact, lower_model

PROMPT = np.array([5, 17, 3, 99, 42, 7])
TRAINED = Path(__file__).parent.parent / "examples" / "tiny-trained.safetensors"


def cpu_targets() -> list[str]:
    return [t for t in target_names() if get_target(t).unavailable_reason() is None]


CASES = [(t, f) for t in cpu_targets() for f in get_target(t).formats]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny")


@pytest.fixture(scope="module")
def trained():
    return load_model(TRAINED)


@pytest.mark.parametrize("target", cpu_targets())
def test_every_target_runs_the_model_bit_exactly(tiny, target):
    lowered = lower_model(tiny, target, tokens=(1, PROMPT.size))
    report = check_exact(lowered, PROMPT, n_new=6)
    assert report.ok, report.mismatched_calls[:3]
    assert report.max_logit_diff == 0.0   # same float steps around bit-exact integer cores
    assert report.tokens_generated == greedy_generate(tiny, PROMPT, 6)
    np.testing.assert_array_equal(lowered.forward(PROMPT), forward(tiny, PROMPT))


@pytest.mark.parametrize("target, fmt", CASES)
def test_trained_model_writes_the_same_text_on_every_target_and_format(trained, target, fmt):
    prompt = np.frombuffer(b"import os\ndef main(", dtype=np.uint8).astype(np.int64)
    lowered = lower_model(trained, target, tokens=(1, prompt.size), weight_format=fmt)
    got = lowered.generate(prompt, 24)
    want = greedy_generate(trained, prompt, 24)
    assert got == want, (bytes(got), bytes(want))
    assert lowered.calls > 0
