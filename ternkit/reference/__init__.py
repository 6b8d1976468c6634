"""numpy reference semantics: quantizers, exact integer BitLinear, layers, forward (and training)."""

from ternkit.reference.quant import (
    bitlinear, bitlinear_q, default_outlier_k, dequantize, quantize_activations, quantize_activations_a48,
    quantize_weights, rmsnorm, ternary_matmul,
)
from ternkit.reference.forward import KVCache, forward, greedy_generate

__all__ = [
    "KVCache", "bitlinear", "bitlinear_q", "default_outlier_k", "dequantize", "forward", "greedy_generate",
    "quantize_activations", "quantize_activations_a48", "quantize_weights", "rmsnorm", "ternary_matmul",
]
