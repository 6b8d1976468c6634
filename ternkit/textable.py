"""Plain-text tables for the terminal: one formatter for every command and report."""

from __future__ import annotations

from typing import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, right_from: int | None = None,
          rule: bool = False) -> str:
    """Columns padded to their widest cell, two spaces apart, trailing spaces removed. Columns from
    index `right_from` on are right-aligned (numbers); `rule` puts a dashed line under the header."""
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if right_from is not None and i >= right_from else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    lines = [line(r) for r in cells]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
