"""The rest of a transformer step, beside the BitLinears on the array: embedding lookup, RMSNorm/SubLN,
activation quantize and output dequantize, RoPE, attention over a KV cache, softmax, the FFN
activation, residual adds and the LM head. They run on the vector unit (`vector.lanes` operations a
cycle, a multiply-add counts as one), except a ternary LM head, which runs on the array as one more
BitLinear kernel.

Counting rules (per token unless said; d = hidden, L = context tokens in the KV cache):
- RMSNorm over n: 3n ops (square-accumulate, scale, gain), its BF16 gain vector read from DRAM.
- quantize an n-vector to int8 (absmax): 2n ops; dequantize an m-output BitLinear: m ops.
- RoPE: 3 ops an element of q and k. Residual add: d ops. relu2 / SwiGLU gate: 2 ops an element.
- attention, per layer: heads x L x head_dim multiply-adds for the scores and as many for the
  weighted V sum; softmax 6 ops a score (an exp as 4 ops, the sum, the scale); the KV cache read
  2 x kv_dim x L x kv_bits and the new token's K and V written; KV below 16 bits is dequantized on the
  fly (one op an element read). A prefill of P tokens attends causally (P(P+1)/2 scores a head), its
  K and V are written once and read back once.
- embedding: one BF16 row of the table read from DRAM a token.
- LM head: vocab x d multiply-adds on the last token only (prefill needs the next token's logits,
  not every position's); BF16 or INT8 on the vector unit, ternary on the array.
- energy: BF16 ops at the table's FP16 energies (the closest it has: an op = an FP16 add, a
  multiply-add = FP16 mult + add), INT8 multiply-adds at int8 mult + 32-bit add; every vector operand
  that comes from DRAM is written to and read from the activation SRAM once; each op reads one 16-bit
  operand from the activation SRAM.
- time: a component takes max(ops / lanes, DRAM bytes / bytes a cycle) cycles (its DRAM stream
  overlaps its arithmetic); components run one after another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ternkit.errors import TernkitError
from ternkit.sim.config import NpuConfig

LM_HEADS = {"bf16": 16, "int8": 8, "ternary": 2}     # LM head precision -> weight bits in DRAM
KV_BITS = (16, 8, 4, 3)
DEFAULT_CONTEXT = 1024
EXP_OPS = 4
SOFTMAX_OPS = EXP_OPS + 2
STEP_COMPONENTS = ("embedding", "norms", "quantize/dequantize", "RoPE/residual/activation", "attention (KV)",
                   "softmax", "LM head")


@dataclass
class Work:
    """One component's work: vector ops (by kind), multiply-adds, DRAM bytes."""

    ops: float = 0.0          # elementwise BF16 ops
    macs: float = 0.0         # BF16 multiply-adds
    int8_macs: float = 0.0
    dram_bytes: float = 0.0
    sram_bits: float = 0.0    # extra activation-SRAM traffic beyond the per-op operand reads

    def scaled(self, k: float) -> "Work":
        return Work(self.ops * k, self.macs * k, self.int8_macs * k, self.dram_bytes * k, self.sram_bits * k)

    def __add__(self, o: "Work") -> "Work":
        return Work(self.ops + o.ops, self.macs + o.macs, self.int8_macs + o.int8_macs,
                    self.dram_bytes + o.dram_bytes, self.sram_bits + o.sram_bits)


@dataclass
class Component:
    name: str
    cycles: float = 0.0
    dram_bytes: float = 0.0
    macs: float = 0.0                 # multiply-adds of this component
    energy: dict = field(default_factory=lambda: {"compute": 0.0, "SRAM": 0.0, "DRAM": 0.0})

    @property
    def total_pj(self) -> float:
        return sum(self.energy.values())


def default_kv_bits(model) -> int:
    """a4.8 models keep a 3-bit KV cache (BitNet a4.8); the others BF16."""
    return 3 if model.config.activation_bits == 4 else 16


def check_workload(context: int, kv_bits: int, lm_head: str) -> None:
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise TernkitError(f"context must be a whole number of cached tokens >= 0, got {context!r}")
    if kv_bits not in KV_BITS:
        raise TernkitError(f"kv_bits must be one of {', '.join(map(str, KV_BITS))}, got {kv_bits!r}")
    if lm_head not in LM_HEADS:
        raise TernkitError(f"lm_head must be one of {', '.join(LM_HEADS)}, got {lm_head!r}")


def _norm(n: int) -> Work:
    return Work(ops=3 * n, dram_bytes=2 * n)


def step_work(model, tokens: int, context: int, kv_bits: int, lm_head: str, prefill: bool) -> dict[str, Work]:
    """Vector-unit work of one call over `tokens` tokens (decode: tokens=1 with `context` cached tokens;
    prefill: `tokens` prompt tokens attending causally). The LM head's array part is not included."""
    c = model.config
    d = c.hidden
    work = {name: Work() for name in STEP_COMPONENTS}
    work["embedding"] = Work(dram_bytes=2 * d * tokens, sram_bits=2 * 16 * d * tokens)
    for layer in c.layers:
        a, f = layer.attention, layer.ffn
        q_dim, kv_dim = a.heads * a.head_dim, a.kv_heads * a.head_dim
        norms = _norm(d).scaled(2) + (_norm(q_dim) + _norm(f.hidden) if c.subln else Work())
        work["norms"] += Work(ops=norms.ops * tokens, dram_bytes=norms.dram_bytes)   # gains read once a call
        # quantize the 4 BitLinear inputs (q/k/v share one, gate/up share one); dequantize 7 outputs
        quant = 2 * (d + q_dim + d + f.hidden) + (q_dim + 2 * kv_dim + d + 2 * f.hidden + d)
        work["quantize/dequantize"] += Work(ops=quant * tokens)
        work["RoPE/residual/activation"] += Work(ops=(3 * (q_dim + kv_dim) + 2 * d + 2 * f.hidden) * tokens)
        # attention: positions attended, KV bytes read and written
        scores = tokens * (tokens + 1) / 2 if prefill else tokens * context
        kv_read = (tokens if prefill else tokens * context) * 2 * kv_dim
        dequant = kv_read if kv_bits < 16 else 0
        kv_bytes = (kv_read + tokens * 2 * kv_dim) * kv_bits / 8
        work["attention (KV)"] += Work(ops=dequant, macs=2 * a.heads * a.head_dim * scores, dram_bytes=kv_bytes,
                                       sram_bits=2 * kv_bytes * 8)
        work["softmax"] += Work(ops=SOFTMAX_OPS * a.heads * scores)
    work["norms"] += Work(ops=3 * d * tokens, dram_bytes=2 * d)                      # final norm
    head_tokens = 1                                                                   # logits of the last token
    if lm_head != "ternary":
        head_bytes = c.vocab_size * d * LM_HEADS[lm_head] / 8
        macs = c.vocab_size * d * head_tokens
        work["LM head"] = Work(ops=c.vocab_size * head_tokens, macs=macs if lm_head == "bf16" else 0,
                               int8_macs=macs if lm_head == "int8" else 0, dram_bytes=head_bytes,
                               sram_bits=2 * head_bytes * 8)
    else:   # quantize the input, dequantize the logits; the matrix itself runs on the array
        work["LM head"] = Work(ops=(2 * d + c.vocab_size) * head_tokens)
    return work


def cost(name: str, w: Work, cfg: NpuConfig) -> Component:
    """Cycles and energy of a component's vector work."""
    t = cfg.tech
    bf16_op, bf16_mac = t.fp16_add_pj, t.fp16_mult_pj + t.fp16_add_pj
    int8_mac = t.int_mult(8) + t.int_add(32)
    ops = w.ops + w.macs + w.int8_macs
    cycles = max(math.ceil(ops / cfg.vector_lanes), math.ceil(w.dram_bytes / cfg.dram_bytes_per_cycle))
    sram = (ops * 16 + w.sram_bits) * t.sram_bit(cfg.act_buf.kib)
    return Component(name, cycles, w.dram_bytes, w.macs + w.int8_macs,
                     {"compute": w.ops * bf16_op + w.macs * bf16_mac + w.int8_macs * int8_mac,
                      "SRAM": sram, "DRAM": w.dram_bytes * 8 * t.dram_pj_per_bit})
