"""The `ternkit` command. Each subcommand lives in `ternkit/commands/<name>.py` and exposes
`register(subparsers)`; adding one means adding its module name to COMMANDS."""

from __future__ import annotations

import argparse
import importlib
import sys

from ternkit.errors import TernkitError

COMMANDS = ["models", "run"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ternkit",
        description="Ternary (BitNet b1.58 / v1) networks: reference, training, generated C kernels, NPU simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
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
