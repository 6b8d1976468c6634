"""Analytic cycle/energy model of the multiplier-free NPU (and of MAC arrays on the same schedule).

The array has `columns` processing columns; each has `inputs` ternary select units (pass +x, -x or 0:
a mux and a negate) feeding a pipelined adder tree of fan-in F (`inputs = F ** levels`) and a
saturating accumulator of `acc_bits`. One cycle = one token's `inputs` activations against one
column-tile of weights: a kernel [M, K] x N tokens is `m_tiles x k_tiles x N` steps
(`m_tiles = ceil(M / columns)`, `k_tiles = ceil(K / inputs)`).

Schedule (the generated C model steps exactly this):
- weight_stationary: tokens go in tiles of `n_tile` (chosen by the mapper so that partial sums and
  activations fit their buffers); for each (token tile, m_tile, k_tile), in the mapper's loop order:
  load the tile's weights from the weight SRAM
  (`ceil(valid weight bits / weight port bits)` cycles), then stream N tokens, one a cycle (or more
  when a token's activations exceed the activation port). With double buffering the next tile loads
  while the current one streams: a tile costs `max(load, stream)`, the first `load + stream`.
  Partial sums live in the output SRAM (read-modify-write for k_tile > 0).
- output_stationary: for each (m_tile, token): for each k_tile: one step of
  `max(1, ceil(weight bits / weight port), ceil(act bits / act port))` cycles; the accumulators stay
  in registers and are written once.
- the pipeline (select, one stage a tree level, accumulator) fills once a kernel: `depth` cycles.
- DRAM: the mapper (`ternkit.sim.mapper`) blocks the kernel (loop order, m-block rows, token tile,
  K chunks) to move the fewest bytes; the on-chip cycles above depend only on the token tile. With
  double buffering DRAM transfers overlap the array (`max`), else they add.
Events: selects (valid lanes), zero-gated lanes, tree adds per level (an F-input node with c live
inputs does c-1 two-input adds when zero gating is on, F-1 otherwise), accumulator adds, register bits
written, SRAM bits read/written per buffer, DRAM bytes. Padding lanes (K, M tails) are idle.

Adds are exact when the weights are known (`live` = the nonzero mask) and expectations under
independent zeros of the given density otherwise; the same formula does both (on 0/1 inputs the
expectation `sum p - 1 + prod(1 - p)` is exactly `max(c - 1, 0)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ternkit.sim.config import NpuConfig
from ternkit.sim.mapper import Mapping, choose_mapping

ARITHS = ("ternary", "int8", "fp16")
# absmean ternary of Gaussian weights: P(|w| < 0.5 E|w|) = P(|z| < 0.399) = 0.31 zeros
DEFAULT_DENSITY = 0.69
COMPONENTS = ("select/mult", "adder tree", "accumulator", "registers", "weight SRAM", "act SRAM",
              "output SRAM", "DRAM")


@dataclass
class Events:
    """Counts for one kernel call (or sums over calls). Cycles are integers; adds may be expectations."""

    cycles_compute: int = 0       # useful token-steps
    cycles_fill: int = 0          # pipeline fill/drain
    cycles_sram_stall: int = 0    # waiting on SRAM ports (weight loads, wide tiles)
    cycles_dram_stall: int = 0    # waiting on DRAM
    selects: float = 0            # valid (lane, token) pairs: mux+negate (or multiplies)
    zero_skips: float = 0         # of which gated off by a zero weight
    tree_adds: list = field(default_factory=list)   # per tree level (1-based)
    acc_adds: float = 0
    reg_bits: float = 0
    w_sram_read_bits: float = 0
    w_sram_write_bits: float = 0
    a_sram_read_bits: float = 0
    a_sram_write_bits: float = 0
    o_sram_read_bits: float = 0
    o_sram_write_bits: float = 0
    dram_bytes: float = 0
    dram_min_bytes: float = 0     # the bound: every weight, activation and output moved once

    @property
    def cycles(self) -> int:
        return self.cycles_compute + self.cycles_fill + self.cycles_sram_stall + self.cycles_dram_stall

    def _items(self):
        return ((f.name, getattr(self, f.name)) for f in fields(self))   # shallow: asdict deep-copies

    def scaled(self, k: float) -> "Events":
        return Events(**{name: (v * k if not isinstance(v, list) else [a * k for a in v]) for name, v in self._items()})

    def __add__(self, other: "Events") -> "Events":
        out = {}
        for k, a in self._items():
            b = getattr(other, k)
            if isinstance(a, list):
                n = max(len(a), len(b))
                out[k] = [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]
            else:
                out[k] = a + b
        return Events(**out)


def live_lanes(cfg: NpuConfig, M: int, K: int, w_q: np.ndarray | None, density: float) -> tuple[np.ndarray, float]:
    """(live probability [rows, k_tiles, inputs], rows multiplier): exact masks, or one representative row."""
    kt = -(-K // cfg.inputs)
    if w_q is not None:
        live = np.zeros((M, kt * cfg.inputs), dtype=np.float64)
        live[:, :K] = w_q != 0
        return live.reshape(M, kt, cfg.inputs), 1.0
    live = np.zeros((1, kt * cfg.inputs), dtype=np.float64)
    live[:, :K] = density
    return live.reshape(1, kt, cfg.inputs), float(M)


def tree_adds(cfg: NpuConfig, live: np.ndarray, rows: float, gating: bool) -> list[float]:
    """Two-input adds per tree level for one token."""
    F = cfg.fan_in
    out = []
    if not gating:
        valid_rows_tiles = live.shape[0] * live.shape[1] * rows
        nodes = cfg.inputs
        for _ in range(cfg.levels):
            nodes //= F
            out.append(valid_rows_tiles * nodes * (F - 1))
        return out
    p = live
    for _ in range(cfg.levels):
        g = p.reshape(*p.shape[:-1], -1, F)
        none_live = np.prod(1.0 - g, axis=-1)
        out.append(float((g.sum(axis=-1) - 1.0 + none_live).sum()) * rows)
        p = 1.0 - none_live
    return out


def tile_sizes(total: int, tile: int) -> list[tuple[int, int]]:
    """[(size, how many)] of the tiles covering `total`: the full ones, then the tail."""
    full, tail = divmod(total, tile)
    return ([(tile, full)] if full else []) + ([(tail, 1)] if tail else [])


def row_tiles(M: int, C: int, m_block: int) -> list[tuple[int, int]]:
    """[(rows, how many)] of the row tiles when M is cut into m-blocks and each block into column-wide
    tiles (an m-block that is not a multiple of the columns ends in a narrower tile); first tile first."""
    counts: dict[int, int] = {}
    for size, blocks in tile_sizes(M, m_block):
        for rv, n in tile_sizes(size, C):
            counts[rv] = counts.get(rv, 0) + n * blocks
    return list(counts.items())


def schedule_cycles(cfg: NpuConfig, M: int, K: int, N: int, wbits: int, abits: int, n_tile: int,
                    m_block: int | None = None) -> tuple[int, int]:
    """(on-chip cycles without pipeline fill, useful compute steps), in closed form over tile sizes."""
    C, I = cfg.columns, cfg.inputs
    Bw, Ba = cfg.weight_buf.bits_per_cycle, cfg.act_buf.bits_per_cycle
    rows, ks = row_tiles(M, C, m_block or C), tile_sizes(K, I)
    total = 0
    if cfg.dataflow == "weight_stationary":
        for nv, cn in tile_sizes(N, n_tile):
            for rv, cr in rows:
                for kv, ck in ks:
                    load = -(-rv * kv * wbits // Bw)
                    stream = nv * max(1, -(-kv * abits // Ba))
                    total += cn * cr * ck * (max(load, stream) if cfg.double_buffering else load + stream)
        if cfg.double_buffering:   # nothing hides the first tile's load
            load = -(-rows[0][0] * ks[0][0] * wbits // Bw)
            stream = min(n_tile, N) * max(1, -(-ks[0][0] * abits // Ba))
            total += min(load, stream)
    else:
        for rv, cr in rows:
            for kv, ck in ks:
                total += cr * ck * N * max(1, -(-rv * kv * wbits // Bw), -(-kv * abits // Ba))
    return total, sum(n for _, n in rows) * -(-K // I) * N


def kernel_events(cfg: NpuConfig, M: int, K: int, N: int, *, w_q: np.ndarray | None = None,
                  density: float = DEFAULT_DENSITY, arith: str = "ternary", mapping: Mapping | None = None) -> Events:
    """Events of one call of an [M, K] x N-token kernel on `cfg` (baselines: `arith` int8 / fp16), under
    the mapper's choice or a given `mapping`."""
    wbits = cfg.weight_bits if arith == "ternary" else (8 if arith == "int8" else 16)
    abits = 8 if arith != "fp16" else 16
    gating = cfg.zero_gating and arith == "ternary"
    acc_bits = cfg.acc_bits if arith == "ternary" else 32
    I, C = cfg.inputs, cfg.columns
    kt = -(-K // I)
    mapping = mapping or choose_mapping(cfg, M, K, N, wbits, abits, acc_bits)
    nt = -(-N // mapping.n_tile)
    onchip, compute = schedule_cycles(cfg, M, K, N, wbits, abits, mapping.n_tile, mapping.m_block)
    live, rows = live_lanes(cfg, M, K, w_q, density)
    adds = [a * N for a in tree_adds(cfg, live, rows, gating)]
    nonzero = float(live.sum()) * rows
    ev = Events(cycles_compute=compute, cycles_fill=cfg.pipeline_depth, cycles_sram_stall=onchip - compute)
    ev.selects = M * K * N
    ev.zero_skips = (M * K - nonzero) * N if gating else 0
    ev.tree_adds = adds
    ev.acc_adds = M * kt * N
    ev.reg_bits = M * kt * N * (stage_bits(cfg, arith) + acc_bits)   # per valid row and step
    mt = sum(n for _, n in row_tiles(M, C, mapping.m_block))
    if cfg.dataflow == "weight_stationary":
        ev.w_sram_read_bits = M * K * wbits * nt
        ev.o_sram_write_bits = M * kt * N * acc_bits
        ev.o_sram_read_bits = M * (kt - 1) * N * acc_bits
    else:
        ev.w_sram_read_bits = M * K * wbits * N
        ev.o_sram_write_bits = M * N * acc_bits
    ev.a_sram_read_bits = mt * K * N * abits
    # spilled partial sums: read out of the output SRAM to DRAM, and written back into it when they return
    ev.o_sram_read_bits += mapping.p_dram * 8 / 2
    ev.o_sram_write_bits += mapping.p_dram * 8 / 2
    ev.w_sram_write_bits, ev.a_sram_write_bits = mapping.w_dram * 8, mapping.a_dram * 8
    # every tile load writes the select units' shadow weight registers and copies them to the active ones
    ev.reg_bits += 2 * ev.w_sram_read_bits
    if cfg.stream_decode_weights and N == 1:     # decode weights bypass the weight SRAM
        ev.w_sram_read_bits = ev.w_sram_write_bits = 0
    ev.dram_bytes = mapping.dram_bytes
    ev.dram_min_bytes = mapping.dram_min
    dram_cycles = math.ceil(ev.dram_bytes / cfg.dram_bytes_per_cycle)
    busy = onchip + cfg.pipeline_depth
    ev.cycles_dram_stall = max(0, dram_cycles - busy) if cfg.double_buffering else dram_cycles
    return ev


def energy(ev: Events, cfg: NpuConfig, arith: str = "ternary") -> dict[str, float]:
    """Energy in pJ by component."""
    t = cfg.tech
    if arith == "ternary":
        select = (ev.selects - ev.zero_skips) * 9 * t.mux_pj_per_bit
        tree = sum(n * t.int_add(cfg.level_bits(lv)) for lv, n in enumerate(ev.tree_adds, 1))
        acc = ev.acc_adds * t.int_add(cfg.acc_bits)
    elif arith == "int8":
        select = ev.selects * t.int_mult(8)
        tree = sum(n * t.int_add(16 + lv * int(math.log2(cfg.fan_in))) for lv, n in enumerate(ev.tree_adds, 1))
        acc = ev.acc_adds * t.int_add(32)
    else:
        select = ev.selects * t.fp16_mult_pj
        tree = sum(ev.tree_adds) * t.fp16_add_pj
        acc = ev.acc_adds * t.fp32_add_pj
    return {
        "select/mult": select, "adder tree": tree, "accumulator": acc, "registers": ev.reg_bits * t.reg_pj_per_bit,
        "weight SRAM": (ev.w_sram_read_bits + ev.w_sram_write_bits) * t.sram_bit(cfg.weight_buf.kib),
        "act SRAM": (ev.a_sram_read_bits + ev.a_sram_write_bits) * t.sram_bit(cfg.act_buf.kib),
        "output SRAM": (ev.o_sram_read_bits + ev.o_sram_write_bits) * t.sram_bit(cfg.out_buf.kib),
        "DRAM": ev.dram_bytes * 8 * t.dram_pj_per_bit,
    }


def arithmetic_pj(e: dict[str, float]) -> float:
    return e["select/mult"] + e["adder tree"] + e["accumulator"]


def stage_bits(cfg: NpuConfig, arith: str = "ternary") -> int:
    """Pipeline register bits of one column (select/multiply stage + the registered tree levels), without the
    accumulator: ternary inputs are 9-bit (negated int8), int8 products 16-bit, both growing by
    log2(fan_in) a level; fp16 stays 16-bit."""
    F, I = cfg.fan_in, cfg.inputs
    levels = [lv for lv in range(1, cfg.levels + 1) if cfg.registered(lv)]   # only the registered levels
    if arith == "ternary":
        return I * 9 + sum((I // F ** lv) * cfg.level_bits(lv) for lv in levels)
    grow = int(math.log2(F)) if arith == "int8" else 0
    return I * 16 + sum((I // F ** lv) * (16 + lv * grow) for lv in levels)


def area_proxy(cfg: NpuConfig, arith: str = "ternary") -> dict[str, int]:
    """Unit counts: two-input adders (tree + accumulator), select muxes or multipliers, register bits."""
    I, C, F = cfg.inputs, cfg.columns, cfg.fan_in
    tree = sum((I // F ** lv) * (F - 1) for lv in range(1, cfg.levels + 1))
    acc = cfg.acc_bits if arith == "ternary" else 32
    return {"adders": C * (tree + 1), "muxes": C * I if arith == "ternary" else 0,
            "multipliers": 0 if arith == "ternary" else C * I, "register bits": C * (stage_bits(cfg, arith) + acc)}
