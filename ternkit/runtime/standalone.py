"""The standalone C runtime: a small C program (template `runtime/model.c.j2`) that runs the whole model
with the generated kernel library, and the packed weights file it reads.

Weights file (`weights.bin`, little-endian): the 8 bytes `TKRT0001`, then in graph order
`embed` [vocab][hidden]; per layer `attn_norm` f32[hidden], q, k, v, [`attn.sub_norm` f32[q_dim]],
o, `ffn_norm` f32[hidden], gate, up, [`ffn.sub_norm` f32[ffn]], down; `final_norm` f32[hidden];
`lm_head` [vocab][hidden] unless tied. The embedding and LM head are float16 when the model keeps its
embedding in float16 (random weights for big models, as the 2B4T release keeps bf16), float32
otherwise. Each BitLinear is its f32 scale followed by the target's packed weights (`Target.pack`);
every item is zero-padded to a multiple of 4 bytes. The GEMV (decode) and GEMM (prefill) kernels of a
BitLinear read the same packed bytes; where their layouts differ, the prompt goes through the GEMV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ternkit.codegen.ctarget import CTarget
from ternkit.codegen.jinja import render
from ternkit.codegen.plan import Plan
from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import ROLES, ModelGraph, bitlinear_node, layer_weights
from ternkit.toolchain import Toolchain, program_toolchain

PROGRAM = "model_runtime"
SOURCE = f"{PROGRAM}.c"
WEIGHTS = "weights.bin"
MAGIC = b"TKRT0001"
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


def gemm_spec(plan: Plan, target: CTarget, node: str):
    """The node's prefill (N > 1) kernel when it reads the GEMV's packed bytes, else None."""
    gemv = plan.kernel_for(node, 1)
    gemms = [s for s, nodes in plan.users.items() if node in nodes and s.N > 1]
    if not gemms:
        return None
    spec = max(gemms, key=lambda s: s.N)
    same = spec.weight_format == gemv.weight_format and target.layout(spec) == target.layout(gemv)
    return spec if same else None


def weight_parts(model: ModelGraph, plan: Plan, target, sizes: dict[str, int]) -> Iterator[bytes]:
    """The weights file, piece by piece (a 2B4T file is 1.2 GB: stream it); `sizes` gets each
    BitLinear's packed byte count."""
    _check(model, plan)
    p = model.require_params()
    cfg = model.config
    dt = embed_dtype(model)

    def pad(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % 4)

    def floats(name: str, dtype=np.dtype("<f4")) -> bytes:
        arr = p[name]
        out = bytearray()
        for i in range(0, arr.shape[0], 4096):   # a block of rows at a time: no full-size copy
            out += np.ascontiguousarray(arr[i:i + 4096], dtype=dtype).tobytes()
        return pad(bytes(out))

    def bitlinear(node: str) -> bytes:
        w_q, _ = model.quantized_weight(node)
        packed = np.ascontiguousarray(target.pack(plan.kernel_for(node, 1), w_q), dtype=np.uint8).tobytes()
        sizes[node] = len(packed)
        return np.array([model.weight_scale(node)], dtype="<f4").tobytes() + pad(packed)

    yield MAGIC
    yield floats("embed.weight", dt)
    for i in range(cfg.n_layers):
        for node, _ in layer_weights(cfg, i):
            yield bitlinear(node) if model.graph.nodes[node]["op"] == "bitlinear" else floats(f"{node}.weight")
    yield floats("final_norm.weight")
    if not cfg.tie_embeddings:
        yield floats("lm_head.weight", dt)


def packed_weights(model: ModelGraph, plan: Plan, target) -> tuple[bytes, dict[str, int]]:
    """(weights file bytes, packed byte count per BitLinear node)."""
    sizes: dict[str, int] = {}
    return b"".join(weight_parts(model, plan, target, sizes)), sizes


def write_weights(model: ModelGraph, plan: Plan, target, path: Path) -> tuple[int, dict[str, int]]:
    """Stream the weights file to `path`; (its size, packed byte count per BitLinear node)."""
    sizes: dict[str, int] = {}
    total = 0
    with open(path, "wb") as f:
        for part in weight_parts(model, plan, target, sizes):
            f.write(part)
            total += len(part)
    return total, sizes


def runtime_source(model: ModelGraph, plan: Plan, target, header: str, total_bytes: int, sizes: dict[str, int]) -> str:
    """The C program for a plan whose kernel library has header `header`."""
    from ternkit.runtime import pool

    cfg = model.config
    layers = []
    chunk = 1
    for i, lc in enumerate(cfg.layers):
        bls = []
        for role in ROLES:
            node = bitlinear_node(i, role)
            spec = plan.kernel_for(node, 1)
            gemm = gemm_spec(plan, target, node)
            chunk = max(chunk, gemm.N if gemm else 1)
            bls.append(dict(fn=spec.name, gemm=gemm.name if gemm else None, M=spec.M, K=spec.K,
                            m_block=int(spec.tile("m_block", 1)), wbytes=sizes[node]))
        a = lc.attention
        layers.append(dict(heads=a.heads, kv_heads=a.kv_heads, head_dim=a.head_dim, ffn=lc.ffn.hidden,
                           relu2=lc.ffn.activation == "relu2", bitlinears=bls))
    return render("runtime/model.c.j2", model=cfg.name, target=plan.target, header=header, program=PROGRAM,
                  vocab=cfg.vocab_size, hidden=cfg.hidden, layers=layers, eps=cfg.norm_eps,
                  rope_theta=cfg.rope_theta, max_seq=cfg.max_seq, tied=cfg.tie_embeddings, subln=cfg.subln,
                  total_bytes=total_bytes, embed_f16=embed_dtype(model) == np.float16,
                  prefill_chunk=max(chunk, PREFILL_CHUNK), has_gemm=chunk > 1,
                  **pool.template_args())


def runtime_files(model: ModelGraph, plan: Plan, target, header: str) -> tuple[dict[str, str], bytes]:
    """({SOURCE: C text}, weights file bytes) for a plan whose kernel library has header `header`."""
    blob, sizes = packed_weights(model, plan, target)
    return {SOURCE: runtime_source(model, plan, target, header, len(blob), sizes)}, blob


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
