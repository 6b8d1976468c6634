"""Import BitNet GGUF files (llama.cpp and bitnet.cpp) into a ModelGraph.

Architectures: `bitnet` (llama.cpp; the community 1bitLLM models, gated SiLU FFN), `bitnet-b1.58` and
`bitnet-25` (bitnet.cpp / BitNet b1.58 2B4T, gated squared-ReLU FFN). All use rotate-half (NeoX) RoPE,
which is what ternkit's reference implements, so Q/K are taken as stored.

BitLinear tensor types:
- TQ1_0 / TQ2_0: 256-weight blocks along K, each with an fp16 scale `d`; weight = code · d. Imported
  exactly or refused, never approximated: a negative `d` is folded into the codes' signs and a zero `d`
  zeroes its block, so `weight_q = code · sign(d)` and the scale is `|d|`. When every non-zero `|d|` of
  the tensor is equal (what llama.cpp's BitNet converter writes: one absmean scale per tensor)
  `weight_scale` is that one number; when they are equal along each row but differ between rows,
  `weight_scale` is a per-output-row vector (`y = y_int[n, m] · weight_scale[m] · x_scale[n]`, as exact
  and as cheap). Blocks of one row with different `|d|` would need per-block partial sums, which the
  kernels do not keep: such a tensor is refused with a message naming it and the row.
- I2_S (bitnet.cpp, type id 36; not in the gguf library's enum, so read here): 2-bit codes, 4 per byte,
  in blocks of 128 weights over the flattened tensor: weight j of a block sits in byte `j % 32` of the
  block's 32 bytes at bit shift `6 - 2 * (j // 32)`; code 0 = -1, 1 = 0, 2 = +1. One float32 scale
  follows the `n / 4` code bytes. (This is the x86 layout; bitnet.cpp's ARM build packs blocks of 64.)
- F16 / F32: quantized on load (exactly, when the values are already `{-s, 0, +s}`).
Optional per-tensor `<name>.scale` tensors (llama.cpp's BitNet loader accepts them) multiply the scale.
"""

from __future__ import annotations

import re
from pathlib import Path

import gguf
import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.config import AttentionConfig, FFNConfig, LayerConfig, ModelConfig
from ternkit.graph.importers.common import CheckpointError, ParamSet, f16_bits, finish, unexpected_error
from ternkit.graph.modelgraph import ModelGraph

ARCH_ACTIVATION = {"bitnet": "swiglu", "bitnet-b1.58": "relu2", "bitnet-25": "relu2"}
I2_S = 36
I2_S_BLOCK = 128

_GLOBAL = {"token_embd": "embed", "output_norm": "final_norm", "output": "lm_head"}
_BLOCK = {
    "attn_norm": "attn_norm", "attn_q": "attn.q_proj", "attn_k": "attn.k_proj", "attn_v": "attn.v_proj",
    "attn_sub_norm": "attn.sub_norm", "attn_output": "attn.o_proj", "ffn_norm": "ffn_norm",
    "ffn_gate": "ffn.gate_proj", "ffn_up": "ffn.up_proj", "ffn_sub_norm": "ffn.sub_norm", "ffn_down": "ffn.down_proj",
}
_BITLINEAR = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|scale)$")


class _Reader(gguf.GGUFReader):
    """GGUFReader that also accepts bitnet.cpp's I2_S tensors (raw bytes + trailing scale)."""

    def _build_tensors(self, start_offs, fields):  # noqa: ANN001 - library signature
        i2s = [f for f in fields if int(f.parts[4][0]) == I2_S]
        super()._build_tensors(start_offs, [f for f in fields if int(f.parts[4][0]) != I2_S])
        self.i2s: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}
        for f in i2s:
            _, name, _, dims, _, offset = f.parts
            shape = tuple(int(d) for d in reversed(dims.tolist()))
            n = int(np.prod(shape))
            raw = self._get(int(start_offs + offset[0]), np.uint8, n // 4 + 4)
            self.i2s[str(bytes(name), encoding="utf-8")] = (shape, np.array(raw))


def decode_i2s(raw: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """I2_S bytes -> (codes int8 in shape, scale)."""
    n = int(np.prod(shape))
    if n % I2_S_BLOCK:
        raise CheckpointError(f"I2_S tensor of {n} weights is not a multiple of the {I2_S_BLOCK}-weight block")
    codes = raw[: n // 4].reshape(-1, 1, 32)  # [blocks, 1, byte-in-block]
    shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)  # group g = j // 32
    vals = ((codes >> shifts) & 3).reshape(-1)  # block-major, then group, then byte: index j = g*32 + byte
    if np.any(vals == 3):
        raise CheckpointError("I2_S tensor holds code 3, which is not a ternary value")
    scale = float(raw[n // 4: n // 4 + 4].view(np.float32)[0])
    return (vals.astype(np.int8) - 1).reshape(shape), scale


def _tq_codes(t) -> tuple[np.ndarray, np.ndarray]:
    """(dequantized float32 [M, K], per-block d float32 [M, K/256]) of a TQ1_0/TQ2_0 tensor."""
    values = gguf.quants.dequantize(t.data, t.tensor_type)
    d = f16_bits(np.ascontiguousarray(t.data.reshape(*t.data.shape[:-1], -1, gguf.GGML_QUANT_SIZES[t.tensor_type][1])[..., -2:]))
    return values.astype(np.float32), d.reshape(*t.data.shape[:-1], -1)


def _ternary_from_tq(name: str, t) -> tuple[np.ndarray, float | np.ndarray]:
    """(w_q int8 [M, K], scale: one float or float32 [M]) with `w_q · scale` equal to the file's weights,
    or a CheckpointError when no per-row scale represents them."""
    values, d = _tq_codes(t)
    if values.ndim != 2:
        raise CheckpointError(f"{name}: a BitLinear weight must be a matrix, got shape {values.shape}")
    mag = np.abs(d)
    row_scale = mag.max(axis=1)
    differs = (mag != row_scale[:, None]) & (mag > 0)
    if differs.any():
        row, block = (int(i[0]) for i in np.nonzero(differs))
        raise CheckpointError(
            f"{name}: row {row} has {t.tensor_type.name} blocks with different scales ({row_scale[row]:g} and "
            f"{mag[row, block]:g}); ternkit dequantises with one scale per output row, so this tensor cannot be "
            "imported exactly (re-export it with one scale per row or per tensor, as llama.cpp's converter does)")
    block = values.shape[1] // d.shape[1]
    sign = np.repeat(np.sign(d), block, axis=1)                      # -1, 0 (a zero block) or +1
    row_scale = np.where(row_scale > 0, row_scale, np.float32(1))   # an all-zero row: any scale is exact
    w_q = (np.rint(values / row_scale[:, None]) * (sign != 0)).astype(np.int8)
    if not np.array_equal(w_q.astype(np.float32) * row_scale[:, None], values) or np.abs(w_q).max(initial=0) > 1:
        raise CheckpointError(f"{name}: {t.tensor_type.name} values are not ternary codes times the block scale")
    scales = np.unique(row_scale)
    return w_q, (float(scales[0]) if scales.size == 1 else row_scale.astype(np.float32))


def _metadata(reader: gguf.GGUFReader) -> dict:
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def _need(meta: dict, path: Path, key: str):
    if key not in meta:
        raise CheckpointError(f"{path}: GGUF metadata lacks {key!r}, which a BitNet model needs")
    return meta[key]


def _config(path: Path, meta: dict, names: set[str], vocab: int) -> ModelConfig:
    arch = meta.get("general.architecture")
    if arch not in ARCH_ACTIVATION:
        raise CheckpointError(f"{path}: architecture {arch!r} is not supported: ternkit imports "
                              f"{', '.join(ARCH_ACTIVATION)} GGUF files")
    n_layers = int(_need(meta, path, f"{arch}.block_count"))
    hidden = int(_need(meta, path, f"{arch}.embedding_length"))
    ffn = int(_need(meta, path, f"{arch}.feed_forward_length"))
    heads = int(_need(meta, path, f"{arch}.attention.head_count"))
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
    head_dim = int(meta.get(f"{arch}.attention.key_length", hidden // heads))
    layer = LayerConfig(AttentionConfig(heads, kv_heads, head_dim), FFNConfig(ffn, ARCH_ACTIVATION[arch]))
    name = str(meta.get("general.name") or path.stem)
    return ModelConfig(
        name=name, vocab_size=vocab, hidden=hidden, layers=(layer,) * n_layers, weights="ternary",
        activation_bits=8, subln="blk.0.attn_sub_norm.weight" in names,
        norm_eps=float(meta.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
        max_seq=int(meta.get(f"{arch}.context_length", 2048)),
        tie_embeddings="output.weight" not in names, description=f"imported from {path.name} ({arch})",
    )


def _target(name: str) -> tuple[str, str] | None:
    """GGUF tensor name -> (ternkit node, GGUF role) or None when unknown."""
    stem, _, kind = name.rpartition(".")
    if stem in _GLOBAL and kind == "weight":
        return _GLOBAL[stem], stem
    m = _BLOCK_RE.match(name)
    if m and m.group(2) in _BLOCK and (m.group(3) == "weight" or m.group(2) in _BITLINEAR):
        return f"layers.{m.group(1)}.{_BLOCK[m.group(2)]}", m.group(2)
    return None


def load_gguf(path: str | Path) -> ModelGraph:
    path = Path(path)
    if not path.is_file():
        raise TernkitError(f"{path}: no such GGUF file")
    try:
        reader = _Reader(path)
    except (ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: not a readable GGUF file ({exc})") from None
    meta = _metadata(reader)
    tensors = {t.name: t for t in reader.tensors}
    names = set(tensors) | set(reader.i2s)
    unknown = [n for n in names if _target(n) is None]
    if unknown:
        raise unexpected_error(path, unknown, ["token_embd.weight", "blk.N.{attn_norm,attn_q,attn_k,attn_v,"
                                              "attn_sub_norm,attn_output,ffn_norm,ffn_gate,ffn_up,ffn_sub_norm,"
                                              "ffn_down}.weight", "output_norm.weight", "output.weight (optional)",
                                              "blk.N.<bitlinear>.scale (optional)"])
    if "token_embd.weight" not in tensors:
        raise CheckpointError(f"{path}: no token_embd.weight tensor (found {', '.join(sorted(names)[:5])}, ...)")
    vocab = int(tensors["token_embd.weight"].shape[-1])
    config = _config(path, meta, names, vocab)
    ps = ParamSet()
    scales = {n.removesuffix(".scale"): float(_dense(tensors[n]).reshape(-1)[0]) for n in tensors if n.endswith(".scale")}
    for name in sorted(names):
        if name.endswith(".scale"):
            continue
        node, role = _target(name)
        stem = name.removesuffix(".weight")
        if role in _BITLINEAR:
            _bitlinear(name, node, reader, tensors, ps, scales.get(stem, 1.0))
        else:
            ps.params[f"{node}.weight"] = _dense(tensors[name])
    return finish(path, config, ps)


def _dense(t) -> np.ndarray:
    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return np.array(t.data, dtype=np.float32)
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)


def _bitlinear(name: str, node: str, reader: _Reader, tensors: dict, ps: ParamSet, extra: float) -> None:
    if name in reader.i2s:
        shape, raw = reader.i2s[name]
        w_q, scale = decode_i2s(raw, shape)
        ps.add_ternary(node, w_q, scale * extra)
        return
    t = tensors[name]
    if t.tensor_type in (gguf.GGMLQuantizationType.TQ1_0, gguf.GGMLQuantizationType.TQ2_0):
        w_q, scale = _ternary_from_tq(name, t)
        ps.add_ternary(node, w_q, scale * extra)
        return
    ps.add_float_matrix(node, _dense(t) * np.float32(extra))
