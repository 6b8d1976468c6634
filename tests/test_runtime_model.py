"""Whole-model runtime: kernels in the integer core, exactness checks, `ternkit run`."""

from __future__ import annotations

import json

import numpy as np
from ternkit.cli import main
from ternkit.graph import load_model
from ternkit.reference import ternary_matmul
from ternkit.runtime.lowered import LoweredModel, check_exact

PROMPT = np.array([5, 17, 3, 99, 42, 7])


def numpy_kernels(model, broken: str | None = None):
    """Stand-in kernels bound to each node's weights; `broken` gets an off-by-one in one output."""
    kernels = {}
    for node in model.bitlinears():
        w_q, _ = model.quantized_weight(node)

        def k(x_q, _w=w_q, _bad=(node == broken)):
            y = ternary_matmul(x_q, _w)
            if _bad:
                y[:, 0] += 1
            return y
        kernels[node] = {1: k}
    return kernels


def test_check_exact_passes_for_exact_kernels_and_catches_a_wrong_one():
    model = load_model("tiny")
    good = LoweredModel(model, "numpy", numpy_kernels(model))
    report = check_exact(good, PROMPT, n_new=4)
    assert report.ok and report.max_logit_diff == 0.0 and len(report.tokens_generated) == 4
    assert report.bitlinear_calls == 14 * (1 + 1 + 4)  # forward + generate's prefill and 4 decode steps
    bad = LoweredModel(model, "numpy", numpy_kernels(model, broken="layers.1.ffn.up_proj"))
    report = check_exact(bad, PROMPT, n_new=4)
    assert not report.ok and all(m.startswith("layers.1.ffn.up_proj") for m in report.mismatched_calls)


def test_run_reports_kernels_validation_throughput_and_npu(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["run", "--prompt", "8", "--decode", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "prefill" in text and "decode" in text and "bit-exact" in text
    assert "npu         config default" in text and "vs FP16 MAC" in text
    data = json.loads((out / "report.json").read_text())
    assert data["model"] == "tiny" and data["prefill_tps"]["reference"] > 0
    assert (out / "report.md").read_text().startswith("# ternkit run: tiny")
