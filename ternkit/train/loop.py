"""The training loop: batches, STE forward/backward, clipping, AdamW, schedules, validation, checkpoints,
exact resume, and (optionally) logits distillation from a teacher checkpoint.

Checkpoints are ternkit checkpoints (`ternkit.graph.checkpoint.save_checkpoint`): the latent float32
parameters, the model config, `extra` = AdamW moments (`optim.m.<param>`, `optim.v.<param>`), and
`meta["train"]` = precision, step, optimizer step count, the training config and the loss history. The
data position is the step itself (batches are a pure function of seed and step), so `--resume` only
needs `meta["train"]["step"]` to continue bit-identically.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ternkit.blas import single_threaded_blas
from ternkit.errors import Interrupted, TernkitError
from ternkit.graph.checkpoint import read_checkpoint, save_checkpoint
from ternkit.graph.modelgraph import ModelGraph, build_graph, init_params
from ternkit.outputs import check_file, record
from ternkit.train import ops
from ternkit.train.config import TrainConfig
from ternkit.train.data import Corpus, load_corpus
from ternkit.train.network import TrainModel
from ternkit.train.optim import AdamW, clip_by_global_norm
from ternkit.train.relation import relation_kl, relation_nodes

LAST = "last.safetensors"
FINAL = "final.safetensors"


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]
    step: int
    val_loss: float
    history: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None

    @property
    def bits_per_byte(self) -> float:
        return self.val_loss / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.val_loss)


def training_precision(meta: dict, model: ModelGraph) -> str:
    """A checkpoint's training precision: `meta["train"]["precision"]`, else the model's weight mode."""
    return (meta.get("train") or {}).get("precision", model.config.weights)


def load_trained(path: str | Path) -> tuple[TrainModel, dict[str, np.ndarray]]:
    """A checkpoint as (training model in its own precision, float32 latent params)."""
    model, meta, _ = read_checkpoint(path)
    params = model.require_params()
    if any(k.endswith(".weight_q") for k in params):
        raise TernkitError(f"{path}: holds already-quantized weights (weight_q); training and distillation "
                           "need latent float weights")
    return TrainModel(model, training_precision(meta, model)), {k: np.asarray(v, np.float32) for k, v in params.items()}


def evaluate(tm: TrainModel, params, corpus: Corpus, cfg: TrainConfig) -> float:
    """Mean validation cross-entropy (nats per byte) over fixed windows."""
    total = count = 0.0
    for x, y in corpus.val_batches(cfg.eval_windows, cfg.seq_len, cfg.batch):
        total += tm.loss(params, x, y) * y.size
        count += y.size
    return total / count


def _save(path: Path, tm: TrainModel, params, opt: AdamW, cfg: TrainConfig, step: int, history: list,
          val_loss: float | None) -> None:
    graph = build_graph(cfg.model)
    graph.set_params(params)
    meta = {"train": {"precision": cfg.precision, "step": step, "optimizer_step": opt.step_count,
                      "config": cfg.to_dict(), "history": history, "val_loss": val_loss}}
    path.parent.mkdir(parents=True, exist_ok=True)
    record(path)   # ternkit's file (`ternkit.outputs`): a later run may replace it, nothing else
    save_checkpoint(graph, path, meta=meta, extra=opt.state_arrays())


class _StopOnCtrlC:
    """While training: the first Ctrl-C (SIGINT) asks the loop to stop after the current step and save a
    checkpoint (a step interrupted half-way would leave the weights half-updated); a second stops at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):  # noqa: ANN001 - signal handler signature
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@single_threaded_blas()
def train(cfg: TrainConfig, *, resume: bool = False, stop_after: int | None = None, progress: bool = True,
          log=print) -> TrainResult:
    """Train to `cfg.steps` (or stop early after `stop_after` steps, saving a resumable checkpoint)."""
    corpus = load_corpus(cfg.max_bytes, cfg.val_every)
    graph = build_graph(cfg.model)
    tm = TrainModel(graph, cfg.precision)
    params = init_params(cfg.model, seed=cfg.seed)
    opt = AdamW(betas=cfg.optimizer.betas, eps=cfg.optimizer.eps)
    history: list[dict] = []
    start = 0
    last, final = cfg.checkpoint_dir / LAST, cfg.checkpoint_dir / FINAL
    # before the work: never replace a file ternkit did not write (a checkpoint --resume continues is one
    # it wrote: its embedded training config is checked below)
    for path in (final,) if resume else (last, final):
        check_file(path, "checkpoint.dir")
    if resume:
        if not last.is_file():
            raise TernkitError(f"{last}: nothing to resume (no checkpoint yet); run without --resume")
        model, meta, extra = read_checkpoint(last)
        info = meta.get("train") or {}
        if info.get("config", {}).get("model") != cfg.model.to_dict() or info.get("precision") != cfg.precision:
            raise TernkitError(f"{last}: was trained with a different model or precision than this config; "
                               "use a fresh checkpoint.dir")
        stored = model.require_params()
        params = {k: np.array(stored[k], dtype=np.float32) for k in params}  # canonical order
        opt.load_state(int(info["optimizer_step"]), extra)
        start, history = int(info["step"]), list(info.get("history", []))
        log(f"resuming {last} at step {start}/{cfg.steps}")

    teacher = None
    if cfg.distill:
        teacher = load_trained(cfg.distill.teacher)
        if teacher[0].graph.config.vocab_size != cfg.model.vocab_size:
            raise TernkitError(f"{cfg.distill.teacher}: teacher vocabulary {teacher[0].graph.config.vocab_size} "
                               f"differs from the student's {cfg.model.vocab_size}")
        t_layers = teacher[0].graph.config.n_layers
        if cfg.distill.attention_weight > 0 and not -t_layers <= cfg.distill.attention_layer < t_layers:
            raise TernkitError(f"{cfg.distill.teacher}: the teacher has {t_layers} layers, so "
                               f"distill.attention_layer {cfg.distill.attention_layer} does not exist in it")
        if cfg.distill.init_from_teacher and start == 0:
            t_params = teacher[1]
            bad = [k for k, v in params.items() if k not in t_params or t_params[k].shape != v.shape]
            if bad:
                raise TernkitError(f"{cfg.distill.teacher}: init_from_teacher needs the student's shapes, but "
                                   f"{bad[0]} is missing or differs; set distill.init_from_teacher: false")
            params = {k: t_params[k].copy() for k in params}

    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, unit="step", dynamic_ncols=True,
                   desc=f"{cfg.model.name}/{cfg.precision}{'+distill' if teacher else ''}")
    val_loss = next((h["val_loss"] for h in reversed(history) if "val_loss" in h), float("nan"))
    t0 = time.perf_counter()
    done = start
    with _StopOnCtrlC() as ctrl_c:
        for step in range(start, end):
            x, y = corpus.batch(step, cfg.batch, cfg.seq_len, cfg.seed)
            loss, grads = _step_grads(tm, params, x, y, cfg, teacher)
            if not math.isfinite(loss):
                raise TernkitError(f"training diverged at step {step + 1}: the loss is {loss}; lower optimizer.lr "
                                   "or grad_clip (the last good checkpoint is in checkpoint.dir)")
            gnorm = clip_by_global_norm(grads, cfg.optimizer.grad_clip)
            lr = cfg.schedule.lr_at(step, cfg.steps)
            wd = cfg.schedule.weight_decay_at(step, cfg.steps)
            opt.step(params, grads, lr, wd)
            done = step + 1
            row = {"step": done, "train_loss": loss, "lr": lr, "grad_norm": gnorm}
            if done % cfg.eval_interval == 0 or done == cfg.steps:
                val_loss = evaluate(tm, params, corpus, cfg)
                row["val_loss"] = val_loss
            history.append(row)
            if bar is not None:
                rate = (done - start) * cfg.tokens_per_step / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss:.3f}", val=f"{val_loss:.3f}" if math.isfinite(val_loss) else "-",
                                tok_s=f"{rate:,.0f}", refresh=False)
                bar.update(1)
            if ctrl_c.requested:
                break
            if done % cfg.checkpoint_interval == 0 and done < end:
                _save(last, tm, params, opt, cfg, done, history, val_loss)
    if bar is not None:
        bar.close()
    _save(last, tm, params, opt, cfg, done, history, val_loss)
    if ctrl_c.requested:
        raise Interrupted(f"stopped after step {done}/{cfg.steps}; saved {last} (continue with --resume)")
    ckpt = last
    if done == cfg.steps:
        ckpt = final
        _save(ckpt, tm, params, opt, cfg, done, history, val_loss)
    return TrainResult(params=params, step=done, val_loss=val_loss, history=history, checkpoint=ckpt)


def _step_grads(tm: TrainModel, params, x, y, cfg: TrainConfig, teacher) -> tuple[float, dict[str, np.ndarray]]:
    d = cfg.distill
    relations = teacher is not None and d.attention_weight > 0
    logits, tape = tm.forward(params, x, keep_outputs=relations)
    ce, dlogits = ops.cross_entropy(logits, y)
    if teacher is None:
        return ce, tm.backward(params, tape, dlogits)
    t_model, t_params = teacher
    t_logits, t_tape = t_model.forward(t_params, x, keep_outputs=relations)
    kl, dkl = ops.distill_kl(logits, t_logits, d.temperature)
    loss = d.ce_weight * ce + d.kl_weight * kl
    dlogits = dlogits.dtype.type(d.ce_weight) * dlogits + dkl.dtype.type(d.kl_weight) * dkl
    extra = {}
    if relations:
        s_layer = d.attention_layer % tm.graph.config.n_layers
        t_layer = d.attention_layer % t_model.graph.config.n_layers
        heads = d.relation_heads or tm.graph.config.layers[s_layer].attention.kv_heads
        for s_node, t_node in zip(relation_nodes(s_layer), relation_nodes(t_layer)):
            rl, g = relation_kl(tape.outputs[s_node], t_tape.outputs[t_node], heads)
            loss += d.attention_weight * rl
            extra[s_node] = g * g.dtype.type(d.attention_weight)
    return loss, tm.backward(params, tape, dlogits, extra)


def export_trained(src: str | Path, dst: str | Path) -> Path:
    """A slim copy of a training checkpoint for other tools: latent params + config, the training
    precision/step/validation loss in meta; no optimizer state and no loss history."""
    model, meta, _ = read_checkpoint(src)
    info = meta.get("train") or {}
    slim = {"train": {k: info[k] for k in ("precision", "step", "val_loss", "config") if k in info}}
    dst = Path(dst)
    save_checkpoint(model, dst, meta=slim)
    return dst
