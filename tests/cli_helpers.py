"""Helpers for tests of what a user sees: one-line errors, folders left untouched, unwritable places."""

from pathlib import Path

import pytest

from ternkit.cli import main


def run_cli(argv: list[str]) -> int:
    """`main(argv)`'s exit code, also for argparse's own errors (which exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ternkit") and ": error: " in err, err
    for w in words:
        assert w in err, err
    return err


def unwritable(tmp_path: Path) -> Path:
    """A folder nobody can create files in: read-only permissions, or (as root, who ignores them) /sys."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for folder in (ro, Path("/sys")):
        try:
            (folder / ".ternkit-test").touch()
            (folder / ".ternkit-test").unlink()
        except OSError:
            return folder
    pytest.skip("no unwritable folder on this machine (root with a writable /sys)")
