"""Random weights for a model of any size, generated directly in the form a ternary model stores them.

Small models (up to `FLOAT_RANDOM_MAX_PARAMS` parameters) get latent float32 weights (`init_params`),
quantized on use, as a freshly initialised training run has them. Bigger ones (BitNet b1.58 2B4T:
2.4 B parameters) would need ~10 GB that way, so `packed_random_params` draws the BitLinear weights as
packed 2-bit codes (`<node>.weight_i2`: the `i2` format with `k_align` 4, row-major, K/4 bytes a row;
each weight uniform over {-1, 0, +1}) with one scale per matrix, and keeps the embedding (= the tied LM
head) in float16, as the released 2B4T model does (bf16 there): 2B4T takes 0.5 GB of codes plus
0.66 GB of embedding instead of 9.6 GB of float32.
"""

from __future__ import annotations

import numpy as np

from ternkit.graph.config import ModelConfig
from ternkit.graph.modelgraph import param_shapes

FLOAT_RANDOM_MAX_PARAMS = 50_000_000
PACKED_SUFFIX = ".weight_i2"
_CHUNK = 1 << 24   # values drawn at a time (bounds the float32 scratch memory)
# the 81 bytes whose four 2-bit fields are all valid codes (0, 1, 2 = weights -1, 0, +1)
_VALID_BYTES = np.array([b for b in range(256) if all((b >> s) & 3 != 3 for s in (0, 2, 4, 6))], dtype=np.uint8)


def random_i2(rng: np.random.Generator, M: int, K: int) -> np.ndarray:
    """A random ternary [M, K] matrix packed as `formats.i2` (k_align 4), without an int8 intermediate;
    padding weights (K not a multiple of 4) are zero, as the format requires."""
    row = -(-K // 4)
    packed = _VALID_BYTES[rng.integers(0, _VALID_BYTES.size, size=(M, row), dtype=np.uint8)]
    if K % 4:
        keep = (1 << (2 * (K % 4))) - 1            # the real weights' bits of the last byte
        packed[:, -1] = (packed[:, -1] & keep) | (0x55 & ~keep & 0xFF)   # code 1 (zero) in the padding
    return packed.reshape(-1)


def _normal_f16(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """N(0, std²) float16 values, drawn as random picks from a table of 65,536 normal samples: a 2B4T
    embedding is 328 M values, and numpy's normal sampling plus float16 conversion take ~20 s for it."""
    table = (rng.standard_normal(1 << 16, dtype=np.float32) * np.float32(std)).astype(np.float16)
    out = np.empty(int(np.prod(shape)), dtype=np.float16)
    for i in range(0, out.size, _CHUNK):
        n = min(_CHUNK, out.size - i)
        out[i:i + n] = table[rng.integers(0, 1 << 16, size=n, dtype=np.uint16)]
    return out.reshape(shape)


def packed_random_params(config: ModelConfig, seed: int | None = None, std: float = 0.02) -> dict[str, np.ndarray]:
    """Random parameters with packed ternary BitLinears and a float16 embedding / LM head (N(0, std²));
    norms at 1.
    Each BitLinear's scale is `1 / sqrt(2K/3)` so its outputs stay near unit size."""
    rng = np.random.default_rng(config.seed if seed is None else seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(config).items():
        if len(shape) == 1:
            params[name] = np.ones(shape, dtype=np.float32)
        elif name in ("embed.weight", "lm_head.weight"):
            params[name] = _normal_f16(rng, shape, std)
        else:
            node = name.removesuffix(".weight")
            M, K = shape
            params[node + PACKED_SUFFIX] = random_i2(rng, M, K)
            params[f"{node}.weight_scale"] = np.float32(1.0 / np.sqrt(2.0 * K / 3.0))
    return params
