"""The `ternkit` command. Each subcommand lives in `ternkit/commands/<name>.py` and exposes
`register(subparsers)` (adds its parser and sets `func`); modules there are discovered automatically."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import ternkit.commands
from ternkit.errors import TernkitError


def command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(ternkit.commands.__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ternkit",
        description="Ternary (BitNet b1.58 / v1) networks: reference, training, generated C kernels, NPU simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in command_modules():
        importlib.import_module(f"ternkit.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TernkitError as exc:
        print(f"ternkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ternkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error worth a traceback
        sys.stderr.close()
        return 0
