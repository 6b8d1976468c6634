"""DRAM energy presets (`dram.preset` in the NPU config, `simulate --dram`): pJ per bit moved, each with
its source. They replace the technology table's `dram_pj_per_bit`. Only types with a number we could
trace to a publication are here. We found no published pJ/bit we could trace for DDR4, DDR5, LPDDR5 or
HBM3 (vendor pages give bandwidth and relative power, not energy per bit): for those parts set
`tech.overrides.dram_pj_per_bit` from your vendor's data."""

from __future__ import annotations

from dataclasses import replace

from ternkit.errors import ConfigError
from ternkit.sim.tech import Tech

_OCONNOR = ("M. O'Connor et al., \"Fine-Grained DRAM: energy-efficient DRAM for extreme bandwidth systems\", "
            "MICRO 2017 (https://research.nvidia.com/publication/2017-10_Fine-Grained-DRAM%3A-Energy-Efficient)")

DRAM_PRESETS: dict[str, tuple[float, str]] = {
    "ddr3": (20.3125, "M. Horowitz, \"Computing's energy problem\", ISSCC 2014: 1.3-2.6 nJ a 64-bit DRAM access "
                      "(the low end, 1.3 nJ / 64 bits)"),
    "lpddr4": (13.0, "Heonjae Ha, PhD thesis, Stanford University (https://stacks.stanford.edu/file/yp843xn4828/"
                     "Heonjae_Thesis-augmented.pdf): a 4x8Gb LPDDR4 quad-die package, 13 pJ/bit simulated with DramDSE"),
    "gddr5": (14.0, f"{_OCONNOR}: 14 pJ/bit for a GDDR5 access (row activation, on-die data movement and I/O)"),
    "hbm": (7.0, "M. Yan et al., \"HyGCN: a GCN accelerator with hybrid architecture\", HPCA 2020: 7 pJ/bit "
                 "for an HBM access"),
    "hbm2": (3.97, f"{_OCONNOR}: 3.97 pJ/bit for an HBM2 access (row activation, on-die data movement and "
                   "interposer I/O)"),
}


def preset_names() -> list[str]:
    return sorted(DRAM_PRESETS)


def with_dram_preset(tech: Tech, preset: str) -> Tech:
    """`tech` with the preset's DRAM energy, the preset named in the table's name and cited in its source."""
    if preset not in DRAM_PRESETS:
        raise ConfigError(f"dram.preset: must be one of {', '.join(preset_names())}, got {preset!r}")
    pj, cite = DRAM_PRESETS[preset]
    return replace(tech, dram_pj_per_bit=pj, name=f"{tech.name} + {preset} DRAM",
                   source=f"{tech.source} DRAM ({preset}, {pj} pJ/bit): {cite}.")
