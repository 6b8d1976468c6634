"""The NPU architecture description (YAML), validated field by field with paths in the messages.

```yaml
name: default
clock_ghz: 1.0
array: {columns: 64, inputs: 64, fan_in: 4, acc_bits: 24, zero_gating: true, levels_per_stage: 1}
dataflow: weight_stationary        # or output_stationary
double_buffering: true
weight_bits: 2                     # packed ternary code width in SRAM/DRAM (2: i2 codes)
buffers:                           # on-chip SRAM: size, port width, banks (bits a cycle = width * banks)
  weight:     {kib: 256, width_bits: 256, banks: 4}
  activation: {kib: 64,  width_bits: 256, banks: 2}
  output:     {kib: 64,  width_bits: 256, banks: 2}
dram: {gb_per_s: 25.6}             # optional preset: ddr3 | lpddr4 | gddr5 | hbm | hbm2 pJ/bit (sim/dram.py)
vector: {lanes: 64}                # BF16 vector unit: norms, softmax, attention, (de)quantize, LM head
stream_decode_weights: false       # decode weights go DRAM -> select-unit registers, past the weight SRAM
tech: {table: bitnet-7nm, overrides: {dram_pj_per_bit: 15.0}}
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ternkit.errors import ConfigError
from ternkit.graph.config import _Reader as _GraphReader
from ternkit.sim.dram import DRAM_PRESETS, preset_names, with_dram_preset
from ternkit.sim.tech import Tech, load_tech, tech_names
from ternkit.yamlio import read_yaml

DATAFLOWS = ("weight_stationary", "output_stationary")
CONFIG_DIR = Path(__file__).parent / "configs"
MAX_INPUTS = 1 << 16          # select units a column: beyond any published array, and bounds the C model's scratch
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


@dataclass(frozen=True)
class Buffer:
    kib: float
    width_bits: int
    banks: int

    @property
    def bits_per_cycle(self) -> int:
        return self.width_bits * self.banks

    @property
    def bytes(self) -> float:
        return self.kib * 1024


@dataclass(frozen=True)
class NpuConfig:
    name: str
    clock_ghz: float
    columns: int          # processing columns: output rows computed in parallel
    inputs: int           # ternary select units per column: K entries a cycle
    fan_in: int           # adder-tree node fan-in (inputs = fan_in ** levels)
    acc_bits: int         # accumulator width (saturating)
    zero_gating: bool     # a zero weight costs no add
    dataflow: str
    double_buffering: bool
    weight_bits: int
    weight_buf: Buffer
    act_buf: Buffer
    out_buf: Buffer
    dram_gb_per_s: float
    tech: Tech
    vector_lanes: int = 64             # vector-unit operations a cycle (a MAC is one)
    stream_decode_weights: bool = False
    levels_per_stage: int = 1          # adder-tree levels between pipeline registers (the root is always registered)

    @property
    def levels(self) -> int:
        return round(math.log(self.inputs, self.fan_in))

    def registered(self, level: int) -> bool:
        """Is tree level `level` (1-based) followed by a pipeline register?"""
        return level % self.levels_per_stage == 0 or level == self.levels

    @property
    def tree_stages(self) -> int:
        return sum(self.registered(lv) for lv in range(1, self.levels + 1))

    @property
    def pipeline_depth(self) -> int:
        """Select stage + the tree's register stages + the accumulator."""
        return self.tree_stages + 2

    @property
    def root_bits(self) -> int:
        return root_bits(self.inputs)

    def level_bits(self, level: int) -> int:
        """Width of the adder outputs at tree level `level` (1-based): 9-bit negated int8 inputs grow
        by log2(fan_in) bits a level, so the tree itself never overflows."""
        return 9 + level * int(math.log2(self.fan_in))

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_gb_per_s / self.clock_ghz

    def with_(self, **changes) -> "NpuConfig":
        return replace(self, **changes)


class _Reader(_GraphReader):
    """The graph config reader, but numbers must also be finite (NaN or inf would give silent zero or
    infinite energies)."""

    def pos_float(self, d: dict, key: str, path: str, default: float) -> float:
        v = d.get(key, default)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
            self.fail(f"{path}.{key}" if path else key, f"must be a finite positive number, got {v!r}")
            return default
        return super().pos_float(d, key, path, default)


def root_bits(inputs: int) -> int:
    """Width of the adder-tree root: 9-bit (negated int8) inputs summed over `inputs` lanes."""
    return 9 + max(inputs - 1, 0).bit_length()


def _power_of(n: int, base: int) -> bool:
    while n > 1 and n % base == 0:
        n //= base
    return n == 1


def config_from_dict(data: Any, source: str = "<dict>") -> NpuConfig:
    r = _Reader()
    top = {"name", "clock_ghz", "array", "dataflow", "double_buffering", "weight_bits", "buffers", "dram", "tech",
           "vector", "stream_decode_weights"}
    d = r.mapping(data, "", top)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: the NPU config must be a YAML mapping")
    arr = r.mapping(d.get("array"), "array", {"columns", "inputs", "fan_in", "acc_bits", "zero_gating",
                                              "levels_per_stage"})
    columns = r.pos_int(arr, "columns", "array", 64)
    inputs = r.pos_int(arr, "inputs", "array", 64)
    fan_in = r.pos_int(arr, "fan_in", "array", 4)
    if fan_in and (fan_in < 2 or fan_in & (fan_in - 1)):
        r.fail("array.fan_in", f"must be a power of two >= 2, got {fan_in}")
        fan_in = None
    if fan_in and inputs and (inputs < fan_in or not _power_of(inputs, fan_in)):
        r.fail("array.inputs", f"must be a power of fan_in ({fan_in}), at least fan_in, so the adder tree is "
                               f"complete, got {inputs}")
    if inputs and inputs > MAX_INPUTS:
        r.fail("array.inputs", f"must be at most {MAX_INPUTS} select units a column, got {inputs}")
    acc_bits = r.pos_int(arr, "acc_bits", "array", 24)
    if acc_bits and not 2 <= acc_bits <= 32:
        r.fail("array.acc_bits", f"must be in [2, 32], got {acc_bits}")
    elif acc_bits and inputs and inputs <= MAX_INPUTS and acc_bits < root_bits(inputs):
        r.fail("array.acc_bits", f"must be at least the adder-tree root width {root_bits(inputs)} bits "
                                 f"(9-bit inputs + log2({inputs})), got {acc_bits}")
    bufs = r.mapping(d.get("buffers"), "buffers", {"weight", "activation", "output"})
    defaults = {"weight": (256, 256, 4), "activation": (64, 256, 2), "output": (64, 256, 2)}
    made = {}
    for key, (kib, width, banks) in defaults.items():
        b = r.mapping(bufs.get(key), f"buffers.{key}", {"kib", "width_bits", "banks"})
        made[key] = Buffer(r.pos_float(b, "kib", f"buffers.{key}", kib), r.pos_int(b, "width_bits", f"buffers.{key}", width),
                           r.pos_int(b, "banks", f"buffers.{key}", banks))
    dram = r.mapping(d.get("dram"), "dram", {"gb_per_s", "preset"})
    tech_d = r.mapping(d.get("tech"), "tech", {"table", "overrides"})
    overrides = r.mapping(tech_d.get("overrides"), "tech.overrides", set(_tech_fields()))
    preset = dram.get("preset")
    if preset is not None and preset not in DRAM_PRESETS:
        r.fail("dram.preset", f"must be one of {', '.join(preset_names())}, got {preset!r}")
        preset = None
    elif preset is not None and "dram_pj_per_bit" in overrides:
        r.fail("dram.preset", "conflicts with tech.overrides.dram_pj_per_bit: set one of them")
    cfg = dict(
        name=str(d.get("name", Path(source).stem)), clock_ghz=r.pos_float(d, "clock_ghz", "", 1.0),
        columns=columns, inputs=inputs, fan_in=fan_in, acc_bits=acc_bits,
        zero_gating=r.boolean(arr, "zero_gating", "array", True),
        dataflow=r.choice(d, "dataflow", "", DATAFLOWS, "weight_stationary"),
        double_buffering=r.boolean(d, "double_buffering", "", True),
        weight_bits=r.choice(d, "weight_bits", "", (2, 8, 16), 2),
        weight_buf=made["weight"], act_buf=made["activation"], out_buf=made["output"],
        dram_gb_per_s=r.pos_float(dram, "gb_per_s", "dram", 25.6),
        vector_lanes=r.pos_int(r.mapping(d.get("vector"), "vector", {"lanes"}), "lanes", "vector", 64),
        stream_decode_weights=r.boolean(d, "stream_decode_weights", "", False),
        levels_per_stage=r.pos_int(arr, "levels_per_stage", "array", 1),
    )
    table = tech_d.get("table", "bitnet-7nm")
    if not isinstance(table, str):
        r.fail("tech.table", f"must be one of {', '.join(tech_names())} or a path, got {table!r}")
    if r.errors:
        raise ConfigError(f"{source}: invalid NPU config: " + "; ".join(r.errors))
    try:
        tech = load_tech(table, overrides, "tech")
    except ConfigError as exc:
        raise ConfigError(f"{source}: invalid NPU config: {exc}") from None
    if preset is not None:     # the preset's energy, named in the table's name and source
        tech = with_dram_preset(tech, preset)
    return NpuConfig(tech=tech, **cfg)


def _tech_fields() -> list[str]:
    from dataclasses import fields

    return [f.name for f in fields(Tech) if f.name not in ("name", "source", "assumptions")]


def load_npu_config(path: str | Path | None = None) -> NpuConfig:
    """A config file, a name under ternkit/sim/configs/, or the default."""
    if path is None:
        path = DEFAULT_CONFIG
    p = Path(path)
    if p.suffix not in (".yaml", ".yml") and (CONFIG_DIR / f"{path}.yaml").is_file():
        p = CONFIG_DIR / f"{path}.yaml"
    return config_from_dict(read_yaml(p, "NPU config"), str(p))
