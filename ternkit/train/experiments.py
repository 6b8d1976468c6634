"""Built-in experiments: `parity` (FP32 vs b1.58 ternary vs v1 binary on one token budget) and `distill`
(a ternary student from scratch vs distilled from a full-precision teacher on one budget).

Every run is an ordinary training run with its own checkpoint folder under the experiment's output
folder; a run whose `final.safetensors` already exists with the identical config is reused, not redone
(so `distill` after `parity` reuses the FP32 teacher and the from-scratch ternary student).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from ternkit.graph.checkpoint import read_checkpoint
from ternkit.graph.modelgraph import build_graph
from ternkit.train.config import DistillConfig, TrainConfig
from ternkit.train.loop import FINAL, TrainResult, train

EXPERIMENTS = ("parity", "distill")


@dataclass(frozen=True)
class Row:
    name: str
    result: TrainResult
    seconds: float | None

    def cells(self) -> list[str]:
        r = self.result
        t = "reused" if self.seconds is None else f"{self.seconds:.0f}"
        return [self.name, f"{r.val_loss:.4f}", f"{r.perplexity:.3f}", f"{r.bits_per_byte:.4f}", t]


def run_or_reuse(cfg: TrainConfig, progress: bool, log=print) -> Row:
    import time

    final = cfg.checkpoint_dir / FINAL
    if final.is_file():
        model, meta, _ = read_checkpoint(final)
        info = meta.get("train") or {}
        if info.get("config") == cfg.to_dict() and info.get("step") == cfg.steps:
            log(f"reusing {final}")
            res = TrainResult(params=model.params, step=cfg.steps, val_loss=float(info["val_loss"]),
                              history=info.get("history", []), checkpoint=final)
            return Row("", res, None)
    t0 = time.perf_counter()
    res = train(cfg, progress=progress, log=log)
    return Row("", res, time.perf_counter() - t0)


def table(rows: list[Row], title: str) -> str:
    head = ["run", "val loss (nats/byte)", "perplexity", "bits/byte", "train s"]
    lines = [f"{title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def parity(base: TrainConfig, out: Path, progress: bool = True, log=print) -> str:
    rows = []
    for precision in ("fp32", "ternary", "binary"):
        model = base.model if precision == "fp32" else replace(base.model, weights=precision)
        cfg = replace(base, precision=precision, model=model, checkpoint_dir=out / precision, distill=None)
        row = run_or_reuse(cfg, progress, log)
        rows.append(replace(row, name={"fp32": "FP32", "ternary": "b1.58 ternary", "binary": "v1 binary"}[precision]))
    n = build_graph(base.model).parameter_count()
    title = (f"parity: {base.model.name} ({n:,} params), {base.steps} steps x {base.tokens_per_step} tokens = "
             f"{base.steps * base.tokens_per_step:,} tokens each, seed {base.seed}")
    return table(rows, title)


def distill(base: TrainConfig, out: Path, progress: bool = True, log=print, teacher: str | None = None,
            temperature: float = 1.0, kl_weight: float = 1.0, ce_weight: float = 1.0,
            attention_weight: float = 1.0) -> str:
    rows = []
    fp_cfg = replace(base, precision="fp32", checkpoint_dir=out / "fp32", distill=None)
    if teacher is None:
        t_row = run_or_reuse(fp_cfg, progress, log)
        rows.append(replace(t_row, name="teacher: FP32"))
        teacher = str(t_row.result.checkpoint)
    else:
        model, meta, _ = read_checkpoint(teacher)
        info = meta.get("train") or {}
        res = TrainResult(params=model.params, step=int(info.get("step", 0)),
                          val_loss=float(info.get("val_loss", float("nan"))), checkpoint=Path(teacher))
        rows.append(Row(f"teacher: {info.get('precision', model.config.weights)} ({teacher})", res, None))
    student = replace(base, precision="ternary", model=replace(base.model, weights="ternary"))
    scratch = run_or_reuse(replace(student, checkpoint_dir=out / "ternary", distill=None), progress, log)
    rows.append(replace(scratch, name="ternary student, from scratch (CE)"))
    dcfg = DistillConfig(teacher=teacher, temperature=temperature, kl_weight=kl_weight, ce_weight=ce_weight)
    kd = run_or_reuse(replace(student, checkpoint_dir=out / f"ternary-distill-T{temperature:g}", distill=dcfg), progress, log)
    rows.append(replace(kd, name=f"ternary student, distilled (CE + {kl_weight:g}·T²·KL, T={temperature:g})"))
    ar = replace(dcfg, attention_weight=attention_weight)
    kd_ar = run_or_reuse(replace(student, checkpoint_dir=out / f"ternary-distill-ar-T{temperature:g}", distill=ar), progress, log)
    rows.append(replace(kd_ar, name=f"… + {attention_weight:g}·attention-relation KL (last layer, Q/K/V)"))
    init = run_or_reuse(replace(student, checkpoint_dir=out / f"ternary-distill-ar-init-T{temperature:g}",
                                distill=replace(ar, init_from_teacher=True)), progress, log)
    rows.append(replace(init, name="… + student initialised from the teacher's weights (BitDistill recipe)"))
    gain = scratch.result.val_loss - kd.result.val_loss
    title = (f"distill: {base.model.name}, {base.steps} steps x {base.tokens_per_step} tokens per run, "
             f"teacher {teacher}; distillation gain {gain:+.4f} nats/byte "
             f"({gain / math.log(2):+.4f} bits/byte)")
    return table(rows, title)


# The experiments' default base config: the built-in `tiny` shape (~434k params), ~6.1M tokens per run.
DEFAULT_EXPERIMENT = {
    "model": "tiny",
    "seed": 0,
    "data": {"max_bytes": 4_000_000, "val_every": 10},
    "train": {"steps": 3000, "batch": 16, "seq_len": 128},
    "optimizer": {"lr": 3.0e-3, "betas": [0.9, 0.95], "weight_decay": 0.1, "grad_clip": 1.0},
    "schedule": {"kind": "cosine", "warmup": 100, "min_lr_ratio": 0.1},
    "eval": {"interval": 250, "windows": 64},
    "checkpoint": {"interval": 500},
}
