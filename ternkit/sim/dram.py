"""DRAM energy presets (`dram.preset` in the NPU config): pJ per bit moved, each with its source.
They replace the technology table's `dram_pj_per_bit`. Only types with a number we could trace to a
publication are here (no DDR5/LPDDR5/HBM3 yet): for other parts set `tech.overrides.dram_pj_per_bit`."""

from __future__ import annotations

DRAM_PRESETS: dict[str, tuple[float, str]] = {
    "ddr3": (20.3125, "M. Horowitz, \"Computing's energy problem\", ISSCC 2014: 1.3-2.6 nJ a 64-bit DRAM access "
                      "(the low end, 1.3 nJ / 64 bits)"),
    "lpddr4": (13.0, "Heonjae Ha, PhD thesis, Stanford University (https://stacks.stanford.edu/file/yp843xn4828/"
                     "Heonjae_Thesis-augmented.pdf): a 4x8Gb LPDDR4 quad-die package, 13 pJ/bit simulated with DramDSE"),
    "hbm": (7.0, "M. Yan et al., \"HyGCN: a GCN accelerator with hybrid architecture\", HPCA 2020: 7 pJ/bit "
                 "for an HBM access"),
}


def preset_names() -> list[str]:
    return sorted(DRAM_PRESETS)
