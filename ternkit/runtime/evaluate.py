"""Perplexity of a model on a token sequence, through any integer core (compiled kernels or numpy).

The sequence is cut into windows of `seq_len` tokens that overlap by one token, so every token after the
first is predicted exactly once, from the up to `seq_len - 1` tokens before it in its window. Each window
is one `reference.forward`; the loss of a window is summed in float64 from its float32 logits
(log-sum-exp minus the target's logit). With exact kernels the logits are bit-identical to the numpy
reference's (every float step is shared, only `y_int` comes from C), so the perplexity is too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import ModelGraph
from ternkit.reference.forward import IntegerCore, forward, reference_core
from ternkit.runtime.tokenizer import ByteTokenizer


@dataclass
class Perplexity:
    tokens: int        # tokens predicted
    nats: float        # summed negative log-likelihood
    text_bytes: int    # bytes of the predicted text (all but the first token's; == tokens for bytes)
    windows: int
    seq_len: int

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    @property
    def nats_per_byte(self) -> float:
        return self.nats / self.text_bytes

    @property
    def bits_per_byte(self) -> float:
        return self.nats_per_byte / math.log(2)


def window_nats(logits: np.ndarray, targets: np.ndarray) -> float:
    """Summed cross-entropy (nats) of float32 logits [T, V] against targets [T], in float64."""
    z = logits.astype(np.float64)
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.sum(lse - z[np.arange(targets.size), targets]))


def perplexity(model: ModelGraph, ids, *, seq_len: int | None = None, core: IntegerCore = reference_core,
               text_bytes: int | None = None, on_window: Callable[[int, int], None] | None = None) -> Perplexity:
    """Perplexity of `ids` (1-D ints); `text_bytes`: bytes of the predicted text, for nats/byte (default:
    one a token). `on_window(done, total)` reports progress."""
    ids = np.asarray(ids, dtype=np.int64)
    cfg = model.config
    seq_len = seq_len or cfg.max_seq
    if not 2 <= seq_len <= cfg.max_seq:
        raise TernkitError(f"--seq-len must be in [2, {cfg.max_seq}] (the model's max_seq), got {seq_len}")
    if ids.size < 2:
        raise TernkitError(f"need at least 2 tokens of text to evaluate, got {ids.size}")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        raise TernkitError(f"token ids must be in [0, {cfg.vocab_size}) for model {cfg.name!r}")
    starts = list(range(0, ids.size - 1, seq_len - 1))
    total = 0.0
    for i, s in enumerate(starts):
        window = ids[s:s + seq_len]
        total += window_nats(forward(model, window[:-1], core=core), window[1:])
        if on_window is not None:
            on_window(i + 1, len(starts))
    return Perplexity(int(ids.size - 1), total, text_bytes if text_bytes is not None else int(ids.size - 1),
                      len(starts), seq_len)


@dataclass(frozen=True)
class EvalText:
    ids: np.ndarray
    text_bytes: int       # bytes of the text the ids cover
    predicted_bytes: int  # the same less the first token's (it is context, never predicted)
    source: str           # what it is, for the report

    def head(self, n: int, tokenizer) -> "EvalText":
        """The first `n` tokens."""
        if self.ids.size <= n:
            return self
        return _text(self.ids[:n], None, tokenizer, f"{self.source}, first {n:,} tokens")


def _bytes_of(ids, tokenizer) -> int:
    return len(ids) if isinstance(tokenizer, ByteTokenizer) else len(tokenizer.decode(list(ids)).encode())


def _text(ids: np.ndarray, size: int | None, tokenizer, source: str) -> EvalText:
    size = _bytes_of(ids.tolist(), tokenizer) if size is None else size
    return EvalText(ids, size, size - _bytes_of(ids[:1].tolist(), tokenizer), source)


def _encode(raw: bytes, tokenizer) -> np.ndarray:
    if isinstance(tokenizer, ByteTokenizer):   # the bytes themselves, even where they are not UTF-8
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    return np.asarray(tokenizer.encode(raw.decode("utf-8", errors="replace")), dtype=np.int64)


def training_config(checkpoint: str | Path) -> dict:
    """The training config a ternkit checkpoint records (`meta["train"]["config"]`), else {}."""
    from ternkit.graph.checkpoint import _is_ternkit_safetensors, read_checkpoint

    path = Path(str(checkpoint))
    if path.suffix not in (".npz", ".safetensors") or not path.is_file():
        return {}
    if path.suffix == ".safetensors" and not _is_ternkit_safetensors(path):
        return {}
    return (read_checkpoint(path)[1].get("train") or {}).get("config") or {}


def heldout_text(tokenizer, train_config: dict | None = None) -> EvalText:
    """The held-out (validation) split of the standard-library byte corpus, split as the training run
    split it (its `data` settings when the checkpoint records them, the defaults otherwise)."""
    from ternkit.train.data import load_corpus

    data = (train_config or {}).get("data") or {}
    max_bytes, val_every = int(data.get("max_bytes", 4_000_000)), int(data.get("val_every", 10))
    raw = load_corpus(max_bytes, val_every).val.tobytes()
    return _text(_encode(raw, tokenizer), len(raw), tokenizer,
                 f"held-out split of the stdlib corpus (every {val_every}th file of the first {max_bytes:,} bytes)")


def file_text(path: str | Path, tokenizer) -> EvalText:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TernkitError(f"{path}: cannot read the text file ({exc.strerror})") from None
    return _text(_encode(raw, tokenizer), len(raw), tokenizer, str(path))


def evaluate_text_model(tm, text: EvalText, *, seq_len: int | None = None, train_config: dict | None = None,
                        check: bool = False, on_window: Callable[[str, int, int], None] | None = None
                        ) -> tuple[Perplexity, Perplexity | None]:
    """Perplexity of `text` through the text model's core (a `TextModel`), and with `check` through the
    numpy reference as well. `seq_len` defaults to the training run's, else the model's max_seq."""
    from ternkit.blas import single_threaded_blas

    max_seq = tm.model.config.max_seq
    seq_len = seq_len or min(((train_config or {}).get("train") or {}).get("seq_len") or max_seq, max_seq)

    def run(name: str, core) -> Perplexity:
        report = (lambda done, total: on_window(name, done, total)) if on_window else None
        return perplexity(tm.model, text.ids, seq_len=seq_len, core=core, text_bytes=text.predicted_bytes,
                          on_window=report)

    with single_threaded_blas():
        got = run(tm.engine, tm.core)
        ref = run("numpy reference", reference_core) if check and tm.core is not reference_core else None
    return got, ref
