"""Synthesize the generated NPU columns (ternary select units vs INT8 multipliers, equal lanes a cycle)
with yosys and print cells, transistors (`stat -tech cmos`), flip-flops, the longest path in gates, and
the array's logic area at 7 nm; then check one RTL simulation against the reference and the C model.

    .venv/bin/python benchmarks/npu_rtl.py          (needs iverilog and yosys; ~2 min the first time, cached)
"""

from __future__ import annotations

import numpy as np

from ternkit.reference.quant import ternary_matmul
from ternkit.sim import cmodel, config_from_dict
from ternkit.sim.area import area_mm2, fmax_ghz
from ternkit.sim.config import DEFAULT_CONFIG
from ternkit.sim.rtl import column_of, one_column_config, simulate, synthesize
from ternkit.yamlio import read_yaml

COLUMNS = [(16, 2), (16, 4), (64, 4), (64, 64)]     # (inputs, fan-in)


def main() -> None:
    base = read_yaml(DEFAULT_CONFIG)
    print("column (lanes x fan-in)  kind     cells   transistors  flops  path (gates)  fmax GHz  64-column logic mm2 (7 nm)")
    for inputs, fan_in in COLUMNS:
        cfg = config_from_dict({**base, "array": {**base["array"], "inputs": inputs, "fan_in": fan_in}}, "col")
        stats = {}
        for kind in ("ternary", "int8"):
            s = stats[kind] = synthesize(column_of(cfg, kind))
            print(f"{inputs:>4} x {fan_in:<18} {kind:<8} {s['cells']:>6,}  {s['transistors']:>11,}  {s['flops']:>5,}"
                  f"  {s['depth']:>12}  {fmax_ghz(cfg, kind):>8.2f}  {area_mm2(cfg, kind)['array logic']:>10.4f}")
        print(f"{'':25}INT8 MAC / ternary transistors: {stats['int8']['transistors'] / stats['ternary']['transistors']:.2f}x")
    cfg = config_from_dict({**base, "array": {**base["array"], "inputs": 16, "fan_in": 4}}, "col")
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, (8, 100)).astype(np.int8)
    x = rng.integers(-128, 128, (4, 100)).astype(np.int8)
    _, ev = cmodel.run(one_column_config(cfg), w, x)
    for kind in ("ternary", "int8"):
        y, cycles = simulate(column_of(cfg, kind), w, x)
        print(f"RTL {kind} column, [8, 100] x 4 tokens: y {'==' if (y == ternary_matmul(x, w)).all() else '!='} reference,"
              f" {cycles} cycles (C model {ev.cycles})")


if __name__ == "__main__":
    main()
