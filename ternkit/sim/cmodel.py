"""The generated C cycle model of an NPU config (template `ternkit/templates/npu/model.c.j2`), built
with cffi: it computes y through the adder-tree structure with the saturating accumulator and counts
every event (including DRAM traffic and stalls, by the mapper's loop order and the buffers' fits), so
both its outputs and its counts can be checked against the reference and the analytic simulator.
`run_step` does the same for the rest of a transformer step on the vector unit (`npu/step.c.j2`):
it walks every layer, token, head, position and element and counts what `ternkit.sim.step` computes
in closed form."""

from __future__ import annotations

import math

import numpy as np

from ternkit.codegen.jinja import render
from ternkit.errors import ShapeError
from ternkit.reference.quant import check_ternary
from ternkit.toolchain.cffi_build import build_module
from ternkit.sim.config import NpuConfig
from ternkit.sim.mapper import Mapping, choose_mapping
from ternkit.sim.simulator import Events, stage_bits

SCALARS = ("cycles_compute", "cycles_fill", "cycles_sram_stall", "cycles_dram_stall", "selects", "zero_skips",
           "acc_adds", "reg_bits", "w_sram_read_bits", "w_sram_write_bits", "a_sram_read_bits", "a_sram_write_bits",
           "o_sram_read_bits", "o_sram_write_bits")
CDEF = ("int npu_run(const int8_t *w, const int8_t *x, int32_t *y, int64_t *acc, int32_t M, int32_t K, int32_t N,"
        " int32_t n_tile, int32_t m_block, int32_t k_chunk, int32_t m_outer, int32_t spill, uint64_t *ev);")


def counters(cfg: NpuConfig) -> list[str]:
    return list(SCALARS) + ["dram_bits", "dram_min_bits"] + [f"tree_adds_{lv}" for lv in range(1, cfg.levels + 1)]


def source(cfg: NpuConfig) -> str:
    acc_max = 2 ** (cfg.acc_bits - 1) - 1
    return render("npu/model.c.j2", cfg=cfg, levels=cfg.levels, depth=cfg.pipeline_depth, counters=counters(cfg),
                  log2_fan_in=int(math.log2(cfg.fan_in)), acc_max=acc_max, acc_min=-acc_max - 1,
                  wbits=cfg.weight_bits, stage_bits=stage_bits(cfg), weight_buf_bits=int(cfg.weight_buf.bytes * 8),
                  act_buf_bits=int(cfg.act_buf.bytes * 8), dram_bytes_per_cycle=repr(float(cfg.dram_bytes_per_cycle)))


def run(cfg: NpuConfig, w_q: np.ndarray, x_q: np.ndarray, mapping: Mapping | None = None) -> tuple[np.ndarray, Events]:
    """(y int32 [N, M], Events) of the C model for weights [M, K] and int8 activations [N, K], blocked
    as the mapper chooses or as `mapping` says."""
    w_q = np.ascontiguousarray(w_q)
    x_q = np.ascontiguousarray(x_q)
    check_ternary(w_q)
    if x_q.dtype != np.int8 or x_q.ndim != 2 or w_q.ndim != 2 or x_q.shape[1] != w_q.shape[1]:
        raise ShapeError(f"need int8 x [N, K] and w [M, K] with the same K, got {x_q.dtype} {x_q.shape} and {w_q.shape}")
    mod = build_module("npu", CDEF, source(cfg), flags=("-O2",))
    (N, K), M = x_q.shape, w_q.shape[0]
    mapping = mapping or choose_mapping(cfg, M, K, N, cfg.weight_bits, 8)
    y = np.zeros((N, M), dtype=np.int32)
    acc = np.zeros((N, M), dtype=np.int64)
    names = counters(cfg)
    ev = np.zeros(len(names), dtype=np.uint64)
    ffi = mod.ffi
    rc = mod.lib.npu_run(ffi.from_buffer("int8_t[]", w_q), ffi.from_buffer("int8_t[]", x_q),
                         ffi.from_buffer("int32_t[]", y), ffi.from_buffer("int64_t[]", acc), M, K, N, mapping.n_tile,
                         mapping.m_block, mapping.k_chunk, int(mapping.order == "m-outer"),
                         int(mapping.order == "spill"), ffi.from_buffer("uint64_t[]", ev))
    if rc:
        raise MemoryError(f"the C model of {cfg.name!r} could not allocate its {cfg.inputs}-lane scratch")
    got = dict(zip(names, (int(v) for v in ev)))
    events = Events(**{k: got[k] for k in SCALARS}, dram_bytes=got["dram_bits"] / 8,
                    dram_min_bytes=got["dram_min_bits"] / 8,
                    tree_adds=[got[f"tree_adds_{lv}"] for lv in range(1, cfg.levels + 1)])
    return y, events


STEP_CDEF = ("int step_run(int32_t n_layers, const int32_t *heads, const int32_t *kv_heads, const int32_t *head_dim,"
             " const int32_t *ffn, int64_t hidden, int64_t vocab, int32_t subln, int64_t tokens, int64_t context,"
             " int32_t kv_bits, int32_t lm_head_bits, int32_t prefill, uint64_t *ev);")
STEP_COUNTERS = ("ops", "macs", "int8_macs", "dram_bits", "sram_bits", "cycles")


def run_step(cfg: NpuConfig, model, tokens: int, context: int, kv_bits: int, lm_head: str,
             prefill: bool) -> dict[str, dict[str, int]]:
    """{component: {counter: count}} of one call, as the C loop nest counts it."""
    from ternkit.sim.step import LM_HEADS, SOFTMAX_OPS, STEP_COMPONENTS

    src = render("npu/step.c.j2", lanes=cfg.vector_lanes, dram_bytes_per_cycle=repr(float(cfg.dram_bytes_per_cycle)),
                 softmax_ops=SOFTMAX_OPS)
    mod = build_module("npu_step", STEP_CDEF, src, flags=("-O2",))
    c = model.config
    layers = [(la.attention.heads, la.attention.kv_heads, la.attention.head_dim, la.ffn.hidden) for la in c.layers]
    cols = [np.ascontiguousarray(np.array(col, dtype=np.int32)) for col in zip(*layers)]
    ev = np.zeros(len(STEP_COMPONENTS) * len(STEP_COUNTERS), dtype=np.uint64)
    ffi = mod.ffi
    mod.lib.step_run(len(layers), *(ffi.from_buffer("int32_t[]", col) for col in cols), c.hidden, c.vocab_size,
                     int(c.subln), tokens, context, kv_bits, LM_HEADS[lm_head], int(prefill),
                     ffi.from_buffer("uint64_t[]", ev))
    grid = ev.reshape(len(STEP_COMPONENTS), len(STEP_COUNTERS))
    return {name: dict(zip(STEP_COUNTERS, (int(v) for v in row))) for name, row in zip(STEP_COMPONENTS, grid)}
