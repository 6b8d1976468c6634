"""The NPU architecture description (YAML): a pydantic schema whose fields carry the defaults, checked
field by field with paths in the messages.

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
dram: {gb_per_s: 25.6}             # optional preset: ddr3 | ddr4 | lpddr4 | gddr5 | hbm | hbm2 pJ/bit (sim/dram.py)
vector: {lanes: 64}                # BF16 vector unit: norms, softmax, attention, (de)quantize, LM head
stream_decode_weights: false       # decode weights go DRAM -> select-unit registers, past the weight SRAM
tech: {table: bitnet-7nm, overrides: {dram_pj_per_bit: 15.0}}
```
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, field_validator

from ternkit.errors import ConfigError
from ternkit.schema import (Bool, PositiveInt, PositiveNumber, Section, checked, one_of, problem, problems, section,
                            validate)
from ternkit.sim.dram import DRAM_PRESETS, preset_names, with_dram_preset
from ternkit.sim.tech import Tech, load_tech, tech_names
from ternkit.yamlio import read_yaml

DATAFLOWS = ("weight_stationary", "output_stationary")
CONFIG_DIR = Path(__file__).parent / "configs"
MAX_INPUTS = 1 << 16          # select units a column: beyond any published array, and bounds the C model's scratch
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


def root_bits(inputs: int) -> int:
    """Width of the adder-tree root: 9-bit (negated int8) inputs summed over `inputs` lanes."""
    return 9 + max(inputs - 1, 0).bit_length()


def _power_of(n: int, base: int) -> bool:
    while n > 1 and n % base == 0:
        n //= base
    return n == 1


@section
class Array(Section):
    """Fields in the order their checks need them: each relation is checked once the fields it relates are valid."""

    columns: PositiveInt = 64          # processing columns: output rows computed in parallel
    fan_in: PositiveInt = 4            # adder-tree node fan-in (inputs = fan_in ** levels)
    inputs: PositiveInt = 64           # ternary select units per column: K entries a cycle
    acc_bits: PositiveInt = 24         # accumulator width (saturating)
    zero_gating: Bool = True           # a zero weight costs no add
    levels_per_stage: PositiveInt = 1  # adder-tree levels between pipeline registers (the root is always registered)

    @field_validator("fan_in")
    @classmethod
    def _binary_tree_nodes(cls, fan_in: int) -> int:
        if fan_in < 2 or fan_in & (fan_in - 1):
            raise problem("", f"must be a power of two >= 2, got {fan_in}")
        return fan_in

    @field_validator("inputs")
    @classmethod
    def _complete_tree(cls, inputs: int, info: ValidationInfo) -> int:
        found, fan_in = [], info.data.get("fan_in")
        if fan_in and (inputs < fan_in or not _power_of(inputs, fan_in)):
            found.append(("", f"must be a power of fan_in ({fan_in}), at least fan_in, so the adder tree is "
                              f"complete, got {inputs}"))
        if inputs > MAX_INPUTS:
            found.append(("", f"must be at most {MAX_INPUTS} select units a column, got {inputs}"))
        if found:
            raise problems(*found)
        return inputs

    @field_validator("acc_bits")
    @classmethod
    def _holds_the_root(cls, acc_bits: int, info: ValidationInfo) -> int:
        inputs = info.data.get("inputs")
        if not 2 <= acc_bits <= 32:
            raise problem("", f"must be in [2, 32], got {acc_bits}")
        if inputs and acc_bits < root_bits(inputs):
            raise problem("", f"must be at least the adder-tree root width {root_bits(inputs)} bits "
                              f"(9-bit inputs + log2({inputs})), got {acc_bits}")
        return acc_bits


@section
class Buffer(Section):
    kib: PositiveNumber
    width_bits: PositiveInt
    banks: PositiveInt

    @property
    def bits_per_cycle(self) -> int:
        return self.width_bits * self.banks

    @property
    def bytes(self) -> float:
        return self.kib * 1024


@section
class Buffers(Section):
    weight: Buffer = Buffer(256, 256, 4)
    activation: Buffer = Buffer(64, 256, 2)
    output: Buffer = Buffer(64, 256, 2)


def _preset(v: Any) -> str | None:
    if v is not None and v not in DRAM_PRESETS:
        raise ValueError(f"must be one of {', '.join(preset_names())}, got {v!r}")
    return v


@section
class Dram(Section):
    gb_per_s: PositiveNumber = 25.6
    preset: checked(_preset) = None     # its pJ/bit replace the technology table's dram_pj_per_bit


@section
class Vector(Section):
    lanes: PositiveInt = 64            # vector-unit operations a cycle (a MAC is one)


def _table(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be one of {', '.join(tech_names())} or a path, got {v!r}")
    return v


def _overrides(v: Any) -> dict:
    """A mapping of technology fields (checked by `load_tech`, which knows the table)."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError("must be a mapping")
    return v


@section
class TechChoice(Section):
    table: checked(_table, str) = "bitnet-7nm"
    overrides: checked(_overrides, dict) = dataclasses.field(default_factory=dict)


@section
class NpuSpec(Section):
    """The YAML file, section by section (fields a check relates come first)."""

    name: checked(str, str)
    clock_ghz: PositiveNumber = 1.0
    array: Array = Array()
    dataflow: one_of(*DATAFLOWS) = "weight_stationary"
    double_buffering: Bool = True
    weight_bits: one_of(2, 8, 16) = 2
    buffers: Buffers = Buffers()
    tech: TechChoice = TechChoice()
    dram: Dram = Dram()                  # after tech: a preset conflicts with a dram_pj_per_bit override
    vector: Vector = Vector()
    stream_decode_weights: Bool = False  # decode weights go DRAM -> select-unit registers, past the weight SRAM

    @field_validator("dram")
    @classmethod
    def _one_dram_energy(cls, dram: Dram, info: ValidationInfo) -> Dram:
        tech = info.data.get("tech")
        if tech and dram.preset is not None and "dram_pj_per_bit" in tech.overrides:
            raise problem("preset", "conflicts with tech.overrides.dram_pj_per_bit: set one of them")
        return dram


@dataclass(frozen=True)
class NpuConfig:
    """What the simulator reads: the spec flattened, with the technology table loaded."""

    name: str
    clock_ghz: float
    columns: int
    inputs: int
    fan_in: int
    acc_bits: int
    zero_gating: bool
    dataflow: str
    double_buffering: bool
    weight_bits: int
    weight_buf: Buffer
    act_buf: Buffer
    out_buf: Buffer
    dram_gb_per_s: float
    tech: Tech
    vector_lanes: int
    stream_decode_weights: bool
    levels_per_stage: int

    @classmethod
    def from_spec(cls, spec: NpuSpec, tech: Tech) -> "NpuConfig":
        a = spec.array
        return cls(name=spec.name, clock_ghz=spec.clock_ghz, columns=a.columns, inputs=a.inputs, fan_in=a.fan_in,
                   acc_bits=a.acc_bits, zero_gating=a.zero_gating, dataflow=spec.dataflow,
                   double_buffering=spec.double_buffering, weight_bits=spec.weight_bits,
                   weight_buf=spec.buffers.weight, act_buf=spec.buffers.activation, out_buf=spec.buffers.output,
                   dram_gb_per_s=spec.dram.gb_per_s, tech=tech, vector_lanes=spec.vector.lanes,
                   stream_decode_weights=spec.stream_decode_weights, levels_per_stage=a.levels_per_stage)

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


def config_from_dict(data: Any, source: str = "<dict>") -> NpuConfig:
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: the NPU config must be a YAML mapping")
    heading = f"{source}: invalid NPU config: "
    spec = validate(NpuSpec, {"name": Path(source).stem, **(data or {})}, heading)
    try:
        tech = load_tech(spec.tech.table, spec.tech.overrides, "tech")
    except ConfigError as exc:
        raise ConfigError(f"{heading}{exc}") from None
    preset = spec.dram.preset
    if preset is not None:     # the preset's energy, named in the table's name and source
        tech = with_dram_preset(tech, preset)
    return NpuConfig.from_spec(spec, tech)


def load_npu_config(path: str | Path | None = None) -> NpuConfig:
    """A config file, a name under ternkit/sim/configs/, or the default."""
    if path is None:
        path = DEFAULT_CONFIG
    p = Path(path)
    if p.suffix not in (".yaml", ".yml") and (CONFIG_DIR / f"{path}.yaml").is_file():
        p = CONFIG_DIR / f"{path}.yaml"
    return config_from_dict(read_yaml(p, "NPU config"), str(p))
