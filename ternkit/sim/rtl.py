"""Synthesizable Verilog of one NPU processing column (templates/rtl/column.v.j2): the ternary column
(select units, pipelined adder tree, saturating accumulator) and an INT8 MAC column of equal
throughput. Simulated with Icarus Verilog against the reference (bit-exact y) and the C model (cycles);
synthesized with yosys (`stat -tech cmos`: cells and an estimated transistor count), so that the
ternary-vs-MAC area ratio comes from synthesis.

The testbench streams a kernel through one column weight-stationary, as the C model does for a
one-column NPU whose ports load a tile's weights in one cycle: the first tile's weights load alone,
then each tile streams its tokens while the next tile's weights load into the shadow registers."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternkit.codegen.jinja import render
from ternkit.errors import TernkitError
from ternkit.outputs import write_atomic
from ternkit.sim.config import Buffer, NpuConfig

KINDS = ("ternary", "int8")
TAG_BITS = 16                 # token tags (output-buffer addresses) travelling with the data


class ToolMissing(TernkitError):
    """iverilog / vvp / yosys are not installed."""


@dataclass(frozen=True)
class Column:
    kind: str           # "ternary" (select units) | "int8" (multipliers)
    inputs: int
    fan_in: int
    acc_bits: int
    levels_per_stage: int = 1   # tree levels between pipeline registers (the root is always registered)

    @property
    def levels(self) -> int:
        return round(math.log(self.inputs, self.fan_in))

    @property
    def registered(self) -> list[bool]:
        """Per tree level (index 0 = level 1): is it followed by a register?"""
        return [lv % self.levels_per_stage == 0 or lv == self.levels for lv in range(1, self.levels + 1)]

    @property
    def stages(self) -> int:
        return sum(self.registered)

    @property
    def wbits(self) -> int:
        return 2 if self.kind == "ternary" else 8

    @property
    def widths(self) -> list[int]:
        """Register widths: the lanes (9-bit negated int8, or 16-bit products), then each tree level."""
        first = 9 if self.kind == "ternary" else 16
        return [first + lv * int(math.log2(self.fan_in)) for lv in range(self.levels + 1)]

    @property
    def name(self) -> str:
        per = f"_p{self.levels_per_stage}" if self.levels_per_stage > 1 else ""
        return f"{self.kind}_column_{self.inputs}x{self.fan_in}{per}"

    @property
    def depth(self) -> int:
        return self.stages + 2


def column_of(cfg: NpuConfig, kind: str = "ternary") -> Column:
    """The column of `cfg`; the INT8 MAC column accumulates in 32 bits, as the simulator's baseline."""
    if kind not in KINDS:
        raise TernkitError(f"column kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return Column(kind, cfg.inputs, cfg.fan_in, cfg.acc_bits if kind == "ternary" else 32, cfg.levels_per_stage)


def one_column_config(cfg: NpuConfig) -> NpuConfig:
    """The NPU the testbench is: one column of `cfg`, ports that load a tile's weights and a token's
    activations in one cycle, buffers and DRAM that never stall (all tokens in one tile)."""
    big = 1 << 20
    return cfg.with_(name=f"{cfg.name} (one column)", columns=1, dram_gb_per_s=1e9 * cfg.clock_ghz,
                     weight_buf=Buffer(big, cfg.inputs * cfg.weight_bits, 1), act_buf=Buffer(big, cfg.inputs * 8, 1),
                     out_buf=Buffer(big, 64, 1))


def verilog(col: Column) -> str:
    acc_max = 2 ** (col.acc_bits - 1) - 1
    return render("rtl/column.v.j2", name=col.name, ternary=col.kind == "ternary", inputs=col.inputs,
                  fan_in=col.fan_in, levels=col.levels, stages=col.stages, registered=col.registered,
                  widths=col.widths, wbits=col.wbits, acc_bits=col.acc_bits,
                  acc_max=acc_max, acc_min=-acc_max - 1, tag_bits=TAG_BITS)


def _lane_codes(col: Column, w: np.ndarray) -> int:
    """Pack one tile's weights (padded to `inputs` lanes) into the w_in bus, lane i at bits [wbits*i +: wbits]."""
    bus = 0
    for i, v in enumerate(w.tolist()):
        code = (0b01 if v > 0 else 0b11 if v < 0 else 0) if col.kind == "ternary" else v & 0xFF
        bus |= code << (col.wbits * i)
    return bus


def _lanes(x: np.ndarray) -> int:
    bus = 0
    for i, v in enumerate(x.tolist()):
        bus |= (v & 0xFF) << (8 * i)
    return bus


def stimulus(col: Column, w: np.ndarray, x: np.ndarray) -> tuple[list[int], list[tuple[int, int, bool]]]:
    """(one word a cycle, the (row, token, last k-tile) of every step in issue order)."""
    (M, K), N, I = w.shape, x.shape[0], col.inputs
    kt = -(-K // I)
    wp = np.zeros((M, kt * I), dtype=np.int64)
    wp[:, :K] = w
    xp = np.zeros((N, kt * I), dtype=np.int64)
    xp[:, :K] = x
    tiles = [(m, k) for m in range(M) for k in range(kt)]
    wbus = [_lane_codes(col, wp[m, k * I:(k + 1) * I]) for m, k in tiles]
    tag_at = I * col.wbits + I * 8
    top = tag_at + TAG_BITS

    def word(load: int | None, swap: bool, valid: bool, first: bool, tag: int, xbus: int) -> int:
        flags = ((load is not None) << 3) | (swap << 2) | (valid << 1) | int(first)
        return (flags << top) | (tag << tag_at) | ((load or 0) << (I * 8)) | xbus

    words = [word(wbus[0], False, False, False, 0, 0)]       # the first tile's weights load alone
    steps = []
    for j, (m, k) in enumerate(tiles):
        for t in range(N):
            nxt = wbus[j + 1] if t == 0 and j + 1 < len(tiles) else None
            words.append(word(nxt, t == 0, True, k == 0, t, _lanes(xp[t, k * I:(k + 1) * I])))
            steps.append((m, t, k == kt - 1))
    return words, steps


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise ToolMissing(f"{', '.join(missing)} not installed: apt-get install -y iverilog yosys")


def simulate(col: Column, w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int]:
    """(y int32 [N, M], cycles until the last result can be read) of the column running w [M, K] x x [N, K]."""
    need_tools("iverilog", "vvp")
    if x.shape[0] > 2 ** TAG_BITS:
        raise TernkitError(f"the testbench tags at most {2 ** TAG_BITS} tokens, got {x.shape[0]}")
    words, steps = stimulus(col, w, x)
    word_bits = 4 + TAG_BITS + col.inputs * (col.wbits + 8)
    with tempfile.TemporaryDirectory(prefix="ternkit-rtl-") as tmp:
        d = Path(tmp)
        (d / "stim.hex").write_text("".join(f"{v:x}\n" for v in words))
        (d / "column.v").write_text(verilog(col))
        (d / "tb.v").write_text(render("rtl/testbench.v.j2", name=col.name, word_bits=word_bits, cycles=len(words),
                                       tokens=x.shape[0], tag_bits=TAG_BITS, acc_bits=col.acc_bits,
                                       inputs=col.inputs, wbits=col.wbits, levels=col.stages,
                                       stimulus=str(d / "stim.hex")))
        _run(["iverilog", "-g2005", "-Wall", "-o", str(d / "sim"), str(d / "tb.v"), str(d / "column.v")], "iverilog")
        out = _run(["vvp", "-n", str(d / "sim")], "vvp")
    values = [int(v) for v in re.findall(r"^Y \d+ (-?\d+)$", out, re.M)]
    cycles = re.search(r"^CYCLES (\d+)$", out, re.M)
    if len(values) != len(steps) or not cycles:
        raise TernkitError(f"the RTL simulation produced {len(values)} results for {len(steps)} steps")
    y = np.zeros((x.shape[0], w.shape[0]), dtype=np.int64)
    for (m, t, last), v in zip(steps, values):
        if last:
            y[t, m] = v
    return y.astype(np.int32), int(cycles.group(1))


def synthesize(col: Column) -> dict[str, int]:
    """Generic-gate synthesis with yosys: cells, an estimated CMOS transistor count, flip-flops, and the
    longest combinational path in gates (`ltp -noff`). Cached on disk by the Verilog's hash."""
    import hashlib
    import json

    from ternkit.toolchain.cffi_build import cache_dir

    src_text = verilog(col)
    cached = cache_dir() / "rtl" / f"{col.name}-{hashlib.sha256(src_text.encode()).hexdigest()[:16]}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    need_tools("yosys")
    with tempfile.TemporaryDirectory(prefix="ternkit-yosys-") as tmp:
        src = Path(tmp) / "column.v"
        src.write_text(src_text)
        _run(["yosys", "-q", "-p", f"read_verilog {src}; synth -flatten -top {col.name}; "
              f"tee -o {tmp}/stat.txt stat -tech cmos; tee -o {tmp}/ltp.txt ltp -noff"], "yosys")
        out = (Path(tmp) / "stat.txt").read_text()
        ltp = (Path(tmp) / "ltp.txt").read_text()
    cells = re.search(r"Number of cells:\s+(\d+)", out)
    trans = re.search(r"Estimated number of transistors:\s+(\d+)", out)
    depth = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp)
    if not cells or not trans or not depth:
        raise TernkitError("yosys printed no cell/transistor/path statistics")
    flops = sum(int(n) for n in re.findall(r"\$_S?DFFE?_\w*\s+(\d+)", out))
    stats = {"cells": int(cells.group(1)), "transistors": int(trans.group(1)), "flops": flops,
             "depth": int(depth.group(1))}
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cached, json.dumps(stats))
    return stats


def _run(argv: list[str], what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise TernkitError(f"{what} failed: {tail[0]}")
    return proc.stdout
