"""`ternkit models`: list the built-in models."""

from ternkit.graph import builtin_config, builtin_names, build_graph
from ternkit.graph.builtin import DEFAULT_MODEL
from ternkit.textable import table


def register(sub) -> None:
    p = sub.add_parser("models", help="list the built-in models")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = []
    for name in builtin_names():
        cfg = builtin_config(name)
        params = build_graph(cfg).parameter_count()
        mark = " (default)" if name == DEFAULT_MODEL else ""
        rows.append((name + mark, f"{cfg.n_layers}", f"{cfg.hidden}", f"{params / 1e6:,.2f} M", cfg.weights,
                     cfg.description))
    header = ("model", "layers", "hidden", "params", "weights", "description")
    print(table(header, rows))
    return 0
