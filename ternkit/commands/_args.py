"""argparse types for the commands' numeric options: a bad value is reported by argparse with the
option's own name (`argument --threads: ...`), on one line, before any work."""

from __future__ import annotations

import argparse


def counts(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers, e.g. `1,64` (token or thread counts)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return values


def positive(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative(text: str) -> int:
    return _int_at_least(text, 0)


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def thread_counts(text: str) -> list[int | str]:
    """`auto` or comma-separated positive integers (`1,2,auto`), checked before any work."""
    from ternkit.errors import TernkitError
    from ternkit.runtime.pool import parse_thread_counts

    try:
        return parse_thread_counts(text)
    except TernkitError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--threads takes ")) from None
