"""The generated Verilog column: Icarus Verilog simulation bit-exact against the reference (and the
documented saturation), cycle-exact against the C model of a one-column NPU; yosys synthesis of the
ternary and the INT8 MAC column. Needs iverilog and yosys (.ci/run installs them)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternkit.reference.quant import ternary_matmul
from ternkit.sim import cmodel, config_from_dict
from ternkit.sim.config import DEFAULT_CONFIG
from ternkit.sim.rtl import column_of, one_column_config, simulate, synthesize
from ternkit.yamlio import read_yaml

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("iverilog", "vvp", "yosys")),
                                reason="iverilog/yosys not installed (apt-get install -y iverilog yosys; CI installs them)")
BASE = read_yaml(DEFAULT_CONFIG)


def npu(inputs: int, fan_in: int, acc_bits: int = 24, per: int = 1):
    return config_from_dict({**BASE, "array": {"columns": 4, "inputs": inputs, "fan_in": fan_in, "acc_bits": acc_bits,
                                               "levels_per_stage": per}}, f"{inputs}x{fan_in}/{per}")


@st.composite
def problem(draw):
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 40)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    kind = draw(st.sampled_from(["random", "ones", "minus", "zeros"]))
    w = {"random": lambda: rng.integers(-1, 2, (m, k)), "zeros": lambda: np.zeros((m, k)),
         "ones": lambda: np.ones((m, k)), "minus": lambda: -np.ones((m, k))}[kind]().astype(np.int8)
    x = rng.integers(-128, 128, (n, k)).astype(np.int8)
    edge = draw(st.sampled_from([None, -128, 127]))
    if edge is not None:
        x[:] = edge
    return w, x


@pytest.mark.parametrize("inputs, fan_in, per", [(8, 2, 1), (16, 4, 1), (16, 2, 3)])   # per: tree levels a stage
@settings(max_examples=6, deadline=None)
@given(p=problem())
def test_rtl_column_is_bit_exact_and_cycle_exact(inputs, fan_in, per, p):
    w, x = p
    cfg = npu(inputs, fan_in, per=per)
    want = ternary_matmul(x, w)
    _, ev = cmodel.run(one_column_config(cfg), w, x)
    for kind in ("ternary", "int8"):
        y, cycles = simulate(column_of(cfg, kind), w, x)
        np.testing.assert_array_equal(y, want, err_msg=kind)
        assert cycles == ev.cycles, kind      # the MAC column has the same schedule and depth


def test_rtl_accumulator_saturates_like_the_c_model():
    cfg = npu(8, 2, acc_bits=12)          # the narrowest allowed: the tree root of 8 inputs
    rng = np.random.default_rng(3)
    w = rng.integers(-1, 2, (3, 37)).astype(np.int8)
    w[0], w[1] = 1, -1
    x = np.full((2, 37), 127, dtype=np.int8)
    x[1] = -128
    y, _ = simulate(column_of(cfg), w, x)
    want, _ = cmodel.run(cfg, w, x)
    np.testing.assert_array_equal(y, want)
    assert y[0, 0] == 2047 and y[0, 1] == -2048 and y[1, 0] == -2048 and y[1, 1] == 2047


def test_synthesis_ternary_column_is_smaller_than_the_int8_mac_column():
    cfg = npu(8, 2)
    tern, mac = synthesize(column_of(cfg, "ternary")), synthesize(column_of(cfg, "int8"))
    assert tern["transistors"] > 0 and tern["flops"] > 0
    # 8 multipliers against 8 muxes: the MAC column is several times larger
    assert mac["transistors"] > 3 * tern["transistors"]


def test_area_static_power_and_clock_come_from_synthesis(tmp_path, capsys):
    from ternkit.cli import main
    from ternkit.graph import load_model
    from ternkit.sim import simulate_model
    from ternkit.sim.area import area_mm2, fmax_ghz

    cfg = npu(8, 2)
    tern, mac = area_mm2(cfg), area_mm2(cfg, "int8")
    assert tern["SRAM"] == mac["SRAM"] > 0 and 0 < tern["array logic"] < mac["array logic"]
    # 384 KiB of 7 nm bitcells (0.027 um2) at 70 % array efficiency
    assert tern["SRAM"] == pytest.approx(384 * 1024 * 8 * 0.027 / 0.7 / 1e6)
    assert 0.5 < fmax_ghz(cfg) < 10
    # a 32-input tree with no register inside (5 levels a stage): fewer flip-flops, a longer path
    piped, flat = npu(32, 2), npu(32, 2, per=5)
    assert fmax_ghz(flat) < fmax_ghz(piped) and area_mm2(flat)["array logic"] < area_mm2(piped)["array logic"]
    r = simulate_model(load_model("tiny", with_params=False), cfg, tokens=1, area=True)
    assert r.static_mw == pytest.approx(tern["total"] * 10.0)
    assert r.whole_pj() == pytest.approx(r.dynamic_pj() + r.static_mw * 1e-3 * r.whole_seconds() * 1e12)
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: " + str(DEFAULT_CONFIG) + "\ngrid:\n  array.inputs: [8]\n  array.fan_in: [2, 8]\n"
                    "  array.columns: [4, 16]\n")
    png = tmp_path / "front.png"
    assert main(["sweep", "tiny", "--grid", str(grid), "--area", "-j", "1", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "area mm2" in out and png.read_bytes()[:4] == b"\x89PNG"
