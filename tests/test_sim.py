"""The NPU simulator: config validation, the generated C cycle model against the reference (outputs)
and the analytic simulator (every event and cycle, DRAM included), whole-model speed, CLI outputs."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ternkit.cli import main
from ternkit.errors import ConfigError, TernkitError
from ternkit.graph import load_model
from ternkit.reference.quant import ternary_matmul
from ternkit.sim import config_from_dict, kernel_events, load_npu_config, simulate_model
from ternkit.sim import cmodel
from ternkit.sim.config import DEFAULT_CONFIG
from ternkit.sim.simulator import Events, energy
from ternkit.sim.sweep import Point, pareto
from ternkit.yamlio import read_yaml

BASE = read_yaml(DEFAULT_CONFIG)
EVERY_EVENT = [f.name for f in fields(Events)]


def small(**array) -> dict:
    """A small array so that tiles, tails and stalls all show up on tiny shapes."""
    d = {**BASE, "array": {"columns": 4, "inputs": 8, "fan_in": 2, "acc_bits": 24, "zero_gating": True, **array},
         "buffers": {"weight": {"kib": 1, "width_bits": 16, "banks": 1},
                     "activation": {"kib": 1, "width_bits": 32, "banks": 1},
                     "output": {"kib": 1, "width_bits": 64, "banks": 1}}}
    return d


CONFIGS = {
    "ws-gated": small(),
    "ws-ungated-fan4": {**small(inputs=16, fan_in=4, zero_gating=False)},
    "os": {**small(), "dataflow": "output_stationary"},
    "ws-single-buffered": {**small(), "double_buffering": False},
}
TINY_BUFFERS = {"weight": {"kib": 0.01, "width_bits": 16, "banks": 1},     # ~80 bits: weights re-stream
                "activation": {"kib": 0.05, "width_bits": 32, "banks": 1},  # ~400 bits: a few tokens a tile
                "output": {"kib": 0.02, "width_bits": 64, "banks": 1}}
CONFIGS["ws-tiny-buffers"] = {**small(), "buffers": TINY_BUFFERS}
# rows of one m_tile fit the weight buffer, the whole matrix not; partial sums of one token only:
# keeping an m_tile's weights and looping over token tiles inside (m-outer) moves fewer DRAM bytes
CONFIGS["ws-m-outer"] = {**small(), "buffers": {"weight": {"kib": 0.05, "width_bits": 16, "banks": 1},
                                                "activation": {"kib": 1, "width_bits": 32, "banks": 1},
                                                "output": {"kib": 0.01, "width_bits": 64, "banks": 1}}}
CONFIGS["os-tiny-buffers"] = {**small(), "buffers": TINY_BUFFERS, "dataflow": "output_stationary"}
CONFIGS["ws-two-levels-a-stage"] = small(levels_per_stage=2)   # 3 levels, registers after levels 2 and 3
CONFIGS["ws-streamed-decode"] = {**small(), "stream_decode_weights": True}   # one-token kernels bypass the weight SRAM


def saturating_reference(x_q, w_q, inputs: int, acc_bits: int) -> np.ndarray:
    """The documented overflow rule in numpy: exact k-tile sums, accumulated in k-tile order with a
    saturation to the accumulator's range after every add."""
    hi, lo = 2 ** (acc_bits - 1) - 1, -(2 ** (acc_bits - 1))
    acc = np.zeros((x_q.shape[0], w_q.shape[0]), dtype=np.int64)
    for k0 in range(0, x_q.shape[1], inputs):
        part = x_q[:, k0:k0 + inputs].astype(np.int64) @ w_q[:, k0:k0 + inputs].astype(np.int64).T
        acc = np.clip(acc + part, lo, hi)
    return acc


@st.composite
def problem(draw):
    m, k, n = draw(st.integers(1, 11)), draw(st.integers(1, 40)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    kind = draw(st.sampled_from(["random", "zeros", "ones", "minus"]))
    w = {"random": lambda: rng.integers(-1, 2, (m, k)), "zeros": lambda: np.zeros((m, k)),
         "ones": lambda: np.ones((m, k)), "minus": lambda: -np.ones((m, k))}[kind]().astype(np.int8)
    x = rng.integers(-128, 128, (n, k)).astype(np.int8)
    if draw(st.booleans()):
        x[:] = -128
    return w, x


@pytest.mark.parametrize("name", CONFIGS)
@settings(max_examples=25, deadline=None)
@given(p=problem())
def test_c_model_outputs_and_events_match(name, p):
    cfg = config_from_dict(CONFIGS[name], name)
    w, x = p
    y, ev = cmodel.run(cfg, w, x)
    np.testing.assert_array_equal(y, ternary_matmul(x, w))
    predicted = kernel_events(cfg, w.shape[0], w.shape[1], x.shape[0], w_q=w)
    for f in EVERY_EVENT:
        assert getattr(ev, f) == pytest.approx(getattr(predicted, f)), f


@pytest.mark.parametrize("acc_bits", [12, 13, 16])   # 12: the tree root of 8 inputs (9 + 3 bits)
def test_narrow_accumulator_saturates_as_documented(acc_bits):
    cfg = config_from_dict(small(acc_bits=acc_bits), "narrow")
    rng = np.random.default_rng(acc_bits)
    w = rng.integers(-1, 2, (9, 37)).astype(np.int8)
    x = rng.integers(-128, 128, (3, 37)).astype(np.int8)
    x[0] = 127
    w[0] = 1
    y, _ = cmodel.run(cfg, w, x)
    want = saturating_reference(x, w, cfg.inputs, acc_bits)
    np.testing.assert_array_equal(y, want)
    if 127 * 37 > 2 ** (acc_bits - 1) - 1:
        assert y[0, 0] == 2 ** (acc_bits - 1) - 1   # the all-+1 row of a +127 token saturates


def test_mapper_picks_the_loop_order_moving_fewer_bytes():
    from ternkit.sim.simulator import choose_mapping

    m = choose_mapping(config_from_dict(CONFIGS["ws-m-outer"], "m"), 11, 40, 5, 2, 8)
    assert m.order == "m-outer" and m.n_tile == 1 and m.w_dram == 11 * 40 * 2 / 8
    m = choose_mapping(config_from_dict(CONFIGS["ws-tiny-buffers"], "t"), 11, 40, 5, 2, 8)
    assert m.order == "n-outer" and m.w_dram == 5 * 11 * 40 * 2 / 8


# buffers where blocking matters: a few m_tiles' rows fit, a few tokens' activations, a few partial sums
BLOCKING = {**small(), "buffers": {"weight": {"kib": 0.15, "width_bits": 16, "banks": 1},     # ~1230 bits
                                   "activation": {"kib": 0.1, "width_bits": 32, "banks": 1},  # ~820 bits
                                   "output": {"kib": 0.1, "width_bits": 64, "banks": 1}}}


@pytest.mark.parametrize("buffers", ["blocking", "tiny", "roomy"])
def test_every_mapping_of_the_search_space_c_model_equals_sim(buffers):
    """Not only the chosen mapping: every loop order, m-block, token tile and K chunk the mapper
    considers gives the same outputs, and the C model counts what the simulator predicts."""
    from ternkit.sim.mapper import buffer_bound, candidates

    d = {"blocking": BLOCKING, "tiny": {**small(), "buffers": TINY_BUFFERS}, "roomy": small()}[buffers]
    cfg = config_from_dict(d, buffers)
    rng = np.random.default_rng(7)
    M, K, N = 19, 43, 7
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    x = rng.integers(-128, 128, (N, K)).astype(np.int8)
    maps = sorted(set(candidates(cfg, M, K, N, 2, 8, cfg.acc_bits)), key=repr)
    assert len({(m.order, m.m_block, m.k_chunk) for m in maps}) >= 8
    bound = buffer_bound(cfg, M, K, N, 2, 8)
    for m in maps:
        y, ev = cmodel.run(cfg, w, x, m)
        np.testing.assert_array_equal(y, ternary_matmul(x, w))
        predicted = kernel_events(cfg, M, K, N, w_q=w, mapping=m)
        for f in EVERY_EVENT:
            assert getattr(ev, f) == pytest.approx(getattr(predicted, f)), (m, f)
        assert ev.dram_bytes >= bound >= m.dram_min      # no schedule beats the lower bounds


def test_mapper_keeps_several_row_tiles_resident_when_that_moves_less():
    from ternkit.sim.mapper import candidates, choose_mapping

    cfg = config_from_dict(BLOCKING, "b")
    M, K, N = 19, 43, 7
    best = choose_mapping(cfg, M, K, N, 2, 8)
    assert best.dram_bytes == min(m.dram_bytes for m in candidates(cfg, M, K, N, 2, 8, cfg.acc_bits))
    # one m_tile at a time (the old mapper's m-outer) re-reads the activations once a row tile
    one_tile = [m for m in candidates(cfg, M, K, N, 2, 8, cfg.acc_bits) if m.m_block == cfg.columns]
    assert best.dram_bytes < min(m.dram_bytes for m in one_tile)
    assert best.m_block > cfg.columns
    # 2B4T 512-token prefill on the default NPU: the blocked nest moves well under half the old 14.17 GB
    model = load_model("bitnet-b1.58-2b4t", with_params=False)
    report = simulate_model(model, tokens=0, prefill=512)
    ev = report.total.events["ternary"]
    assert ev.dram_min_bytes == pytest.approx(2.26e9, rel=0.01)
    assert ev.dram_bytes == pytest.approx(5.07e9, rel=0.01)               # 2.24x the minimum (README)
    assert report.dram_bound_bytes == pytest.approx(3.17e9, rel=0.01)     # 1.60x the buffer-aware bound
    # the target, 1.2x the minimum, is below what any schedule can move on these buffers
    assert report.dram_bound_bytes > 1.2 * ev.dram_min_bytes
    down = report.mappings[(2560, 6912, 512)]        # FFN down: partial sums spill between three K chunks
    assert down.order == "spill" and down.p_dram == 2 * 2560 * 512 * 24 / 8 * 2


def _fits(cfg, M, K, N, m_block, n_tile, k_chunk, order) -> bool:
    """The mapper's fit rule: the chunk's activations, and the partial sums (one m_tile's, or the whole
    m-block's when K is split without spilling) fit their buffers, or the token tile is one token."""
    rows = min(m_block, M) if k_chunk and order != "spill" else min(cfg.columns, M)
    return n_tile == 1 or (rows * n_tile * cfg.acc_bits <= cfg.out_buf.bytes * 8
                           and n_tile * (k_chunk or K) * 8 <= cfg.act_buf.bytes * 8)


@pytest.mark.parametrize("buffers", ["blocking", "tiny"])
def test_the_mapper_finds_the_fewest_bytes_of_its_whole_loop_nest_space(buffers):
    """Every m-block height, token tile, K chunk and loop order that fits (spilling partial sums or not),
    counted by the C model: none moves fewer DRAM bytes than the mapper's choice, nor than the bound."""
    from ternkit.sim.mapper import Mapping, buffer_bound, choose_mapping

    cfg = config_from_dict({"blocking": BLOCKING, "tiny": {**small(), "buffers": TINY_BUFFERS}}[buffers], buffers)
    rng = np.random.default_rng(3)
    M, K, N = 19, 43, 7
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    x = rng.integers(-128, 128, (N, K)).astype(np.int8)
    best = choose_mapping(cfg, M, K, N, 2, 8)
    bound = buffer_bound(cfg, M, K, N, 2, 8)
    _, chosen = cmodel.run(cfg, w, x, best)
    tried = 0
    for m_block in range(1, M + 1):
        for k_chunk in (0, 8, 16, 32):
            for n_tile in range(1, N + 1):
                for order in ("n-outer", "m-outer", "spill"):
                    if not _fits(cfg, M, K, N, m_block, n_tile, k_chunk, order) or (order == "spill" and not k_chunk):
                        continue
                    _, ev = cmodel.run(cfg, w, x, Mapping(n_tile, m_block, k_chunk, order, 0, 0, 0, 0))
                    assert ev.dram_bytes >= chosen.dram_bytes, (m_block, k_chunk, n_tile, order)
                    assert ev.dram_bytes >= bound, (m_block, k_chunk, n_tile, order)   # schedules outside the space too
                    tried += 1
    assert tried > 100


@settings(max_examples=60, deadline=None)
# buffers of a few bytes, one token: the mapper used to count a 259-activation chunk as if the 10-byte
# activation buffer held it for all 112 m_tiles (moved once, below the bound); such blocks are now left out
@example(M=223, K=259, N=1, kib=(0.01, 0.01, 0.01), dataflow="weight_stationary", array={"columns": 2, "inputs": 4},
         acc_bits=16, arith=(2, 8))
@given(M=st.integers(1, 300), K=st.integers(1, 300), N=st.integers(1, 64),
       kib=st.tuples(*[st.sampled_from([0.01, 0.05, 0.2, 1.0, 4.0])] * 3),
       dataflow=st.sampled_from(["weight_stationary", "output_stationary"]),
       array=st.sampled_from([{}, {"columns": 2, "inputs": 4}, {"columns": 8, "inputs": 16, "fan_in": 4}]),
       acc_bits=st.sampled_from([16, 24, 32]), arith=st.sampled_from([(2, 8), (8, 8), (16, 16)]))
def test_no_mapping_moves_less_than_the_buffer_bound(M, K, N, kib, dataflow, array, acc_bits, arith):
    """A sound bound never exceeds a real schedule: every mapping of the space (ternary, int8 and fp16
    operands, spilling or not) moves at least the bound, and the bound at least every byte once."""
    from ternkit.sim.mapper import buffer_bound, candidates, choose_mapping

    bufs = {name: {"kib": k, "width_bits": 32, "banks": 1} for name, k in zip(("weight", "activation", "output"), kib)}
    cfg = config_from_dict({**small(acc_bits=acc_bits, **array), "buffers": bufs, "dataflow": dataflow}, "h")
    wbits, abits = arith
    acc = acc_bits if wbits == 2 else 32
    chosen = choose_mapping(cfg, M, K, N, wbits, abits, acc)
    bound = buffer_bound(cfg, M, K, N, wbits, abits, acc)
    assert chosen.dram_bound == bound and chosen.dram_bytes >= bound >= chosen.dram_min
    if dataflow == "weight_stationary":
        assert min(m.dram_bytes for m in candidates(cfg, M, K, N, wbits, abits, acc)) >= bound


# a few rows' weights of all K fit, partial sums of a few tokens: for long K, spilling partial sums
# between K chunks (rows x chunk of weights resident) beats re-reading the activations once a row block
SPILL = {**small(), "buffers": {"weight": {"kib": 0.2, "width_bits": 16, "banks": 1},      # ~1640 bits
                                "activation": {"kib": 0.1, "width_bits": 32, "banks": 1},  # ~820 bits
                                "output": {"kib": 0.05, "width_bits": 64, "banks": 1}}}


def test_mapper_spills_partial_sums_when_that_moves_less():
    from ternkit.sim.mapper import candidates, choose_mapping

    cfg = config_from_dict(SPILL, "s")
    M, K, N = 19, 120, 9
    best = choose_mapping(cfg, M, K, N, 2, 8)
    others = [m for m in candidates(cfg, M, K, N, 2, 8, cfg.acc_bits) if m.order != "spill"]
    assert best.order == "spill" and best.dram_bytes < min(m.dram_bytes for m in others)
    # three K chunks: every partial sum goes to DRAM and back twice, at the accumulator's 24 bits
    assert best.k_chunk == 40 and best.p_dram == 2 * M * N * 24 / 8 * 2
    rng = np.random.default_rng(5)
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    x = rng.integers(-128, 128, (N, K)).astype(np.int8)
    y, ev = cmodel.run(cfg, w, x, best)
    np.testing.assert_array_equal(y, ternary_matmul(x, w))
    assert ev.dram_bytes == best.dram_bytes


@pytest.mark.parametrize("buffers", ["spill", "blocking", "tiny"])
@settings(max_examples=25, deadline=None)
@given(M=st.integers(1, 19), K=st.integers(1, 130), N=st.integers(1, 9), seed=st.integers(0, 2**31),
       pick=st.integers(0, 10**6), spill=st.booleans())
def test_any_mapping_of_the_space_c_model_equals_sim_on_random_shapes(buffers, M, K, N, seed, pick, spill):
    """A random mapping of the search space (a spill schedule when there is one and `spill`) on a random
    shape: exact outputs, and the C model counts every event, DRAM and cycles included, as predicted."""
    from ternkit.sim.mapper import candidates

    grids = {"spill": SPILL, "blocking": BLOCKING, "tiny": {**small(), "buffers": TINY_BUFFERS}}
    cfg = config_from_dict(grids[buffers], buffers)
    rng = np.random.default_rng(seed)
    w = rng.integers(-1, 2, (M, K)).astype(np.int8)
    x = rng.integers(-128, 128, (N, K)).astype(np.int8)
    maps = sorted(set(candidates(cfg, M, K, N, 2, 8, cfg.acc_bits)), key=repr)
    pool = [m for m in maps if m.order == "spill"] if spill else []
    m = (pool or maps)[pick % len(pool or maps)]
    y, ev = cmodel.run(cfg, w, x, m)
    np.testing.assert_array_equal(y, ternary_matmul(x, w))
    predicted = kernel_events(cfg, M, K, N, w_q=w, mapping=m)
    for f in EVERY_EVENT:
        assert getattr(ev, f) == pytest.approx(getattr(predicted, f)), (m, f)


def test_buffer_bound_lies_between_the_minimum_and_the_mappings():
    from ternkit.sim.mapper import _water_fill, buffer_bound, choose_mapping

    assert _water_fill([1.0, 5.0, 2.0], 2.0) == [2.5, 5.0, 2.5]
    assert _water_fill([1.0, 5.0, 2.0], 20.0) == pytest.approx([28 / 3, 28 / 3, 28 / 3])
    cfg = load_npu_config()
    # FFN down of 2B4T, a 512-token prefill: with 384 KiB on chip no schedule moves every byte once
    down = choose_mapping(cfg, 2560, 6912, 512, 2, 8)
    assert down.dram_bound > 1.5 * down.dram_min and down.dram_bytes >= down.dram_bound
    # more storage: a lower bound, down to the minimum once everything fits
    big = cfg.with_(weight_buf=cfg.weight_buf.__class__(16384, 256, 4))
    assert buffer_bound(big, 2560, 6912, 512, 2, 8) < down.dram_bound
    assert choose_mapping(cfg, 2560, 6912, 1, 2, 8).dram_bound == choose_mapping(cfg, 2560, 6912, 1, 2, 8).dram_min


def test_zero_gating_saves_exactly_the_zero_adds():
    w = np.array([[1, 0, 0, 0, -1, 1, 0, 0]], dtype=np.int8)
    x = np.arange(8, dtype=np.int8)[None]
    gated = config_from_dict(small(), "g")
    y, ev = cmodel.run(gated, w, x)
    assert ev.zero_skips == 5 and ev.tree_adds == [1, 0, 1]   # only (-1,1) adds, then the two live halves
    _, ev_full = cmodel.run(config_from_dict(small(zero_gating=False), "u"), w, x)
    assert ev_full.tree_adds == [4, 2, 1] and ev_full.zero_skips == 0


def test_statistical_mode_is_the_expectation_of_exact_mode():
    cfg = load_npu_config()
    rng = np.random.default_rng(0)
    w = (rng.random((256, 512)) < 0.69).astype(np.int8) * rng.choice([-1, 1], (256, 512)).astype(np.int8)
    exact = kernel_events(cfg, 256, 512, 1, w_q=w)
    expected = kernel_events(cfg, 256, 512, 1, density=float((w != 0).mean()))
    assert sum(exact.tree_adds) == pytest.approx(sum(expected.tree_adds), rel=0.01)


def test_2b4t_decode_and_prefill_simulate_fast():
    model = load_model("bitnet-b1.58-2b4t")
    t0 = time.perf_counter()
    decode = simulate_model(model, tokens=1)
    prefill = simulate_model(model, tokens=0, prefill=512)
    assert time.perf_counter() - t0 < 5   # well under a second here; loose for a loaded CI machine
    assert decode.total.macs == 2_084_044_800 and prefill.total.macs == 512 * 2_084_044_800
    # decode streams every packed weight from DRAM once: DRAM-bound
    assert decode.total.events["ternary"].dram_bytes >= 2_084_044_800 * 2 / 8
    assert decode.total.events["ternary"].cycles_dram_stall > decode.total.events["ternary"].cycles_compute
    for r in (decode, prefill):
        assert r.savings("int8") > 1 and r.savings("fp16") > r.savings("int8")
        assert len(r.layers) == 30


def test_arithmetic_saving_vs_the_papers_7nm_figure():
    """BitNet b1.58: FP16 (mult + add) / INT8 add = (0.34 + 0.16) / 0.007 = 71.4x at 7 nm. The array
    model's ratio is lower (wider tree and accumulator adds) but the same order."""
    t = load_npu_config().tech
    assert (t.fp16_mult_pj + t.fp16_add_pj) / t.int_add(8) == pytest.approx(71.4, abs=0.1)
    r = simulate_model(load_model("bitnet-b1.58-2b4t"), tokens=1)
    assert 30 < r.savings("fp16", arithmetic_only=True) < 71.4


@pytest.mark.parametrize("patch, message", [
    ({"array": {"fan_in": 3}}, "array.fan_in: must be a power of two >= 2, got 3"),
    ({"array": {"inputs": 48}}, "array.inputs: must be a power of fan_in (4)"),
    ({"dataflow": "row_stationary"}, "dataflow: must be one of weight_stationary, output_stationary"),
    ({"buffers": {"weight": {"kib": -1}}}, "buffers.weight.kib: must be a positive number"),
    ({"tech": {"table": "3nm"}}, "tech.table: unknown technology table '3nm'"),
    ({"tech": {"overrides": {"dram_pj": 1}}}, "tech.overrides.dram_pj: unknown field"),
    ({"tech": {"overrides": {"dram_pj_per_bit": -1}}}, "tech.overrides.dram_pj_per_bit: energies must be finite"),
    ({"clock": 1}, "clock: unknown field"),
    # non-finite numbers would give silent zero or infinite energies
    ({"clock_ghz": float("nan")}, "clock_ghz: must be a finite positive number, got nan"),
    ({"clock_ghz": float("inf")}, "clock_ghz: must be a finite positive number, got inf"),
    ({"dram": {"gb_per_s": float("nan")}}, "dram.gb_per_s: must be a finite positive number"),
    ({"buffers": {"weight": {"kib": float("inf")}}}, "buffers.weight.kib: must be a finite positive number"),
    ({"tech": {"overrides": {"dram_pj_per_bit": float("nan")}}}, "tech.overrides.dram_pj_per_bit: energies must be finite"),
    ({"tech": {"overrides": {"int_add_pj": {8: float("inf")}}}}, "tech.overrides.int_add_pj: energies must be finite"),
    # overrides of the wrong shape
    ({"tech": {"overrides": {"int_add_pj": 0.03}}}, "tech.overrides.int_add_pj: must be a mapping of sizes to energies"),
    ({"tech": {"overrides": {"dram_pj_per_bit": {8: 1}}}}, "tech.overrides.dram_pj_per_bit: energies must be finite"),
    ({"tech": {"overrides": {"sram_pj_per_bit": {0: 1}}}}, "tech.overrides.sram_pj_per_bit: sizes must be finite positive"),
    ({"tech": {"overrides": {"mux_pj_per_bit": "cheap"}}}, "tech.overrides.mux_pj_per_bit: energies must be finite"),
    # an accumulator narrower than the tree root, a column without a tree, a column too wide to model
    ({"array": {"inputs": 64, "fan_in": 4, "acc_bits": 14}}, "array.acc_bits: must be at least the adder-tree root width 15"),
    ({"array": {"inputs": 1, "fan_in": 2}}, "array.inputs: must be a power of fan_in (2), at least fan_in"),
    ({"array": {"inputs": 1 << 20, "fan_in": 2}}, "array.inputs: must be at most 65536"),
    ({"tech": {"overrides": {"sram_array_efficiency": 1.5}}}, "sram_array_efficiency: is a fraction of the macro"),
    ({"dram": {"preset": "ddr9"}}, "dram.preset: must be one of ddr3, ddr4, gddr5, hbm, hbm2, lpddr4, got 'ddr9'"),
    ({"dram": {"preset": "hbm"}, "tech": {"overrides": {"dram_pj_per_bit": 2}}}, "dram.preset: conflicts with tech"),
])
def test_bad_npu_configs_name_the_field(patch, message):
    with pytest.raises(ConfigError) as e:
        config_from_dict({**BASE, **patch}, "npu.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_tech_table_file_with_bad_values_names_file_and_field(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text((Path("ternkit/sim/tech/horowitz-45nm.yaml").read_text()
                      .replace("dram_pj_per_bit: 20.3125", "dram_pj_per_bit: .nan")))
    with pytest.raises(ConfigError, match=r"t.yaml: dram_pj_per_bit: energies must be finite"):
        config_from_dict({**BASE, "tech": {"table": str(table)}}, "npu.yaml")


def test_widest_column_runs_the_c_model():
    """A column far wider than the stack would hold: the C model's scratch lives on the heap."""
    cfg = config_from_dict(small(inputs=1 << 16, fan_in=2, acc_bits=25), "wide")
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, (2, 70000)).astype(np.int8)
    x = rng.integers(-128, 128, (1, 70000)).astype(np.int8)
    y, ev = cmodel.run(cfg, w, x)
    np.testing.assert_array_equal(y, saturating_reference(x, w, cfg.inputs, 25))
    assert ev.selects == 2 * 70000


def test_equal_decode_and_prefill_counts_are_not_merged():
    """--tokens 10 --prefill 1: eleven one-token steps, not twenty (the two workloads lower apart)."""
    model = load_model("bitnet-b1.58-2b4t")
    one = simulate_model(model, tokens=1)
    both = simulate_model(model, tokens=10, prefill=1)
    assert both.total.macs == 11 * one.total.macs
    assert both.total.cycles() == 11 * one.total.cycles()


@pytest.mark.parametrize("density", [-0.1, 1.5, float("nan")])
def test_density_outside_0_1_is_refused_by_the_api(density):
    with pytest.raises(TernkitError, match="density must be in"):
        simulate_model(load_model("tiny", with_params=False), tokens=1, density=density)


def test_dram_presets_set_the_energy_and_cite_it():
    cfg = config_from_dict({**BASE, "dram": {"gb_per_s": 25.6, "preset": "lpddr4"}}, "p")
    assert cfg.tech.dram_pj_per_bit == 13.0 and "lpddr4" in cfg.tech.name and "Ha" in cfg.tech.source
    assert config_from_dict({**BASE, "dram": {"preset": "hbm"}}, "h").tech.dram_pj_per_bit == 7.0
    for preset, pj in (("hbm2", 3.97), ("gddr5", 14.0)):      # O'Connor et al., MICRO 2017
        cfg = config_from_dict({**BASE, "dram": {"preset": preset}}, preset)
        assert cfg.tech.dram_pj_per_bit == pj and "Fine-Grained DRAM" in cfg.tech.source
    cfg = config_from_dict({**BASE, "dram": {"preset": "ddr4"}}, "d4")   # Jouppi et al., ISCA 2021, Table 2
    assert cfg.tech.dram_pj_per_bit == 1300 / 64 and "TPUv4i" in cfg.tech.source and "Table 2" in cfg.tech.source
    assert "whole access" in cfg.tech.source          # what the number covers travels with it


def test_every_dram_preset_states_what_it_covers_and_where_it_comes_from():
    from ternkit.sim.dram import DRAM_PRESETS

    for name, p in DRAM_PRESETS.items():
        assert p.pj_per_bit > 0 and p.covers and p.source, name
        assert not p.covers.lower().startswith("i/o"), f"{name}: presets are whole accesses, not I/O alone"
    # the published ranges the presets sit in: Jouppi et al. give HBM2 250-450 pJ a 64-bit access
    assert 250 / 64 <= DRAM_PRESETS["hbm2"].pj_per_bit <= 450 / 64
    assert 250 / 64 <= DRAM_PRESETS["hbm"].pj_per_bit <= 450 / 64


def test_readme_preset_table_lists_every_preset_with_its_energy():
    import re

    from ternkit.sim.dram import DRAM_PRESETS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("**What a preset covers**"):readme.index("There are **no DDR5")]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([\d.]+) \| ", table, re.M))
    assert set(rows) == set(DRAM_PRESETS)
    for name, p in DRAM_PRESETS.items():
        assert float(rows[name]) == pytest.approx(p.pj_per_bit, abs=0.05), name


@pytest.mark.parametrize("preset, pj_per_64_bits", [("ddr4", 1300.0), ("ddr3", 1300.0), ("hbm2", 3.97 * 64)])
def test_dram_energy_is_bytes_times_8_times_the_cited_pj_per_bit(preset, pj_per_64_bits):
    """Every DRAM byte the simulator moves (BitLinears and the rest of the step) is charged the preset's
    energy: checked against the paper's figure per 64-bit access, by hand."""
    cfg = config_from_dict({**BASE, "dram": {"preset": preset}}, preset)
    r = simulate_model(load_model("tiny", with_params=False), cfg, tokens=2, prefill=8)
    t = r.total
    assert t.events["ternary"].dram_bytes > 0
    for arith in ("ternary", "int8", "fp16"):
        expect = t.events[arith].dram_bytes * 8 * pj_per_64_bits / 64
        assert t.energy[arith]["DRAM"] == pytest.approx(expect, rel=1e-12)
    step_bytes = sum(c.dram_bytes for c in r.step)
    assert step_bytes > 0
    assert sum(c.energy["DRAM"] for c in r.step) == pytest.approx(step_bytes * 8 * pj_per_64_bits / 64, rel=1e-12)


def test_7nm_sram_energy_is_the_cited_macro_data():
    """bitnet-7nm SRAM: Jouppi et al., ISCA 2021, Table 2 at 7 nm: 7.5 / 8.5 / 14 pJ a 64-bit read from
    8 KB / 32 KB / 1 MB, growing with the macro (interpolated in log2 of its size between those points)."""
    from ternkit.sim.tech import load_tech

    t = load_tech("bitnet-7nm")
    for kib, pj64 in ((8, 7.5), (32, 8.5), (1024, 14.0)):
        assert t.sram_bit(kib) == pytest.approx(pj64 / 64)
    # 256 KiB is 3/5 of the way from 32 KiB to 1 MiB in log2(size)
    assert t.sram_bit(256) == pytest.approx(8.5 / 64 + (14.0 - 8.5) / 64 * 3 / 5)
    sizes = [1, 8, 16, 64, 256, 1024, 4096]
    assert all(a < b for a, b in zip(map(t.sram_bit, sizes), map(t.sram_bit, sizes[1:])))
    assert "TPUv4i" in t.source and "0.4" in t.assumptions     # the scaled value it replaced stays documented
    # the simulator charges each buffer at its own size
    cfg = load_npu_config()
    ev = kernel_events(cfg, 256, 512, 1)
    e = energy(ev, cfg)
    assert e["weight SRAM"] == pytest.approx((ev.w_sram_read_bits + ev.w_sram_write_bits) * t.sram_bit(256))


def test_simulate_dram_flag_replaces_the_configs_dram_energy(tmp_path, capsys):
    out = {}
    for preset in (None, "hbm2", "ddr3", "ddr4"):
        js = tmp_path / f"{preset}.json"
        assert main(["simulate", "tiny", "--tokens", "1", "--bitlinear-only", "--out", str(js),
                     *(["--dram", preset] if preset else [])]) == 0
        data = json.loads(js.read_text())
        out[preset] = data["rows"][-1]
        if preset:
            assert f"{preset} DRAM" in data["tech"]["name"] and "pJ/bit" in data["tech"]["source"]
    # the same bytes, charged at each preset's pJ/bit (the default table's DRAM is Horowitz's, as ddr3)
    assert out["hbm2"]["dram_MB"] == out["ddr3"]["dram_MB"]
    assert out["hbm2"]["DRAM_uJ"] == pytest.approx(out["ddr3"]["DRAM_uJ"] * 3.97 / 20.3125)
    assert out[None]["DRAM_uJ"] == pytest.approx(out["ddr3"]["DRAM_uJ"])
    assert out["ddr4"]["DRAM_uJ"] == pytest.approx(out["ddr3"]["DRAM_uJ"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["simulate", "tiny", "--dram", "ddr5"])
    assert "invalid choice: 'ddr5'" in capsys.readouterr().err


def test_tech_overrides_apply():
    cfg = config_from_dict({**BASE, "tech": {"table": "horowitz-45nm", "overrides": {"dram_pj_per_bit": 1.5}}}, "o")
    assert cfg.tech.dram_pj_per_bit == 1.5 and cfg.tech.int_add(8) == 0.03 and "overridden" in cfg.tech.name


def test_simulate_cli_writes_json_csv_png(tmp_path, capsys):
    js, cs, png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    assert main(["simulate", "tiny", "--npu", "examples/npu/edge-45nm.yaml", "--tokens", "2", "--prefill", "16",
                 "--out", str(js), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "layer 0" in out and "total" in out and "INT8 MAC array" in out and "FP16 MAC array" in out
    data = json.loads(js.read_text())
    assert data["tech"]["name"] == "horowitz-45nm" and data["rows"][-1]["part"] == "total"
    step = data["whole_step"]
    assert step["components"][0]["name"] == "BitLinears (array)" and len(step["components"]) == 8
    assert sum(sum(c[f"{k}_uJ"] for k in ("compute", "SRAM", "DRAM")) for c in step["components"]) == pytest.approx(
        step["energy_uJ"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for m in data["mappings"]:     # each kernel's traffic, spilled partial sums included, within its bounds
        assert m["dram_bytes"] >= m["dram_bound_bytes"] >= m["dram_min_bytes"] and m["psum_spill_bytes"] >= 0
    assert "no schedule on these buffers moves less than" in out
    assert main(["simulate", "tiny", "--out", str(cs)]) == 0
    rows = list(csv.DictReader(cs.open()))
    assert rows[-1]["part"] == "total" and float(rows[-1]["saving_vs_fp16"]) > 1
    assert main(["simulate", "tiny", "--out", str(tmp_path / "r.txt")]) == 2
    assert main(["simulate", "tiny", "--npu", str(tmp_path / "missing.yaml")]) == 2
    assert "no such NPU config" in capsys.readouterr().err


def test_sweep_grid_can_vary_the_dram_technology():
    from ternkit.sim.sweep import evaluate, load_grid, points

    base, grid = load_grid("examples/npu/sweep-dram.yaml")
    assert grid["dram.preset"] == ["ddr3", "lpddr4", "hbm2"]
    settings = [s for s in points(grid) if dict(s)["dram.gb_per_s"] == 25.6 and dict(s)["array.columns"] == 64
                and dict(s)["buffers.weight.kib"] == 256]
    got = {dict(s)["dram.preset"]: evaluate((base, s, "tiny", 1, 0, False)) for s in settings}
    assert got["hbm2"].energy_uj < got["lpddr4"].energy_uj < got["ddr3"].energy_uj
    assert got["hbm2"].seconds == got["ddr3"].seconds          # the preset is energy only


def test_sweep_over_every_dram_preset(tmp_path, capsys):
    from ternkit.sim.dram import preset_names

    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {DEFAULT_CONFIG}\ngrid:\n  dram.preset: [{', '.join(preset_names())}]\n")
    out = tmp_path / "points.csv"
    assert main(["sweep", "tiny", "--grid", str(grid), "--tokens", "1", "-j", "1", "--out", str(out)]) == 0
    rows = {r["dram.preset"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == set(preset_names()) and not any(r["error"] for r in rows.values())
    energy_uj = {k: float(r["energy_uJ"]) for k, r in rows.items()}
    assert energy_uj["ddr4"] == pytest.approx(energy_uj["ddr3"])    # Jouppi et al.: DDR3/4 one value
    assert energy_uj["hbm2"] < energy_uj["lpddr4"] < energy_uj["ddr4"]


def test_sweep_cli_and_pareto(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {DEFAULT_CONFIG}\ngrid:\n  array.columns: [16, 64]\n  array.fan_in: [2, 16]\n")
    out = tmp_path / "points.csv"
    assert main(["sweep", "tiny", "--grid", str(grid), "-j", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 configurations, 2 invalid" in text and "Pareto front" in text
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and any(r["pareto"] == "True" for r in rows)
    pts = [Point((("a", i),), s, e, 0.5) for i, (s, e) in enumerate([(1, 5), (2, 3), (3, 4), (4, 1)])]
    assert [p.settings[0][1] for p in pareto(pts)] == [0, 1, 3]
    # area as a third objective keeps a slower, hungrier but smaller point
    pts.append(Point((("a", 4),), 5, 6, 0.5, area=0.1))
    pts = [p if p.area else Point(p.settings, p.seconds, p.energy_uj, 0.5, area=1.0) for p in pts]
    assert [p.settings[0][1] for p in pareto(pts, with_area=True)] == [0, 1, 3, 4]


def test_npu_lowers_but_refuses_cpu_commands(tmp_path, capsys):
    from ternkit.codegen.plan import lower
    from ternkit.codegen.targets import best_native_target, get_target

    plan = lower(load_model("tiny"), get_target("npu"), (1, 8))
    assert len(plan.kernels) == 8 and best_native_target().name != "npu"
    for argv in (["generate", "tiny", "--target", "npu", "-o", str(tmp_path / "g")],
                 ["validate", "tiny", "--target", "npu"], ["bench", "tiny", "--target", "npu"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "ternkit simulate" in err[0]
    assert not (tmp_path / "g").exists()


def test_whole_step_of_2b4t_decode_counts_the_lm_head_and_kv_cache():
    """The issue's figures at 1K context: BitLinear weights 521 MB, tied BF16 LM head 657 MB, BF16 KV
    79 MB a token; the whole-step saving falls well below the BitLinear-only one."""
    model = load_model("bitnet-b1.58-2b4t", with_params=False)
    r = simulate_model(model, tokens=1, context=1024)
    comp = {c.name: c for c in r.step}
    assert r.total.events["ternary"].dram_bytes == pytest.approx(521e6, rel=0.01)
    assert comp["LM head"].dram_bytes == pytest.approx(128256 * 2560 * 2)
    # 30 layers x 5 KV heads x 128 x (K, V) x 2 bytes x 1024 tokens read, plus the new token's K and V written
    assert comp["attention (KV)"].dram_bytes == 30 * 5 * 128 * 2 * 2 * (1024 + 1)
    assert r.whole_pj() > 2 * r.total.total_pj()
    assert 1 < r.dynamic_pj("int8") / r.dynamic_pj() < r.savings("int8")
    assert r.tokens_per_s() == pytest.approx(1 / r.whole_seconds())
    assert r.tops_per_w() > 0 and r.tokens_per_j() > 0
    # a ternary LM head runs on the array (2-bit weights) and leaves only its (de)quantize on the vector unit
    t = simulate_model(model, tokens=1, context=1024, lm_head="ternary")
    assert t.head.macs == 128256 * 2560 and t.head.events["ternary"].dram_bytes >= 128256 * 2560 * 2 / 8
    assert {c.name: c for c in t.step}["LM head"].dram_bytes == 0
    assert t.total.total_pj() == r.total.total_pj()        # the BitLinears' own numbers are unchanged
    assert t.whole_pj() < r.whole_pj()
    # longer context: only attention and softmax grow
    long = simulate_model(model, tokens=1, context=4096)
    grew = {c.name for c, d in zip(long.step, r.step) if c.total_pj > d.total_pj}
    assert grew == {"attention (KV)", "softmax"}


def test_kv_precision_defaults_to_3_bits_for_a4_8_and_can_be_set():
    a48 = simulate_model(load_model("tiny-a4.8", with_params=False), tokens=1, context=64)
    assert a48.kv_bits == 3
    kv = {c.name: c for c in a48.step}["attention (KV)"].dram_bytes
    # 2 layers x 2 KV heads x 32 x (K, V) x (64 read + 1 written) x 3 bits
    assert kv == 2 * 2 * 32 * 2 * 65 * 3 / 8
    bf16 = simulate_model(load_model("tiny-a4.8", with_params=False), tokens=1, context=64, kv_bits=16)
    assert {c.name: c for c in bf16.step}["attention (KV)"].dram_bytes == kv * 16 / 3


def test_prefill_attends_causally_and_computes_logits_once():
    model = load_model("tiny", with_params=False)
    p = simulate_model(model, tokens=0, prefill=16)
    d = simulate_model(model, tokens=1, context=0)
    head_p = {c.name: c for c in p.step}["LM head"]
    head_d = {c.name: c for c in d.step}["LM head"]
    assert head_p.macs == head_d.macs          # the last token's logits only
    attn = {c.name: c for c in p.step}["attention (KV)"]
    c = model.config
    a = c.layers[0].attention
    assert attn.macs == c.n_layers * 2 * a.heads * a.head_dim * 16 * 17 / 2


@pytest.mark.parametrize("kwargs, message", [
    ({"context": -1}, "context must be"), ({"context": 4096}, "context 4096 exceeds the model's max_seq 256"),
    ({"kv_bits": 5}, "kv_bits must be one of"),
    ({"lm_head": "fp8"}, "lm_head must be one of")])
def test_bad_whole_step_workloads_are_refused(kwargs, message):
    with pytest.raises(TernkitError, match=message):
        simulate_model(load_model("tiny", with_params=False), tokens=1, **kwargs)


def test_simulate_cli_whole_step_flags(capsys):
    assert main(["simulate", "tiny", "--tokens", "1", "--context", "128", "--kv-bits", "8", "--lm-head", "int8"]) == 0
    out = capsys.readouterr().out
    assert "context 128 tokens, KV cache 8-bit, LM head int8" in out and "tokens/s" in out and "TOPS/W" in out
    assert main(["simulate", "tiny", "--bitlinear-only"]) == 0
    assert "whole step" not in capsys.readouterr().out


@pytest.mark.parametrize("model_name, kv_bits, lm_head, prefill, tokens, context", [
    ("tiny", 16, "bf16", False, 1, 37), ("tiny-a4.8", 3, "int8", False, 1, 200), ("tiny", 8, "ternary", True, 13, 0),
    ("tiny-v1", 4, "bf16", True, 1, 0), ("tiny", 16, "int8", False, 1, 0), ("tiny-no-subln", 16, "bf16", False, 1, 9)])
def test_step_c_model_counts_what_the_closed_form_computes(model_name, kv_bits, lm_head, prefill, tokens, context):
    """The vector-unit components: a C loop over every layer, token, head, position and element
    against ternkit.sim.step's closed form, counter by counter and cycle by cycle."""
    from ternkit.sim.step import cost, step_work

    if model_name == "tiny-no-subln":
        from dataclasses import replace

        from ternkit.graph.modelgraph import build_graph

        model = build_graph(replace(load_model("tiny", with_params=False).config, subln=False))
    else:
        model = load_model(model_name, with_params=False)
    cfg = config_from_dict({**small(), "vector": {"lanes": 7}, "dram": {"gb_per_s": 3.3}}, "v")
    got = cmodel.run_step(cfg, model, tokens, context, kv_bits, lm_head, prefill)
    for name, work in step_work(model, tokens, context, kv_bits, lm_head, prefill).items():
        c = got[name]
        assert (c["ops"], c["macs"], c["int8_macs"]) == (work.ops, work.macs, work.int8_macs), name
        assert c["dram_bits"] == work.dram_bytes * 8 and c["sram_bits"] == work.sram_bits, name
        assert c["cycles"] == cost(name, work, cfg).cycles, name
