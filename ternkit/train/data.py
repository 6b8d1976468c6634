"""The training corpus: this machine's Python standard library sources, as bytes (vocabulary 256).

No download: the `.py` files under `sysconfig.get_paths()["stdlib"]` (skipping `site-packages` and the
`test`, `tests`, `idlelib`, `turtledemo` and `encodings` (codec tables) folders), sorted by relative path, read until `max_bytes`, each
file followed by a NUL byte as a separator. Split by file, deterministically: every `val_every`-th
file (index in the sorted list) is validation, the rest training. Training batches are random windows
drawn from a generator seeded by `(seed, step)`, so a batch is a pure function of the step and resuming
needs only the step number. Validation uses fixed, evenly spaced windows.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ternkit.errors import TernkitError

SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "encodings", "__pycache__"}


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path | None = None) -> list[Path]:
    root = root or stdlib_dir()
    files = [p for p in root.rglob("*.py") if not SKIP_DIRS.intersection(p.relative_to(root).parts[:-1])]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


@dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # uint8 bytes
    val: np.ndarray
    n_files: int

    def batch(self, step: int, batch: int, seq_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) int64 [batch, seq_len] for training step `step`."""
        rng = np.random.default_rng([seed, step])
        starts = rng.integers(0, self.train.size - seq_len - 1, size=batch)
        win = np.stack([self.train[s:s + seq_len + 1] for s in starts]).astype(np.int64)
        return win[:, :-1], win[:, 1:]

    def val_batches(self, n_windows: int, seq_len: int, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        starts = np.linspace(0, self.val.size - seq_len - 1, n_windows).astype(np.int64)
        win = np.stack([self.val[s:s + seq_len + 1] for s in starts]).astype(np.int64)
        return [(win[i:i + batch, :-1], win[i:i + batch, 1:]) for i in range(0, n_windows, batch)]


@lru_cache(maxsize=4)
def load_corpus(max_bytes: int = 4_000_000, val_every: int = 10, root: str | None = None) -> Corpus:
    base = Path(root) if root else stdlib_dir()
    files = stdlib_files(base)
    if not files:
        raise TernkitError(f"{base}: no Python sources found for the training corpus; "
                           "set data.root to a folder with .py files")
    train: list[bytes] = []
    val: list[bytes] = []
    total = 0
    used = 0
    for i, path in enumerate(files):
        if total >= max_bytes:
            break
        used += 1
        chunk = path.read_bytes() + b"\0"
        (val if i % val_every == 0 else train).append(chunk)
        total += len(chunk)
    tr = np.frombuffer(b"".join(train), dtype=np.uint8)
    va = np.frombuffer(b"".join(val), dtype=np.uint8)
    if tr.size < 1024 or va.size < 1024:
        raise TernkitError(f"{base}: corpus too small ({tr.size} train / {va.size} validation bytes); "
                           "raise data.max_bytes")
    return Corpus(tr, va, used)
