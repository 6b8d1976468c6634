"""ternkit: ternary (1.58-bit, BitNet-style) neural networks, from numpy reference to generated C kernels."""

from ternkit.errors import TernkitError

__version__ = "0.1.0"
__all__ = ["TernkitError", "__version__"]
