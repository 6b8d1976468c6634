"""The training config (`ternkit train CONFIG.yaml`): dataclasses and validation with path-named errors.

```yaml
model: tiny                 # built-in name, path to a model YAML (relative to this file), or an inline spec
precision: ternary          # ternary (b1.58) | binary (v1) | fp32 (no quantization)
seed: 0
data: {max_bytes: 4000000, val_every: 10}
train: {steps: 1000, batch: 8, seq_len: 128}      # or `tokens: N` instead of `steps`
optimizer: {lr: 0.003, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0.1, grad_clip: 1.0}
schedule: {kind: cosine, warmup: 50, min_lr_ratio: 0.1}  # or two_stage (+ stage1_fraction, ...)
eval: {interval: 100, windows: 32}
checkpoint: {dir: runs/tiny-ternary, interval: 200}
distill: {teacher: runs/fp32/final.safetensors, temperature: 2.0, kl_weight: 1.0, ce_weight: 1.0,
          init_from_teacher: false, attention_weight: 0.0, attention_layer: -1}
```
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


from ternkit.errors import ConfigError, TernkitError
from ternkit.graph.builtin import builtin_config
from ternkit.graph.config import ModelConfig, _Reader, config_from_dict, load_config
from ternkit.train.network import PRECISIONS
from ternkit.train.schedule import SCHEDULES, Schedule
from ternkit.yamlio import read_yaml


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0


@dataclass(frozen=True)
class DistillConfig:
    teacher: str
    temperature: float = 2.0
    kl_weight: float = 1.0
    ce_weight: float = 1.0
    init_from_teacher: bool = False  # BitDistill-style: the student's latent weights start as the teacher's
    attention_weight: float = 0.0    # weight of the Q/K/V attention-relation KL (0 = off)
    attention_layer: int = -1        # which layer's relations to distil (negative counts from the end)
    relation_heads: int | None = None  # relation heads; default: the student layer's kv_heads


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    precision: str = "ternary"
    seed: int = 0
    steps: int = 1000
    batch: int = 8
    seq_len: int = 128
    optimizer: OptimConfig = field(default_factory=OptimConfig)
    schedule: Schedule = field(default_factory=Schedule)
    eval_interval: int = 100
    eval_windows: int = 32
    checkpoint_dir: Path = Path("runs/train")
    checkpoint_interval: int = 200
    max_bytes: int = 4_000_000
    val_every: int = 10
    distill: DistillConfig | None = None

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len

    def to_dict(self) -> dict[str, Any]:
        """A plain form for checkpoint meta (round-trips through `config_from_mapping`)."""
        s = asdict(self.schedule)
        lr = s.pop("lr")
        wd = s.pop("weight_decay")
        opt = asdict(self.optimizer)
        opt.update(lr=lr, weight_decay=wd, betas=list(opt["betas"]))
        return {
            "model": self.model.to_dict(), "precision": self.precision, "seed": self.seed,
            "data": {"max_bytes": self.max_bytes, "val_every": self.val_every},
            "train": {"steps": self.steps, "batch": self.batch, "seq_len": self.seq_len},
            "optimizer": opt, "schedule": s,
            "eval": {"interval": self.eval_interval, "windows": self.eval_windows},
            "checkpoint": {"dir": str(self.checkpoint_dir), "interval": self.checkpoint_interval},
            **({"distill": asdict(self.distill)} if self.distill else {}),
        }


_TOP = {"model", "precision", "seed", "data", "train", "optimizer", "schedule", "eval", "checkpoint", "distill"}


def _number(r: _Reader, d: dict, key: str, path: str, default: float, lo: float = 0.0, lo_ok: bool = True,
            hi: float | None = None) -> float:
    v = d.get(key, default)
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    ok = ok and (v >= lo if lo_ok else v > lo) and (hi is None or v <= hi)
    if not ok:
        rng = f"{'>=' if lo_ok else '>'} {lo}" + (f" and <= {hi}" if hi is not None else "")
        r.fail(f"{path}.{key}" if path else key, f"must be a number {rng}, got {v!r}")
        return default
    return float(v)


def _nonneg_int(r: _Reader, d: dict, key: str, path: str, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        r.fail(f"{path}.{key}" if path else key, f"must be a non-negative int, got {v!r}")
        return default
    return v


def _int(r: _Reader, d: dict, key: str, path: str, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        r.fail(f"{path}.{key}", f"must be an int, got {v!r}")
        return default
    return v


def _model(r: _Reader, spec: Any, base: Path) -> ModelConfig | None:
    try:
        if isinstance(spec, dict):
            return config_from_dict(spec, "model")
        if isinstance(spec, str) and spec:
            path = (base / spec) if not Path(spec).is_absolute() else Path(spec)
            if spec.endswith((".yaml", ".yml")):
                return load_config(path)
            return builtin_config(spec)
    except TernkitError as exc:
        r.fail("model", str(exc).replace("\n", " "))
        return None
    r.fail("model", f"must be a built-in model name, a model YAML path or an inline model spec, got {spec!r}")
    return None


def config_from_mapping(data: Any, source: str = "<dict>", base: Path | None = None) -> TrainConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the training config must be a YAML mapping")
    base = base or Path(".")
    r = _Reader()
    d = r.mapping(data, "", _TOP)
    model = _model(r, d.get("model", "tiny"), base)
    precision = r.choice(d, "precision", "", PRECISIONS, "ternary")
    seed = _nonneg_int(r, d, "seed", "", 0)
    data_ = r.mapping(d.get("data"), "data", {"max_bytes", "val_every"})
    max_bytes = r.pos_int(data_, "max_bytes", "data", 4_000_000)
    val_every = r.pos_int(data_, "val_every", "data", 10)
    if val_every == 1:
        r.fail("data.val_every", "must be at least 2 (1 would leave no training files)")
    tr = r.mapping(d.get("train"), "train", {"steps", "tokens", "batch", "seq_len"})
    batch = r.pos_int(tr, "batch", "train", 8)
    seq_len = r.pos_int(tr, "seq_len", "train", 128)
    if "steps" in tr and "tokens" in tr:
        r.fail("train", "give either steps or tokens, not both")
    steps = r.pos_int(tr, "steps", "train", 1000)
    if "tokens" in tr:
        tokens = r.pos_int(tr, "tokens", "train")
        if tokens and batch and seq_len:
            steps = max(1, math.ceil(tokens / (batch * seq_len)))
    if model and seq_len and seq_len > model.max_seq:
        r.fail("train.seq_len", f"must be <= the model's max_seq ({model.max_seq}), got {seq_len}")
    o = r.mapping(d.get("optimizer"), "optimizer", {"lr", "betas", "eps", "weight_decay", "grad_clip"})
    lr = _number(r, o, "lr", "optimizer", 3e-3, lo_ok=False)
    betas = o.get("betas", [0.9, 0.95])
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        r.fail("optimizer.betas", f"must be two numbers in [0, 1), got {betas!r}")
        betas = [0.9, 0.95]
    optim = OptimConfig(lr=lr, betas=(float(betas[0]), float(betas[1])),
                        eps=_number(r, o, "eps", "optimizer", 1e-8, lo_ok=False),
                        weight_decay=_number(r, o, "weight_decay", "optimizer", 0.1),
                        grad_clip=_number(r, o, "grad_clip", "optimizer", 1.0))
    s = r.mapping(d.get("schedule"), "schedule", {"kind", "warmup", "min_lr_ratio", "stage1_fraction",
                                                   "stage1_end_ratio", "stage2_ratio"})
    sched = Schedule(kind=r.choice(s, "kind", "schedule", SCHEDULES, "cosine"), lr=lr,
                     warmup=_nonneg_int(r, s, "warmup", "schedule", 0),
                     min_lr_ratio=_number(r, s, "min_lr_ratio", "schedule", 0.1, hi=1.0),
                     weight_decay=optim.weight_decay,
                     stage1_fraction=_number(r, s, "stage1_fraction", "schedule", 0.5, lo_ok=False, hi=1.0),
                     stage1_end_ratio=_number(r, s, "stage1_end_ratio", "schedule", 8 / 15, hi=1.0),
                     stage2_ratio=_number(r, s, "stage2_ratio", "schedule", 1 / 3, hi=1.0))
    e = r.mapping(d.get("eval"), "eval", {"interval", "windows"})
    c = r.mapping(d.get("checkpoint"), "checkpoint", {"dir", "interval"})
    eval_interval = r.pos_int(e, "interval", "eval", 100)
    eval_windows = r.pos_int(e, "windows", "eval", 32)
    ck_interval = r.pos_int(c, "interval", "checkpoint", 200)
    ckdir = c.get("dir", "runs/train")
    if not isinstance(ckdir, str) or not ckdir:
        r.fail("checkpoint.dir", f"must be a folder path, got {ckdir!r}")
        ckdir = "runs/train"
    distill = None
    if "distill" in d:
        ds = r.mapping(d.get("distill"), "distill", {"teacher", "temperature", "kl_weight", "ce_weight",
                                                         "init_from_teacher", "attention_weight",
                                                         "attention_layer", "relation_heads"})
        teacher = ds.get("teacher")
        if not isinstance(teacher, str) or not teacher:
            r.fail("distill.teacher", f"must be the path of a teacher checkpoint, got {teacher!r}")
        else:
            distill = DistillConfig(teacher=str(base / teacher if not Path(teacher).is_absolute() else teacher),
                                    temperature=_number(r, ds, "temperature", "distill", 2.0, lo_ok=False),
                                    kl_weight=_number(r, ds, "kl_weight", "distill", 1.0),
                                    ce_weight=_number(r, ds, "ce_weight", "distill", 1.0),
                                    init_from_teacher=r.boolean(ds, "init_from_teacher", "distill", False),
                                    attention_weight=_number(r, ds, "attention_weight", "distill", 0.0),
                                    attention_layer=_int(r, ds, "attention_layer", "distill", -1),
                                    relation_heads=r.pos_int(ds, "relation_heads", "distill", None))
            n_layers = model.n_layers if model else 1
            if not -n_layers <= distill.attention_layer < n_layers:
                r.fail("distill.attention_layer", f"must be in [{-n_layers}, {n_layers - 1}], "
                       f"got {distill.attention_layer}")
    if r.errors:
        raise ConfigError(f"{source}: invalid training config:\n  " + "\n  ".join(r.errors))
    if precision != "fp32":
        model = replace(model, weights=precision)
    return TrainConfig(model=model, precision=precision, seed=seed, steps=steps, batch=batch, seq_len=seq_len,
                       optimizer=optim, schedule=sched,
                       eval_interval=eval_interval, eval_windows=eval_windows,
                       checkpoint_dir=Path(ckdir) if Path(ckdir).is_absolute() else base / ckdir,
                       checkpoint_interval=ck_interval,
                       max_bytes=max_bytes, val_every=val_every, distill=distill)


def load_train_config(path: str | Path) -> TrainConfig:
    data = read_yaml(path, "training config")
    # relative paths in the file (model YAML, checkpoint dir, teacher) resolve against the working directory
    return config_from_mapping(data, str(path))
