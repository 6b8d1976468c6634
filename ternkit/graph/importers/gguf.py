"""Import BitNet GGUF files (llama.cpp and bitnet.cpp) into a ModelGraph.

Architectures: `bitnet` (llama.cpp; the community 1bitLLM models, gated SiLU FFN), `bitnet-b1.58` and
`bitnet-25` (bitnet.cpp / BitNet b1.58 2B4T, gated squared-ReLU FFN). All use rotate-half (NeoX) RoPE,
which is what ternkit's reference implements, so Q/K are taken as stored.

BitLinear tensor types:
- TQ1_0 / TQ2_0: decoded with `gguf.quants.dequantize`; the codes are `round(value / d)` per block.
  When every block of a tensor has the same `d` (what llama.cpp's BitNet converter writes: one absmean
  scale per tensor) the import is exact: `weight_q` = codes, `weight_scale` = d. When the blocks' `d`
  differ, one scale cannot represent the tensor; it is requantized (absmean over the dequantized values)
  and a note says so.
- I2_S (bitnet.cpp, type id 36; not in the gguf library's enum, so read here): 2-bit codes, 4 per byte,
  in blocks of 128 weights over the flattened tensor: weight j of a block sits in byte `j % 32` of the
  block's 32 bytes at bit shift `6 - 2 * (j // 32)`; code 0 = -1, 1 = 0, 2 = +1. One float32 scale
  follows the `n / 4` code bytes. (This is the x86 layout; bitnet.cpp's ARM build packs blocks of 64.)
- F16 / F32: quantized on load (exactly, when the values are already `{-s, 0, +s}`).
Optional per-tensor `<name>.scale` tensors (llama.cpp's BitNet loader accepts them) multiply the scale.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import gguf
import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.config import AttentionConfig, FFNConfig, LayerConfig, ModelConfig
from ternkit.graph.importers.common import CheckpointError, ParamSet, f16_bits, finish, unexpected_error
from ternkit.graph.model import ModelGraph
from ternkit.reference.quant import quantize_weights

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


def _ternary_from_tq(name: str, t, ps: ParamSet) -> tuple[np.ndarray, float] | np.ndarray:
    values, d = _tq_codes(t)
    used = np.unique(d[d > 0])
    if used.size <= 1:
        scale = float(used[0]) if used.size else 1.0
        w_q = np.rint(values / scale).astype(np.int8)
        return w_q, scale
    ps.notes.append(f"{name}: {used.size} different block scales in {t.tensor_type.name}; requantized to one "
                    "absmean scale (not bit-exact to the file)")
    return values


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
            _bitlinear(name, node, reader, tensors, ps, scales.get(stem, 1.0), config.weights)
        else:
            ps.params[f"{node}.weight"] = _dense(tensors[name])
    for note in ps.notes:
        warnings.warn(f"{path}: {note}", stacklevel=2)
    return finish(path, config, ps)


def _dense(t) -> np.ndarray:
    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return np.array(t.data, dtype=np.float32)
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)


def _bitlinear(name: str, node: str, reader: _Reader, tensors: dict, ps: ParamSet, extra: float, mode: str) -> None:
    if name in reader.i2s:
        shape, raw = reader.i2s[name]
        w_q, scale = decode_i2s(raw, shape)
        ps.add_ternary(node, w_q, scale * extra)
        return
    t = tensors[name]
    if t.tensor_type in (gguf.GGMLQuantizationType.TQ1_0, gguf.GGMLQuantizationType.TQ2_0):
        got = _ternary_from_tq(name, t, ps)
        if isinstance(got, tuple):
            ps.add_ternary(node, got[0], got[1] * extra)
        else:
            w_q, scale = quantize_weights(got * extra, mode)
            ps.add_ternary(node, w_q, scale)
        return
    ps.add_float_matrix(node, _dense(t) * np.float32(extra))
