"""Where ternkit writes, and what it may replace: one rule for every command.

ternkit replaces only what it wrote itself. Every folder it writes into gets a `.ternkit-manifest`
naming the files ternkit wrote there (plus the files its generated Makefile builds). An existing file
is overwritten only when that manifest names it; `--force` replaces an output folder only when the
manifest names every entry in it. The root folder, the home folder and the current directory (or a
folder holding one of them) are never replaced. The checks run before any work (`check_*`), so a
refusal costs nothing and leaves nothing behind, and again when writing (`write_*`); every write goes
to a temporary name first and is renamed into place, so nothing is ever half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ternkit.errors import TernkitError

MANIFEST = ".ternkit-manifest"
_HEADER = "# written by ternkit: the files it wrote in this folder; it replaces these and nothing else\n"


class OutputError(TernkitError):
    """An output path ternkit must not or cannot write."""


def _absolute(path: str | Path) -> Path:
    """The path with its folder resolved (symlinks, `..`), the last component kept as given."""
    path = Path(path).expanduser()
    return (path.parent.resolve() / path.name) if path.name else path.resolve()


def manifest_names(folder: Path) -> set[str]:
    """Names ternkit recorded as written in `folder` (empty when it has no manifest)."""
    try:
        text = (folder / MANIFEST).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except OSError as exc:
        raise OutputError(f"{folder / MANIFEST}: cannot read it ({exc.strerror})") from None
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def record(path: Path) -> None:
    """Add `path` to its folder's manifest. Called before the file is renamed into place, so a kill in
    between never leaves a file ternkit wrote unrecorded."""
    folder = Path(path).parent
    names = manifest_names(folder)
    new = names | {Path(path).name}
    if new != names:
        _write_manifest(folder, new)


def _write_manifest(folder: Path, names: set[str]) -> None:
    write_atomic(folder / MANIFEST, (_HEADER + "".join(f"{n}\n" for n in sorted(names))).encode())


def _protected(path: Path) -> str | None:
    """Why `path` must never be replaced as a whole, or None."""
    for what, folder in (("the root folder", Path("/")), ("your home folder", Path.home()),
                         ("the current directory", Path.cwd())):
        folder = folder.resolve()
        if folder == path:
            return f"it is {what}"
        if folder.is_relative_to(path):
            return f"it holds {what}"
    return None


def _check_writable(path: Path, flag: str) -> None:
    """Can a file be created in `path`'s folder (made if missing)? Tried with a real temporary file in the
    nearest existing ancestor, which also catches read-only file systems where root's access() says yes."""
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{flag} {path}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ternkit-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot write in {folder} ({exc.strerror}); choose a writable "
                          "location") from None


def check_file(path: str | Path, flag: str = "output") -> Path:
    """Before the work: may ternkit write the file `path`? Returns it absolute; raises OutputError if not."""
    path = _absolute(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() and path.name not in manifest_names(path.parent):
        raise OutputError(f"{flag} {path}: exists and ternkit did not write it (no {MANIFEST} beside it names "
                          "it); move it away or choose another name")
    _check_writable(path, flag)
    return path


def write_file(path: str | Path, content: str | bytes, flag: str = "output") -> Path:
    """Write one file atomically under the rule above and record it in its folder's manifest."""
    path = check_file(path, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    record(path)
    write_atomic(path, content.encode() if isinstance(content, str) else content)
    return path


@contextmanager
def atomic_path(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """A fresh temporary name beside `path` for the block to write; renamed onto `path` when the block
    succeeds, removed when it fails. The one way ternkit replaces a file (outputs, checkpoints, caches):
    readers and concurrent writers see the old file or the whole new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """`data` as the whole content of `path`, through `atomic_path` (no manifest check: see write_file)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def check_folder(out: str | Path, force: bool, flag: str = "-o") -> Path:
    """Before the work: may ternkit (re)place the folder `out` with one it writes? Returns it absolute."""
    out = _absolute(out)
    why = _protected(out.resolve())   # through symlinks too: a link to the current directory is it
    if why:
        raise OutputError(f"{flag} {out}: refusing to write a whole output folder there: {why}; give a new "
                          "sub-folder such as out/")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{flag} {out}: exists and is not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if entries and not force:
        raise OutputError(f"{flag} {out}: is not empty; choose an empty folder, or pass --force to replace "
                          "what ternkit wrote there")
    if entries:
        ours = manifest_names(out) | {MANIFEST}
        foreign = [n for n in entries if n not in ours]
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise OutputError(f"{flag} {out}: refusing --force: it holds {shown}, which ternkit did not write; "
                              "move them away or choose another folder")
    _check_writable(out, flag)
    return out


def write_folder(files: dict[str, str | bytes], out: str | Path, force: bool, flag: str = "-o",
                 built: tuple[str, ...] = ()) -> Path:
    """Write `files` as the folder `out`: all of it into a temporary sibling, then renamed into place, so
    it is never half-written. `built` names the files the folder's Makefile makes (recorded, so that a
    later --force may replace them too)."""
    out = check_folder(out, force, flag)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, content in files.items():
            (tmp / name).write_bytes(content.encode() if isinstance(content, str) else content)
        _write_manifest(tmp, {*files, *built})
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)   # only ternkit's own files: check_folder made sure
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
