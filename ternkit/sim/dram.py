"""DRAM energy presets (`dram.preset` in the NPU config, `simulate --dram`): pJ per bit moved, each with
its source and what the number covers. They replace the technology table's `dram_pj_per_bit`.

Scope: every preset is the energy of a whole access as its source gives it, one number per bit that
crosses the interface (row activation amortised over the access, on-die data movement and the I/O),
not the I/O alone; a published PHY/interface figure (e.g. an HBM3 PHY's 0.29 pJ/bit) is a part of that
and is not a preset. Only types with a number we could trace to a publication are here: we found no
published whole-access pJ/bit we could trace for DDR5, LPDDR5 or HBM3 (vendor material gives bandwidth
and relative power, papers give interface-only figures or cite none), so those are absent; set
`tech.overrides.dram_pj_per_bit` from your part's data."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ternkit.errors import ConfigError
from ternkit.sim.tech import Tech


@dataclass(frozen=True)
class DramPreset:
    pj_per_bit: float
    covers: str          # what the published number includes
    source: str          # the publication and where in it


_OCONNOR = ("M. O'Connor et al., \"Fine-Grained DRAM: energy-efficient DRAM for extreme bandwidth systems\", "
            "MICRO 2017 (https://research.nvidia.com/publication/2017-10_Fine-Grained-DRAM%3A-Energy-Efficient)")
_JOUPPI = ("N. P. Jouppi et al., \"Ten lessons from three generations shaped Google's TPUv4i\", ISCA 2021, "
           "Table 2 (Horowitz's energy table updated to 7 nm)")
_WHOLE = "a whole access (activation, on-die data movement, I/O)"

DRAM_PRESETS: dict[str, DramPreset] = {
    "ddr3": DramPreset(20.3125, f"{_WHOLE}, one number a 64-bit access",
                       "M. Horowitz, \"Computing's energy problem\", ISSCC 2014: 1.3-2.6 nJ a 64-bit DRAM access "
                       "(the low end, 1.3 nJ / 64 bits)"),
    "ddr4": DramPreset(20.3125, f"{_WHOLE}, one number a 64-bit access",
                       f"{_JOUPPI}: DDR3/4 1,300 pJ a 64-bit access at 45 nm and at 7 nm (1,300 / 64); the paper "
                       "gives DDR3 and DDR4 one value"),
    "lpddr4": DramPreset(13.0, "a whole access of the package as DramDSE simulates it",
                         "Heonjae Ha, PhD thesis, Stanford University (https://stacks.stanford.edu/file/yp843xn4828/"
                         "Heonjae_Thesis-augmented.pdf): a 4x8Gb LPDDR4 quad-die package, 13 pJ/bit simulated with "
                         "DramDSE"),
    "gddr5": DramPreset(14.0, _WHOLE, f"{_OCONNOR}: 14 pJ/bit for a GDDR5 access"),
    "hbm": DramPreset(7.0, "a whole HBM access, one number (the paper gives no split)",
                      "M. Yan et al., \"HyGCN: a GCN accelerator with hybrid architecture\", HPCA 2020: 7 pJ/bit "
                      "for an HBM access"),
    "hbm2": DramPreset(3.97, f"{_WHOLE} over the interposer",
                       f"{_OCONNOR}: 3.97 pJ/bit for an HBM2 access; {_JOUPPI} gives HBM2 250-450 pJ a 64-bit "
                       "access (3.9-7.0 pJ/bit)"),
}


def preset_names() -> list[str]:
    return sorted(DRAM_PRESETS)


def with_dram_preset(tech: Tech, preset: str) -> Tech:
    """`tech` with the preset's DRAM energy, the preset named in the table's name and cited in its source."""
    if preset not in DRAM_PRESETS:
        raise ConfigError(f"dram.preset: must be one of {', '.join(preset_names())}, got {preset!r}")
    p = DRAM_PRESETS[preset]
    return replace(tech, dram_pj_per_bit=p.pj_per_bit, name=f"{tech.name} + {preset} DRAM",
                   source=f"{tech.source} DRAM ({preset}, {p.pj_per_bit} pJ/bit, {p.covers}): {p.source}.")
