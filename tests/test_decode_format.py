"""Decode and prefill formats apart (`codegen/decode_format.py`): which format each kernel gets; the
standalone C runtime with two packed copies of each BitLinear gives exactly the one-copy run's logits and
tokens, and the reference's tokens; its weights file (version 2) reads back to the model's weights; old
and mismatched files are refused with one line."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from test_realsize import small_2b4t

from ternkit import formats
from ternkit.codegen import tuning
from ternkit.codegen.decode_format import check, choose
from ternkit.codegen.plan import KernelSpec, lower
from ternkit.codegen.targets import best_native_target, get_target
from ternkit.errors import TernkitError
from ternkit.graph import load_model
from ternkit.graph.modelgraph import layer_weights
from ternkit.reference.forward import forward, greedy_generate
from ternkit.runtime import speed, standalone
from ternkit.toolchain import Toolchain

AVX2, AVX512 = get_target("avx2"), get_target("avx512")
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


def formats_by_kind(plan) -> tuple[set, set]:
    return ({s.weight_format for s in plan.kernels if s.N == 1}, {s.weight_format for s in plan.kernels if s.N > 1})


def test_decode_format_choice_per_target_option_format_and_tuning():
    model = load_model("tiny")
    plan = lower(model, AVX2, (1, 64))
    auto = choose(plan, AVX2, "auto")
    assert formats_by_kind(auto) == ({"tl2"}, {"tl2"})    # avx2: tl2 GEMVs and GEMMs, one copy
    for node in model.bitlinears():                       # every node keeps both its kernels
        assert auto.kernel_for(node, 1).weight_format == "tl2" and auto.prefill_for(node).weight_format == "tl2"
    assert formats_by_kind(choose(plan, AVX2, "same")) == ({"i2"}, {"i2"})   # the plan's own GEMMs
    assert formats_by_kind(choose(plan, AVX2, "b3")) == ({"b3"}, {"i2"})     # a named format: GEMVs only
    tl1 = lower(model, AVX2, (1, 64), "tl1")
    assert formats_by_kind(choose(tl1, AVX2, "auto", forced=True)) == ({"tl1"}, {"tl1"})   # --format wins over auto
    assert formats_by_kind(choose(tl1, AVX2, "i2", forced=True)) == ({"i2"}, {"tl1"})      # ... not over a named one
    assert formats_by_kind(choose(lower(model, AVX512, (1, 64)), AVX512, "auto")) == ({"i2"}, {"i2"})  # unmeasured
    assert formats_by_kind(choose(lower(model, AVX2, (1,)), AVX2, "same")) == ({"i2"}, set())
    with pytest.raises(TernkitError, match="--decode-format tl1: target 'avx512' has no 'tl1' kernels"):
        choose(plan, AVX512, "tl1")


def test_one_format_for_every_kernel_keeps_one_copy():
    """`speed --format tl2` (and `generate --format tl2 --with-runtime`): GEMVs and GEMMs in tl2, one packed
    copy of each BitLinear; a format the target lacks is refused in one line."""
    model = load_model("tiny")
    plan = speed.runtime_plan(model, AVX2, "auto", "tl2")
    assert formats_by_kind(plan) == ({"tl2"}, {"tl2"})
    copies = standalone.all_copies(model, plan, AVX2)
    assert not any(c.own_copy for c in copies) and standalone.copies_summary(copies).startswith("BitLinears packed once (tl2")
    assert speed.plan_formats(plan) == "decode tl2, prefill tl2"
    with pytest.raises(TernkitError, match="--format tl1: target 'avx512' has no 'tl1' kernels: use i2, tl2, b3"):
        check(AVX512, "tl1", option="--format")


def test_tuned_formats_and_tilings_reach_the_decode_kernels():
    model = load_model("tiny")
    plan = lower(model, AVX2, (1, 64))
    q = plan.kernel_for("layers.0.attn.q_proj", 1)
    tl2_name = AVX2.specialise(KernelSpec(q.M, q.K, 1, weight_format="tl2")).name
    tuned = {"avx2": {"formats": {q.shape_key: "b3"}, tl2_name: {"prefetch": 0}}}
    chosen = choose(tuning.apply(plan, AVX2, tuned), AVX2, "auto", tuning=tuned)
    assert chosen.kernel_for("layers.0.attn.q_proj", 1).weight_format == "b3"   # the tuned winner for the shape
    assert chosen.kernel_for("layers.0.attn.k_proj", 1).weight_format == "tl2"  # untuned shape: the default
    forced_tl2 = choose(plan, AVX2, "tl2", tuning=tuned).kernel_for("layers.0.attn.q_proj", 1)
    assert forced_tl2.tile("prefetch") == 0                                     # the tuned tiling of the new name
    # a format changed by tuning keeps the kernel's graph nodes (it lost them before)
    moved = tuning.apply(plan, AVX2, {"avx2": {"formats": {q.shape_key: "tl2"}}})
    assert all(moved.users[s] for s in moved.kernels)
    assert moved.kernel_for("layers.1.attn.o_proj", 1).weight_format == "tl2"


def read_back(blob: bytes, model, plan, target) -> dict:
    """Walk a weights file as model.c.j2 does; per BitLinear (scale, decode w_q, prefill w_q or None)."""
    assert blob[:8] == standalone.MAGIC
    cfg, p = model.config, model.require_params()
    at = 16

    def take(n: int) -> bytes:
        nonlocal at
        part, at = blob[at:at + n], at + n + (-n % 4)
        return part

    def unpack(spec, raw: bytes) -> np.ndarray:
        return formats.unpack(spec.weight_format, np.frombuffer(raw, np.uint8), spec.M, spec.K,
                              **target.layout(spec))

    take(p["embed.weight"].size * standalone.embed_dtype(model).itemsize)
    found = {}
    for i in range(cfg.n_layers):
        for node, _ in layer_weights(cfg, i):
            if model.graph.nodes[node]["op"] != "bitlinear":
                np.testing.assert_array_equal(np.frombuffer(take(p[f"{node}.weight"].size * 4), "<f4"),
                                              p[f"{node}.weight"])
                continue
            c = standalone.bitlinear_copies(plan, target, node)
            scale = np.frombuffer(take(4), "<f4")[0]
            decode = unpack(c.gemv, take(c.decode_bytes))
            found[node] = (scale, decode, unpack(c.gemm, take(c.prefill_bytes)) if c.own_copy else None)
    take(cfg.hidden * 4)
    assert at == len(blob)   # tied embedding: nothing after the final norm
    return found


@pytest.mark.parametrize("choice", ["tl2", "same"])
def test_weights_file_with_two_copies_reads_back_to_the_weights(choice):
    model = small_2b4t()
    plan = speed.runtime_plan(model, AVX2, choice)
    blob = b"".join(standalone.weight_parts(model, plan, AVX2))
    found = read_back(blob, model, plan, AVX2)
    assert set(found) == set(model.bitlinears())
    for node, (scale, decode, prefill) in found.items():
        w_q, _ = model.quantized_weight(node)
        assert scale == np.float32(model.weight_scale(node))
        np.testing.assert_array_equal(decode, w_q)
        if choice == "tl2":
            np.testing.assert_array_equal(prefill, w_q)     # tl2 decode copy + i2 prefill copy
        else:
            assert prefill is None                          # one copy
    copies = standalone.all_copies(model, plan, AVX2)
    assert ("packed twice" in standalone.copies_summary(copies)) == (choice == "tl2")


def other_decode_format(target) -> str:
    """A decode format unlike the prefill's (the target's default one), so the file has two copies."""
    return target.decode_format or next(f for f in target.formats if f != target.formats[0])


def run(folder, weights, tokens) -> subprocess.CompletedProcess:
    return subprocess.run([str(folder / standalone.PROGRAM), str(weights), *map(str, tokens)], capture_output=True,
                          text=True, timeout=120)


@needs_cc
def test_two_copies_give_the_one_copy_runs_logits_and_tokens_exactly(tmp_path):
    model = small_2b4t()
    target = best_native_target()
    decode = other_decode_format(target)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    assert "packed once" in speed.build_c_runtime(model, target, one, "same")
    assert "packed twice" in speed.build_c_runtime(model, target, two, decode)
    extra = sum(c.decode_bytes + (-c.decode_bytes % 4)
                for c in standalone.all_copies(model, speed.runtime_plan(model, target, decode), target))
    assert (two / "weights.bin").stat().st_size == (one / "weights.bin").stat().st_size + extra
    prompt = np.arange(70) * 13 % 1000   # > one 64-token chunk through the GEMMs, then GEMV decode
    reference = greedy_generate(model, prompt, 6)
    rows = [speed.c_runtime(folder, prompt, 5, threads, target.name) for folder in (one, two) for threads in (1, 2)]
    assert all(r.tokens == reference for r in rows)
    tc = Toolchain("cc", ())
    for tokens in (prompt[:5], prompt[:3]):   # prefill (GEMM) logits, and the decode copy via --generate above
        a, b = (standalone.run_program(f, tokens, tc) for f in (one, two))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(b, forward(model, tokens)[-1], rtol=1e-4, atol=1e-5)
    # one token = the GEMV alone reads the decode copy: same logits as the one-copy program's GEMV
    np.testing.assert_array_equal(standalone.run_program(one, prompt[:1], tc), standalone.run_program(two, prompt[:1], tc))


@needs_cc
def test_old_and_mismatched_weights_files_are_refused_in_one_line(tmp_path):
    model = small_2b4t(layers=1)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    target = best_native_target()
    speed.build_c_runtime(model, target, one, "same")
    speed.build_c_runtime(model, target, two, other_decode_format(target))
    weights = (two / "weights.bin").read_bytes()
    old = tmp_path / "old.bin"
    old.write_bytes(b"TKRT0001" + weights[8:])
    cut = tmp_path / "cut.bin"
    cut.write_bytes(weights[:-4])
    for path, words in ((old, "layout TKRT0001, this program reads TKRT0002: regenerate"),
                        (one / "weights.bin", "written for other kernels or weight formats"),
                        (cut, "fewer bytes"),
                        (two / standalone.SOURCE, "not a ternkit weights file")):
        done = run(two, path, [1, 2])
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(str(path)) and words in done.stderr
    assert run(two, two / "weights.bin", [1, 2]).returncode == 0
