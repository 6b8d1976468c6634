"""`ternkit info MODEL`: layers, parameter count, and the weight memory of the model in each format."""

from __future__ import annotations

from ternkit import formats
from ternkit.errors import ShapeError
from ternkit.graph import load_model
from ternkit.graph.modelgraph import param_shapes
from ternkit.textable import table


def register(sub) -> None:
    p = sub.add_parser("info", help="show a model's layers, parameter count and weight memory per format")
    p.add_argument("model", help="built-in name, YAML spec or checkpoint")
    p.set_defaults(func=run)


def human(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n:.0f} B"


def format_bytes(name: str, shapes: list[tuple[int, int]]) -> int | str:
    """Packed bytes of every BitLinear matrix in `name` (row-major layout), or why it cannot hold them."""
    fmt = formats.get_format(name)
    try:
        return sum(fmt.nbytes(m, k) for m, k in shapes)
    except ShapeError as e:
        return f"n/a: {str(e).split(': ', 1)[1]}"


def run(args) -> int:
    model = load_model(args.model, with_params=False)
    cfg = model.config
    shapes = param_shapes(cfg)
    bitlinear = [(model.attrs(n)["out_features"], model.attrs(n)["in_features"]) for n in model.bitlinears()]
    n_ternary = sum(m * k for m, k in bitlinear)
    n_total = model.parameter_count()
    print(f"model {cfg.name}: {cfg.description}".rstrip(": "))
    print(f"  vocab {cfg.vocab_size}, hidden {cfg.hidden}, {cfg.n_layers} layers, weights {cfg.weights}, "
          f"activations int{cfg.activation_bits}, SubLN {'on' if cfg.subln else 'off'}, max_seq {cfg.max_seq}")
    print(f"  parameters {n_total:,} ({n_ternary:,} in {len(bitlinear)} BitLinear matrices, "
          f"{n_total - n_ternary:,} full precision: embedding, norms, LM head)\n")

    rows, prev = [], None
    for i, layer in enumerate(cfg.layers):
        a, f = layer.attention, layer.ffn
        desc = (f"{a.heads}", f"{a.kv_heads}", f"{a.head_dim}", f"{f.hidden}", f.activation)
        if desc == prev:
            rows[-1] = (rows[-1][0].split("-")[0] + f"-{i}", *desc)
        else:
            rows.append((f"{i}", *desc))
        prev = desc
    print(table(("layers", "heads", "kv heads", "head dim", "ffn hidden", "ffn act"), rows) + "\n")

    full = 2 * (n_total - n_ternary)   # the full-precision parts, stored as fp16 beside any format
    rows = [("fp16 (unquantized)", "16", human(2 * n_ternary), human(2 * n_ternary + full), "")]
    for name in formats.FORMATS:
        size = format_bytes(name, bitlinear)
        if isinstance(size, str):
            rows.append((name, f"{formats.bits_per_weight(name):.4g}", size, "", ""))
        else:
            scales = 0 if name in formats.GGML_FORMATS else 4 * len(bitlinear)  # one fp32 scale a matrix
            rows.append((name, f"{formats.bits_per_weight(name):.4g}", human(size + scales), human(size + scales + full),
                         f"{2 * n_ternary / (size + scales):.1f}x"))
    print(table(("format", "bits/weight", "BitLinear weights", "model (+ fp16 rest)", "vs fp16"), rows))
    print(f"\n(the full-precision rest, {len(shapes) - len(bitlinear)} tensors, counted as fp16: {human(full)})")
    return 0
