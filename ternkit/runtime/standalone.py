"""The standalone C runtime: a small C program (template `runtime/model.c.j2`) that runs the whole model
with the generated kernel library, and the packed weights file it reads.

Weights file (`weights.bin`, little-endian): the 8 bytes `TKRT0001`, then in graph order
`embed` f32[vocab][hidden]; per layer `attn_norm` f32[hidden], q, k, v, [`attn.sub_norm` f32[q_dim]],
o, `ffn_norm` f32[hidden], gate, up, [`ffn.sub_norm` f32[ffn]], down; `final_norm` f32[hidden];
`lm_head` f32[vocab][hidden] unless tied. Each BitLinear is its f32 scale followed by the target's
packed weights (`Target.pack`), zero-padded to a multiple of 4 bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternkit.codegen.jinja import render
from ternkit.codegen.plan import Plan
from ternkit.errors import TernkitError, ToolchainError
from ternkit.graph.model import ModelGraph

PROGRAM = "model_runtime"
SOURCE = f"{PROGRAM}.c"
WEIGHTS = "weights.bin"
MAGIC = b"TKRT0001"
_ROLES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _node(layer: int, role: str) -> str:
    return f"layers.{layer}.{'attn' if role in _ROLES[:4] else 'ffn'}.{role}"


def _check(model: ModelGraph, plan: Plan) -> None:
    cfg = model.config
    if cfg.activation_bits != 8:
        raise TernkitError(f"the standalone runtime supports int8 activations only; model {cfg.name!r} uses "
                           f"{cfg.activation_bits}-bit (a4.8): generate without --with-runtime")
    per_row = [n for n in model.bitlinears() if np.ndim(model.quantized_weight(n)[1])]
    if per_row:
        raise TernkitError(f"the standalone runtime carries one weight scale per matrix; {per_row[0]} of model "
                           f"{cfg.name!r} has one per row: run it with `ternkit run` instead of --with-runtime")
    if 1 not in {s.N for s in plan.kernels}:
        raise TernkitError("the standalone runtime needs the one-token kernels: include 1 in --tokens")


def packed_weights(model: ModelGraph, plan: Plan, target) -> tuple[bytes, dict[str, int]]:
    """(weights file bytes, packed byte count per BitLinear node)."""
    _check(model, plan)
    p = model.require_params()
    cfg = model.config
    parts: list[bytes] = [MAGIC]
    sizes: dict[str, int] = {}

    def floats(name: str) -> None:
        parts.append(np.ascontiguousarray(p[name], dtype="<f4").tobytes())

    def bitlinear(node: str) -> None:
        w_q, scale = model.quantized_weight(node)
        packed = np.ascontiguousarray(target.pack(plan.kernel_for(node, 1), w_q), dtype=np.uint8).tobytes()
        sizes[node] = len(packed)
        parts.append(np.array([scale], dtype="<f4").tobytes() + packed + b"\0" * (-len(packed) % 4))

    floats("embed.weight")
    for i in range(cfg.n_layers):
        floats(f"layers.{i}.attn_norm.weight")
        for role in _ROLES[:3]:
            bitlinear(_node(i, role))
        if cfg.subln:
            floats(f"layers.{i}.attn.sub_norm.weight")
        bitlinear(_node(i, "o_proj"))
        floats(f"layers.{i}.ffn_norm.weight")
        bitlinear(_node(i, "gate_proj"))
        bitlinear(_node(i, "up_proj"))
        if cfg.subln:
            floats(f"layers.{i}.ffn.sub_norm.weight")
        bitlinear(_node(i, "down_proj"))
    floats("final_norm.weight")
    if not cfg.tie_embeddings:
        floats("lm_head.weight")
    return b"".join(parts), sizes


def runtime_files(model: ModelGraph, plan: Plan, target, header: str) -> tuple[dict[str, str], bytes]:
    """({SOURCE: C text}, weights file bytes) for a plan whose kernel library has header `header`."""
    blob, sizes = packed_weights(model, plan, target)
    cfg = model.config
    layers = []
    for i, lc in enumerate(cfg.layers):
        bls = []
        for role in _ROLES:
            node = _node(i, role)
            spec = plan.kernel_for(node, 1)
            bls.append(dict(fn=spec.name, M=spec.M, K=spec.K, wbytes=sizes[node]))
        a = lc.attention
        layers.append(dict(heads=a.heads, kv_heads=a.kv_heads, head_dim=a.head_dim, ffn=lc.ffn.hidden,
                           relu2=lc.ffn.activation == "relu2", bitlinears=bls))
    source = render("runtime/model.c.j2", model=cfg.name, target=plan.target, header=header, program=PROGRAM,
                    vocab=cfg.vocab_size, hidden=cfg.hidden, layers=layers, eps=cfg.norm_eps,
                    rope_theta=cfg.rope_theta, max_seq=cfg.max_seq, tied=cfg.tie_embeddings, subln=cfg.subln,
                    total_bytes=len(blob))
    return {SOURCE: source}, blob


@dataclass(frozen=True)
class Toolchain:
    cc: str
    cflags: tuple[str, ...]
    runner: tuple[str, ...] = ()   # e.g. qemu-aarch64 -L /usr/aarch64-linux-gnu

    def check(self) -> None:
        for exe in (self.cc, *self.runner[:1]):
            if shutil.which(exe) is None:
                raise ToolchainError(f"{exe!r} not found: install it (see .ci/run) to build and run the standalone runtime")


def native_toolchain(cflags: tuple[str, ...] = ()) -> Toolchain:
    return Toolchain(os.environ.get("CC", "gcc"), cflags)


def aarch64_toolchain(cflags: tuple[str, ...] = ("-march=armv8.2-a+dotprod",)) -> Toolchain:
    return Toolchain("aarch64-linux-gnu-gcc", cflags, ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"))


def build_program(folder: Path, kernel_sources: list[str], tc: Toolchain) -> Path:
    """Compile the runtime and the kernel library in `folder` into one executable."""
    tc.check()
    exe = folder / PROGRAM
    cmd = [tc.cc, "-O2", "-Wall", "-Wextra", "-Werror", *tc.cflags, SOURCE, *kernel_sources, "-lm", "-o", PROGRAM]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    if done.returncode:
        raise TernkitError(f"building the standalone runtime failed: {' '.join(cmd)}\n{done.stderr.strip()[-2000:]}")
    return exe


def run_program(folder: Path, tokens, tc: Toolchain) -> np.ndarray:
    """Run the built program on `tokens`; the last token's logits."""
    cmd = [*tc.runner, str(folder / PROGRAM), str(folder / WEIGHTS), *(str(int(t)) for t in tokens)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise TernkitError(f"standalone runtime failed: {done.stderr.strip()}")
    return np.array([float(v) for v in done.stdout.split()], dtype=np.float32)
