"""The mapper: how one [M, K] x N-token kernel is blocked on the array so that it moves the fewest DRAM
bytes under the three buffers, searched over loop orders and block sizes.

Weight-stationary loop nests (the generated C model steps exactly these):

    m-outer / n-outer:
    for each outer block (m-blocks of `m_block` rows if order is m-outer, else n-blocks of `n_tile` tokens)
      for each inner block (the other kind)
        for each k-chunk of `k_chunk` columns (a multiple of the array's inputs, or all of K)
          the chunk's activations (n_tile x k_chunk) come from DRAM unless they stay resident
          for each m_tile (`columns` rows) of the m-block
            for each k_tile (`inputs` columns) of the chunk
              the tile's weights come from DRAM unless they stay resident; stream the n_tile tokens
    spill:
    for each m-block, for each k-chunk (its rows x chunk of weights load once and stay resident),
      for each token tile: the chunk's activations from DRAM; for each m_tile: its partial sums come
      back from DRAM (after the first chunk), the k_tiles stream, they go back to DRAM (before the last)

Residency (what does not come from DRAM again):
- weights: all of them when the whole matrix fits the weight buffer; an m-block's rows (all of K) when
  the order is m-outer and they fit (weights-resident blocks: several 64-row blocks at once); an
  m-block's rows x chunk in a spill schedule;
- activations: all of them when they fit the activation buffer; an n-block's tokens (all of K) when the
  order is n-outer and they fit (activations-resident blocks).
What must fit while a block runs: the chunk's activations (every m_tile of the block re-reads them) and
the partial sums (one m_tile's rows x n_tile tokens, or the whole m-block's when K is split into chunks
without spilling: output-stationary blocks in the output buffer).

Traffic: weights once or once an n-block, activations once or once an m-block, int32 outputs once, and
for a spill schedule every partial sum written and read back (acc_bits each way) at each chunk boundary.

Two lower bounds are reported next to the chosen mapping:
- `dram_min`: every weight, activation and output moved exactly once (what unbounded buffers allow);
- `dram_bound`: what any schedule must move with *these* buffers (`buffer_bound`), the red-blue pebble
  argument of J.-W. Hong and H. T. Kung ("I/O complexity: the red-blue pebble game", STOC 1981) with the
  Loomis-Whitney inequality as D. Irony, S. Toledo and A. Tiskin use it for matrix multiplication
  ("Communication lower bounds for distributed-memory matrix multiplication", JPDC 2004), with each
  operand's transfers weighed separately. It is a bound, not a schedule: the chosen mapping can be
  above it without a better mapping existing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ternkit.sim.config import NpuConfig


@dataclass(frozen=True)
class Mapping:
    n_tile: int         # tokens a block
    m_block: int        # rows a block (usually a multiple of the columns)
    k_chunk: int        # K columns a chunk (a multiple of the inputs); 0: K is not split
    order: str          # "m-outer" (weight blocks outside) | "n-outer" (token blocks outside) | "spill"
    w_dram: float       # bytes
    a_dram: float
    o_dram: float
    dram_min: float     # every weight, activation and output once
    dram_bound: float = 0.0   # what any schedule must move with these buffers (buffer_bound; choose_mapping sets it)
    p_dram: float = 0.0       # partial sums written to DRAM between K chunks and read back ("spill")

    @property
    def dram_bytes(self) -> float:
        return self.w_dram + self.a_dram + self.o_dram + self.p_dram


def _powers_of_two_times(unit: int, limit: int) -> list[int]:
    out, v = [], unit
    while v < limit:
        out.append(v)
        v *= 2
    return out


def _output_stationary_rows(M: int, N: int, psums: int) -> set[int]:
    """m-block heights for K-split blocks whose m-block x token-tile partial sums fill the output buffer
    (`psums` of them): for every token-block count j, the tallest block beside a ceil(N / j)-token tile,
    evened out over the blocks M then needs. Weights then stream once a token block and activations once
    an m-block, and these shapes balance the two."""
    rows = set()
    for nb in {-(-N // j) for j in range(1, N + 1)}:
        tallest = min(M, psums // nb)
        if tallest >= 1:
            rows.add(-(-M // -(-M // tallest)))
    return rows


def candidates(cfg: NpuConfig, M: int, K: int, N: int, wbits: int, abits: int, acc_bits: int) -> list[Mapping]:
    """Every mapping of the search space that fits the buffers (the token block shrinks to fit, down to one
    token; blocks whose working set still does not fit are left out, and a one-m_tile block that streams
    its activations always remains, so every shape maps)."""
    C, I = cfg.columns, cfg.inputs
    wbuf, abuf, obuf = (b.bytes * 8 for b in (cfg.weight_buf, cfg.act_buf, cfg.out_buf))
    w_total, a_total, o_total = M * K * wbits / 8, N * K * abits / 8, N * M * 4
    m_tiles = -(-M // C)
    # rows whose whole K fits the weight buffer: in whole column tiles, and exactly (the block then ends
    # in a narrower tile, idling some columns, for fewer passes over the activations)
    resident_tiles = C * max(1, min(m_tiles, int(wbuf // (C * K * wbits))))
    resident_rows = max(1, min(M, int(wbuf // (K * wbits))))
    m_blocks = sorted({*_powers_of_two_times(C, C * m_tiles), resident_tiles, resident_rows, C * m_tiles,
                       *_output_stationary_rows(M, N, int(obuf // acc_bits))})
    k_chunks = [K, *(k for k in _powers_of_two_times(I, K))]
    w_all, a_all = M * K * wbits <= wbuf, N * K * abits <= abuf

    def on_chip(nb: int, rows: int, kb: int, psum_rows: int) -> bool:
        """A block's working set is on chip: the token tile's chunk of activations, which every m_tile of
        the block re-reads (a one-m_tile block reads it once, streaming), and the partial sums that live
        across its K steps (one token's, at most one m_tile of them, sit in the array's accumulators).
        Without this, a block larger than the buffers would be counted as if they held it."""
        acts = nb * kb * abits <= abuf or rows <= C
        psums = nb * psum_rows * acc_bits <= obuf or (nb == 1 and psum_rows <= C)
        return acts and psums

    out = []
    for mb in m_blocks:
        rows = min(mb, M)
        for kb in k_chunks:
            psum_rows = rows if kb < K else min(C, M)
            nb_fit = max(1, min(N, int(obuf // (psum_rows * acc_bits)), int(abuf // (kb * abits))))
            nb_resident = max(1, min(nb_fit, int(abuf // (K * abits))))   # the n-block's whole K fits
            if not on_chip(nb_fit, rows, kb, psum_rows):    # nor then the smaller nb_resident
                continue
            for order in ("n-outer", "m-outer"):
                for nb in {nb_fit, nb_resident}:
                    n_blocks, m_block_count = -(-N // nb), -(-M // mb)
                    w_res = w_all or (order == "m-outer" and rows * K * wbits <= wbuf)
                    a_res = a_all or (order == "n-outer" and nb * K * abits <= abuf)
                    out.append(Mapping(nb, mb, kb if kb < K else 0, order,
                                       w_total * (1 if w_res else n_blocks), a_total * (1 if a_res else m_block_count),
                                       o_total, w_total + a_total + o_total))
    spill_psum_rows = min(C, M)     # spilled partial sums come and go one m_tile at a time
    for mb, kb in _spill_blocks(cfg, M, K, wbits):
        rows = min(mb, M)
        nb = max(1, min(N, int(obuf // (spill_psum_rows * acc_bits)), int(abuf // (kb * abits))))
        if not on_chip(nb, rows, kb, spill_psum_rows):
            continue
        w_res = w_all or rows * kb * wbits <= wbuf
        out.append(Mapping(nb, mb, kb, "spill", w_total * (1 if w_res else -(-N // nb)),
                           a_total * (1 if a_all else -(-M // mb)), o_total, w_total + a_total + o_total,
                           p_dram=(-(-K // kb) - 1) * M * N * acc_bits / 8 * 2))
    return out


def _spill_blocks(cfg: NpuConfig, M: int, K: int, wbits: int) -> set[tuple[int, int]]:
    """(m-block rows, K chunk) of the spill schedules: for every chunk count j, ceil(K / j) rounded up to
    whole k-tiles, beside the tallest m-block whose rows x chunk of weights fit the weight buffer (evened
    out over the blocks M then needs, and in whole column tiles). Each chunk boundary costs a write and a
    read-back of every partial sum, each m-block a pass over the activations: these shapes trade the two."""
    C, I = cfg.columns, cfg.inputs
    wbuf = cfg.weight_buf.bytes * 8
    out = set()
    for j in range(2, -(-K // I) + 1):
        kb = I * -(-(-(-K // j)) // I)        # ceil(K / j) in whole k-tiles
        if kb >= K:
            continue
        tallest = min(M, int(wbuf // (kb * wbits)))
        if tallest >= 1:
            out.add((-(-M // -(-M // tallest)), kb))
        if tallest >= C:
            out.add((C * (tallest // C), kb))
    return out


def choose_mapping(cfg: NpuConfig, M: int, K: int, N: int, wbits: int, abits: int,
                   acc_bits: int | None = None) -> Mapping:
    """The mapping moving the fewest DRAM bytes; among equals the one with the fewest on-chip cycles (a
    narrow m-block idles columns), then the fewest token blocks (fewer weight loads into the select
    units), then the simplest (n-outer, no K split, small blocks)."""
    from ternkit.sim.simulator import schedule_cycles      # simulator imports this module

    acc_bits = acc_bits or cfg.acc_bits
    w_total, a_total, o_total = M * K * wbits / 8, N * K * abits / 8, N * M * 4
    if cfg.dataflow == "output_stationary":        # accumulators in registers: one token at a time
        C = cfg.columns
        row_block = min(C, M) * K * wbits
        a_fits = N * K * abits <= cfg.act_buf.bytes * 8
        w = w_total * (1 if row_block <= cfg.weight_buf.bytes * 8 else N)
        best = Mapping(1, C, 0, "m-outer", w, a_total * (1 if a_fits else -(-M // C)), o_total,
                       w_total + a_total + o_total)
    else:
        best = min(candidates(cfg, M, K, N, wbits, abits, acc_bits),
                   key=lambda m: (m.dram_bytes, schedule_cycles(cfg, M, K, N, wbits, abits, m.n_tile, m.m_block)[0],
                                  -(-N // m.n_tile), m.order != "n-outer", m.k_chunk != 0, m.m_block))
    return replace(best, dram_bound=buffer_bound(cfg, M, K, N, wbits, abits, acc_bits))


def _water_fill(bases: list[float], budget: float) -> list[float]:
    """The split of `budget` over `bases` that maximises the product of (base + share): raise the smallest
    to a common level."""
    order = sorted(bases)
    level = order[0] + budget
    for i in range(1, len(order)):
        if level <= order[i]:
            break
        level = (sum(order[: i + 1]) + budget) / (i + 1)
    return [max(b, level) for b in bases]


def buffer_bound(cfg: NpuConfig, M: int, K: int, N: int, wbits: int, abits: int, acc_bits: int | None = None) -> float:
    """A lower bound on the DRAM bytes of any schedule of the [M, K] x N kernel on `cfg`'s on-chip storage,
    never below `dram_min`: the segment argument of Hong and Kung with the operands' transfers weighed
    separately (weighing them by their bits, as a single budget, is a much looser special case).

    Machine model: each operand is used only while it sits in its own storage, its buffer or an array
    register (every register counts in every pool, which only weakens the bound), so at most Sw weights,
    Sa activations and So partial sums (elements) are on chip at any moment; the array adds each product
    w[m,k] a[n,k] (zero weights too) into an on-chip partial sum of y[n,m]; partial sums move at
    acc_bits. Traffic: Lw weight loads (>= MK), La activation loads (>= NK), Lo partial-sum writes that
    are read back later or are the final int32 output (>= MN; each one beyond MN is a spill with its own
    read-back: 2 acc_bits).

    Proof. Fix weights alpha > 0 and T > u = max(alpha). Cut the schedule greedily into segments whose
    weighted count alpha.(tw, ta, to) of those transfers is <= T; all but the last exceed T - u, so
    alpha.L > (s - 1)(T - u). Take for each product one computation whose contribution reaches y. A
    segment's products use weights on chip at its start or loaded in it (<= Sw + tw), likewise
    activations (<= Sa + ta), and outputs whose contribution is, at the segment's end, on chip or sent on
    its way to y by a write in it (<= So + to). By Loomis-Whitney a segment computes at most
    sqrt(|W| |A| |O|) products (and at most |W| N, |A| M, |O| K); the most over alpha.t <= T
    (water-filling the alpha-scaled pools) is G, so s >= MKN / G and alpha.L >= (T - u)(MKN / G - 1).
    As L >= once, the traffic beyond moved-once, c.(L - once) with c = (wbits, abits, 2 acc_bits), is
    >= min(c / alpha) (alpha.L - alpha.once). Every (alpha, T) gives a valid bound; a coarse-to-fine
    search keeps the best it finds."""
    from ternkit.sim.simulator import ARITHS, stage_bits      # simulator imports this module

    acc_bits = acc_bits or cfg.acc_bits
    C, I = cfg.columns, cfg.inputs
    regs = C * (max(stage_bits(cfg, a) for a in ARITHS) + 32) + 2 * C * I * max(wbits, cfg.weight_bits)
    pools = ((cfg.weight_buf.bytes * 8 + regs) / wbits, (cfg.act_buf.bytes * 8 + regs) / abits,
             (cfg.out_buf.bytes * 8 + regs) / acc_bits)
    once, costs, caps = (M * K, N * K, M * N), (wbits, abits, 2 * acc_bits), (N, M, K)
    products = M * K * N
    dram_min = (M * K * wbits + N * K * abits) / 8 + N * M * 4

    def excess_bits(log_a: float, log_o: float, log_t: float) -> float:
        alpha = (1.0, 2.0 ** log_a, 2.0 ** log_o)
        base = [a * s for a, s in zip(alpha, pools)]
        T = sum(base) * 2.0 ** log_t
        u = max(alpha)
        if T <= u:
            return 0.0
        sizes = [level / a for level, a in zip(_water_fill(base, T), alpha)]
        per_segment = min(math.sqrt(sizes[0] * sizes[1] * sizes[2]),
                          *((s + T / a) * cap for s, a, cap in zip(pools, alpha, caps)))
        need = (T - u) * (products / per_segment - 1) - sum(a * o for a, o in zip(alpha, once))
        return max(0.0, need) * min(c / a for c, a in zip(costs, alpha))

    grid = [(a, o, t) for a in range(-2, 9, 2) for o in range(-2, 9, 2) for t in range(-6, 7, 2)]
    best = max(grid, key=lambda p: excess_bits(*p))
    for step in (1, 0.5, 0.25, 0.125):          # refine around the best point: any point is a valid bound
        best = max(((best[0] + i * step, best[1] + j * step, best[2] + k * step)
                    for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)), key=lambda p: excess_bits(*p))
    return dram_min + excess_bits(*best) / 8
