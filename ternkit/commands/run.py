"""`ternkit run [MODEL]`: the main job. For now: quantize the model, run the reference forward, summarise."""

import time

import numpy as np

from ternkit.graph import DEFAULT_MODEL, load_model
from ternkit.reference import forward


def register(sub) -> None:
    p = sub.add_parser("run", help="run the main job on a model (default: the built-in tiny model)")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="built-in name, YAML spec or checkpoint")
    p.add_argument("--tokens", type=int, default=32, help="prompt length for the reference forward")
    p.set_defaults(func=run)


def run(args) -> int:
    model = load_model(args.model)
    cfg = model.config
    print(f"model {cfg.name}: {cfg.n_layers} layers, hidden {cfg.hidden}, {model.parameter_count():,} parameters, "
          f"{cfg.weights} weights, int{cfg.activation_bits} activations")
    if model.params is None:
        print("shapes only (no weights): nothing to run")
        return 0
    zeros = total = 0
    for node in model.bitlinears():
        w_q, _ = model.quantized_weight(node)
        zeros += int(np.count_nonzero(w_q == 0))
        total += w_q.size
    print(f"quantized {len(model.bitlinears())} BitLinear weights: {zeros / total:.1%} zeros")
    tokens = np.arange(min(args.tokens, cfg.max_seq)) % cfg.vocab_size
    t0 = time.perf_counter()
    logits = forward(model, tokens)
    dt = time.perf_counter() - t0
    print(f"reference forward: {tokens.size} tokens in {dt * 1e3:.1f} ms; logits {logits.shape}, "
          f"mean {logits.mean():+.4f}, std {logits.std():.4f}")
    return 0
