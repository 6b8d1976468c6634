"""The standalone C runtime: a small C program (template `runtime/model.c.j2`) that runs the whole model
with the generated kernel library, and the packed weights file it reads.

Weights file (`weights.bin`, little-endian), version 2: the 8 bytes `TKRT0002`, a u64 layout id (the
first 8 bytes of a SHA-256 over this plan's kernels and byte counts, so a file written for another plan
of the same model is refused even when its size matches), then in graph order `embed` [vocab][hidden];
per layer `attn_norm` f32[hidden], q, k, v, [`attn.sub_norm` f32[q_dim]], o, `ffn_norm` f32[hidden],
gate, up, [`ffn.sub_norm` f32[ffn]], down; `final_norm` f32[hidden]; `lm_head` [vocab][hidden] unless
tied. The embedding and LM head are float16 when the model keeps its embedding in float16 (random
weights for big models, as the 2B4T release keeps bf16), float32 otherwise. Each BitLinear is its f32
scale, its decode copy (the GEMV's packed weights, `Target.pack`), then — only when the prefill GEMM's
format or layout differs from the GEMV's (`codegen/decode_format.py`) — its prefill copy (the GEMM's
packed weights). Every item is zero-padded to a multiple of 4 bytes. Without a GEMM kernel the prompt
goes through the GEMV a token at a time. Version 1 (`TKRT0001`: one packed copy, no layout id) is
refused with one line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ternkit.codegen.ctarget import CTarget
from ternkit.codegen.jinja import render
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import ROLES, ModelGraph, bitlinear_node, layer_weights
from ternkit.toolchain import Toolchain, program_toolchain

PROGRAM = "model_runtime"
SOURCE = f"{PROGRAM}.c"
WEIGHTS = "weights.bin"
MAGIC = b"TKRT0002"  # bump the number whenever the layout changes (model.c.j2 refuses other versions)
PREFILL_CHUNK = 64   # prompt tokens run through the layers together (at least the GEMM's token count)


def _check(model: ModelGraph, plan: Plan) -> None:
    cfg = model.config
    if cfg.activation_bits != 8:
        raise TernkitError(f"the standalone runtime supports int8 activations only; model {cfg.name!r} uses "
                           f"{cfg.activation_bits}-bit (a4.8): generate without --with-runtime")
    per_row = [n for n in model.bitlinears() if np.ndim(model.weight_scale(n))]
    if per_row:
        raise TernkitError(f"the standalone runtime carries one weight scale per matrix; {per_row[0]} of model "
                           f"{cfg.name!r} has one per row: run it with `ternkit run` instead of --with-runtime")
    if 1 not in {s.N for s in plan.kernels}:
        raise TernkitError("the standalone runtime needs the one-token kernels: include 1 in --tokens")


def embed_dtype(model: ModelGraph) -> np.dtype:
    return np.dtype("<f2") if model.require_params()["embed.weight"].dtype == np.float16 else np.dtype("<f4")


@dataclass(frozen=True)
class BitLinearCopies:
    """One BitLinear's kernels and the packed copies of its weights the file carries."""

    node: str
    gemv: KernelSpec               # decode: reads the decode copy
    gemm: KernelSpec | None        # prefill (None: the prompt goes through the GEMV)
    own_copy: bool                 # the GEMM reads a prefill copy of its own (its format or layout differs)
    decode_bytes: int
    prefill_bytes: int             # 0 unless own_copy


def bitlinear_copies(plan: Plan, target: CTarget, node: str) -> BitLinearCopies:
    gemv, gemm = plan.kernel_for(node, 1), plan.prefill_for(node)
    own = gemm is not None and (gemm.weight_format != gemv.weight_format or target.layout(gemm) != target.layout(gemv))
    return BitLinearCopies(node, gemv, gemm, own, target.packed_bytes(gemv), target.packed_bytes(gemm) if own else 0)


def all_copies(model: ModelGraph, plan: Plan, target: CTarget) -> list[BitLinearCopies]:
    """Every BitLinear's copies, in graph order."""
    return [bitlinear_copies(plan, target, node) for node in model.bitlinears()]


def layout_id(model: ModelGraph, copies: list[BitLinearCopies]) -> int:
    """What the file's layout depends on beyond the model's shape: the kernels and their byte counts."""
    text = repr((model.config.name, str(embed_dtype(model)),
                 [(c.node, c.gemv.name, c.decode_bytes, c.gemm.name if c.own_copy else "", c.prefill_bytes)
                  for c in copies]))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _packed(target: CTarget, spec: KernelSpec, w_q: np.ndarray, nbytes: int) -> bytes:
    packed = np.ascontiguousarray(target.pack(spec, w_q), dtype=np.uint8).tobytes()
    if len(packed) != nbytes:   # the C program is compiled for nbytes: never write a file it misreads
        raise TernkitError(f"{spec.name}: packed {len(packed)} bytes, the layout says {nbytes}")
    return _pad(packed)


def weight_parts(model: ModelGraph, plan: Plan, target: CTarget) -> Iterator[bytes]:
    """The weights file, piece by piece (a 2B4T file is 1.2-1.6 GB: stream it)."""
    _check(model, plan)
    p = model.require_params()
    cfg = model.config
    dt = embed_dtype(model)
    copies = {c.node: c for c in all_copies(model, plan, target)}

    def floats(name: str, dtype=np.dtype("<f4")) -> bytes:
        arr = p[name]
        out = bytearray()
        for i in range(0, arr.shape[0], 4096):   # a block of rows at a time: no full-size copy
            out += np.ascontiguousarray(arr[i:i + 4096], dtype=dtype).tobytes()
        return _pad(bytes(out))

    def bitlinear(node: str) -> bytes:
        c = copies[node]
        w_q, _ = model.quantized_weight(node)
        out = np.array([model.weight_scale(node)], dtype="<f4").tobytes() + _packed(target, c.gemv, w_q, c.decode_bytes)
        return out + (_packed(target, c.gemm, w_q, c.prefill_bytes) if c.own_copy else b"")

    yield MAGIC + layout_id(model, list(copies.values())).to_bytes(8, "little")
    yield floats("embed.weight", dt)
    for i in range(cfg.n_layers):
        for node, _ in layer_weights(cfg, i):
            yield bitlinear(node) if model.graph.nodes[node]["op"] == "bitlinear" else floats(f"{node}.weight")
    yield floats("final_norm.weight")
    if not cfg.tie_embeddings:
        yield floats("lm_head.weight", dt)


def write_weights(model: ModelGraph, plan: Plan, target: CTarget, path: Path) -> int:
    """Stream the weights file to `path`; its size in bytes."""
    total = 0
    with open(path, "wb") as f:
        for part in weight_parts(model, plan, target):
            f.write(part)
            total += len(part)
    return total


def runtime_source(model: ModelGraph, plan: Plan, target: CTarget, header: str, total_bytes: int) -> str:
    """The C program for a plan whose kernel library has header `header` and weights file of `total_bytes`."""
    from ternkit.runtime import pool

    cfg = model.config
    layers = []
    chunk = 1
    copies = all_copies(model, plan, target)
    by_node = {c.node: c for c in copies}
    for i, lc in enumerate(cfg.layers):
        bls = []
        for role in ROLES:
            c = by_node[bitlinear_node(i, role)]
            chunk = max(chunk, c.gemm.N if c.gemm else 1)
            bls.append(dict(fn=c.gemv.name, gemm=c.gemm.name if c.gemm else None, M=c.gemv.M, K=c.gemv.K,
                            m_block=int(c.gemv.tile("m_block", 1)),
                            gemm_m_block=int(c.gemm.tile("m_block", 1)) if c.gemm else 1,
                            wbytes=c.decode_bytes, prefill_bytes=c.prefill_bytes))
        a = lc.attention
        layers.append(dict(heads=a.heads, kv_heads=a.kv_heads, head_dim=a.head_dim, ffn=lc.ffn.hidden,
                           relu2=lc.ffn.activation == "relu2", bitlinears=bls))
    return render("runtime/model.c.j2", model=cfg.name, target=plan.target, header=header, program=PROGRAM,
                  vocab=cfg.vocab_size, hidden=cfg.hidden, layers=layers, eps=cfg.norm_eps,
                  rope_theta=cfg.rope_theta, max_seq=cfg.max_seq, tied=cfg.tie_embeddings, subln=cfg.subln,
                  total_bytes=total_bytes, embed_f16=embed_dtype(model) == np.float16,
                  prefill_chunk=max(chunk, PREFILL_CHUNK), has_gemm=chunk > 1, magic=MAGIC.decode(),
                  layout_id=f"0x{layout_id(model, copies):016x}",
                  two_copies=any(c.own_copy for c in copies), **pool.template_args())


def runtime_files(model: ModelGraph, plan: Plan, target: CTarget, header: str) -> tuple[dict[str, str], bytes]:
    """({SOURCE: C text}, weights file bytes) for a plan whose kernel library has header `header`."""
    blob = b"".join(weight_parts(model, plan, target))
    return {SOURCE: runtime_source(model, plan, target, header, len(blob))}, blob


def weight_formats(specs) -> str:
    """The kernels' weight formats, e.g. "i2" or "i2/tl2"."""
    return "/".join(sorted({s.weight_format for s in specs}))


def copies_summary(copies: list[BitLinearCopies]) -> str:
    """One line: which packed copies of the BitLinears a weights file carries and what they cost."""
    mib = 1 << 20
    decode = sum(c.decode_bytes for c in copies)
    prefill = sum(c.prefill_bytes for c in copies)
    if not prefill:
        return f"BitLinears packed once ({weight_formats(c.gemv for c in copies)}, {decode / mib:,.1f} MiB)"
    saved = sum(c.decode_bytes for c in copies if c.own_copy)
    return (f"BitLinears packed twice: decode {weight_formats(c.gemv for c in copies)} {decode / mib:,.1f} MiB + "
            f"prefill {weight_formats(c.gemm for c in copies if c.own_copy)} {prefill / mib:,.1f} MiB "
            f"(--decode-format same keeps one copy: {saved / mib:,.1f} MiB less)")


def toolchain_for(target: CTarget) -> Toolchain:
    """How this machine builds and runs the program for `target`: natively, or cross + emulator."""
    return program_toolchain(target.isa, target.cflags(), target.name)


def build_program(folder: Path, kernel_sources: list[str], tc: Toolchain) -> Path:
    """Compile the runtime and the kernel library in `folder` into one executable."""
    return tc.compile(folder, [SOURCE, *kernel_sources], PROGRAM, libs=("-lm", "-pthread"))


def run_program(folder: Path, tokens, tc: Toolchain) -> np.ndarray:
    """Run the built program on `tokens`; the last token's logits."""
    out = tc.run(folder / PROGRAM, [str(folder / WEIGHTS), *(str(int(t)) for t in tokens)])
    return np.array([float(v) for v in out.split()], dtype=np.float32)
