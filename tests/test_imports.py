"""No import cycles: between modules as Python runs them, and between ternkit's packages even through the
imports done inside functions (a function-level import hides a cycle until someone moves it up)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

import ternkit

ROOT = Path(ternkit.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, module_level: bool) -> list[str]:
    """ternkit modules `name` imports (each imported name, and the package it comes from), outside
    `if TYPE_CHECKING:`; with `module_level`, only those run when the module is imported."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Import):
                found.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                found.append(base)
                found.extend(f"{base}.{a.name}" for a in node.names)
            visit(ast.iter_child_nodes(node))

    visit(ast.parse(path.read_text()).body)
    return [m for m in found if m == "ternkit" or m.startswith("ternkit.")]


def _graph(module_level: bool, level=lambda m: m) -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(level(name))
        for imported in _imports(name, path, module_level):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):   # `import a.b.c` runs a, a.b and a.b.c
                target = ".".join(parts[:i])
                # a module's own parent packages are already being imported when it runs: no edge
                if target in mods and target != name and not name.startswith(target + "."):
                    g.add_edge(level(name), level(target))
    return g


def _cycles(g: nx.DiGraph) -> list[str]:
    return [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(g) if len(c) > 1]


def test_no_module_import_cycles():
    assert _cycles(_graph(module_level=True)) == []


def test_no_package_cycles_even_through_function_level_imports():
    def package(m: str) -> str:   # ternkit.graph, ternkit.runtime, ... (top-level modules as themselves)
        return ".".join(m.split(".")[:2])

    assert _cycles(_graph(module_level=False, level=package)) == []


def test_every_module_imports_on_its_own():
    """Each module imported first, in a fresh ternkit (one interpreter: ternkit's modules dropped between)."""
    names = sorted(n for n in _modules() if not n.endswith("__main__"))
    script = ("import importlib, sys\n"
              f"for name in {names!r}:\n"
              "    for m in [m for m in sys.modules if m == 'ternkit' or m.startswith('ternkit.')]:\n"
              "        del sys.modules[m]\n"
              "    try:\n"
              "        importlib.import_module(name)\n"
              "    except Exception as exc:\n"
              "        print(f'{name}: {type(exc).__name__}: {exc}')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
