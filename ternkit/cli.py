"""The `ternkit` command. Each subcommand lives in `ternkit/commands/<name>.py` and exposes
`register(subparsers)` (adds its parser and sets `func`); modules there are discovered automatically.

Whatever a user does, they get one line, never a traceback: a TernkitError (or a bad argument) prints
its message and exits 2, Ctrl-C exits 130, an OSError on a path names the path and exits 2. Only the
standard library is imported before `main` is running, so Ctrl-C during start-up is caught too."""

from __future__ import annotations

import argparse
import sys

from ternkit import __version__
from ternkit.errors import TernkitError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command_modules() -> list[str]:
    import pkgutil

    import ternkit.commands

    return sorted(m.name for m in pkgutil.iter_modules(ternkit.commands.__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="ternkit",
        description="Ternary (BitNet b1.58 / v1) networks: reference, training, generated C kernels, NPU simulation.",
    )
    parser.add_argument("--version", action="version", version=f"ternkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in command_modules():
        importlib.import_module(f"ternkit.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except TernkitError as exc:
        print(f"ternkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"ternkit: interrupted{f': {exc}' if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error worth a traceback
        sys.stderr.close()
        return 0
    except OSError as exc:
        if exc.filename is None:   # not about a path the user gave: a bug, keep its traceback
            raise
        print(f"ternkit: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
