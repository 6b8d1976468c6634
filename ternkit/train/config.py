"""The training config (`ternkit train CONFIG.yaml`): a pydantic schema whose fields carry the defaults,
checked with path-named errors, and the flat `TrainConfig` the loop reads.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from ternkit.errors import ConfigError, TernkitError
from ternkit.graph.builtin import builtin_config
from ternkit.graph.config import ModelConfig, config_from_dict, load_config
from ternkit.schema import (Bool, Int, NonNegativeInt, OptionalPositiveInt, PositiveInt, Section, checked, nonempty,
                            number, one_of, problem, section, validate)
from ternkit.train.network import PRECISIONS
from ternkit.train.schedule import Schedule, ScheduleSpec
from ternkit.yamlio import read_yaml


def _betas(v: Any) -> tuple[float, float]:
    if (not isinstance(v, (list, tuple)) or len(v) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in v)):
        raise ValueError(f"must be two numbers in [0, 1), got {v!r}")
    return float(v[0]), float(v[1])


@section
class OptimConfig(Section):
    lr: number(lo_ok=False) = 3e-3
    betas: checked(_betas, tuple) = (0.9, 0.95)
    eps: number(lo_ok=False) = 1e-8
    weight_decay: number() = 0.1
    grad_clip: number() = 1.0


@section
class DistillConfig(Section):
    teacher: nonempty("the path of a teacher checkpoint")
    temperature: number(lo_ok=False) = 2.0
    kl_weight: number() = 1.0
    ce_weight: number() = 1.0
    init_from_teacher: Bool = False  # BitDistill-style: the student's latent weights start as the teacher's
    attention_weight: number() = 0.0  # weight of the Q/K/V attention-relation KL (0 = off)
    attention_layer: Int = -1         # which layer's relations to distil (negative counts from the end)
    relation_heads: OptionalPositiveInt = None  # relation heads; default: the student layer's kv_heads


@section
class DataSpec(Section):
    max_bytes: PositiveInt = 4_000_000
    val_every: PositiveInt = 10       # every n-th file is held out for validation

    @field_validator("val_every")
    @classmethod
    def _leaves_training_files(cls, val_every: int) -> int:
        if val_every == 1:
            raise problem("", "must be at least 2 (1 would leave no training files)")
        return val_every


@section
class StepsSpec(Section):
    """The `train:` section: how long, in steps or in a token budget."""

    steps: PositiveInt = 1000
    tokens: OptionalPositiveInt = None   # instead of steps: steps = ceil(tokens / (batch * seq_len))
    batch: PositiveInt = 8
    seq_len: PositiveInt = 128

    @classmethod
    def prepare(cls, data: dict) -> dict:
        if "steps" in data and "tokens" in data:
            raise problem("", "give either steps or tokens, not both")
        return data

    @property
    def total_steps(self) -> int:
        return self.steps if self.tokens is None else max(1, math.ceil(self.tokens / (self.batch * self.seq_len)))


@section
class EvalSpec(Section):
    interval: PositiveInt = 100
    windows: PositiveInt = 32


@section
class CheckpointSpec(Section):
    dir: nonempty("a folder path") = "runs/train"
    interval: PositiveInt = 200


@section
class TrainSpec(Section):
    """The YAML file, section by section."""

    model: Any = Field("tiny", validate_default=True)   # resolved to a ModelConfig by `_model`
    precision: one_of(*PRECISIONS) = "ternary"
    seed: NonNegativeInt = 0
    data: DataSpec = DataSpec()
    train: StepsSpec = StepsSpec()
    optimizer: OptimConfig = OptimConfig()
    schedule: ScheduleSpec = ScheduleSpec()
    eval: EvalSpec = EvalSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    distill: DistillConfig = None     # absent: no distillation

    @field_validator("model", mode="plain")
    @classmethod
    def _model(cls, spec: Any, info: ValidationInfo) -> ModelConfig:
        """A built-in name, a model YAML (relative to the config's folder) or an inline spec."""
        try:
            if isinstance(spec, dict):
                return config_from_dict(spec, "model")
            if isinstance(spec, str) and spec:
                path = Path(spec) if Path(spec).is_absolute() else info.context["base"] / spec
                return load_config(path) if spec.endswith((".yaml", ".yml")) else builtin_config(spec)
        except TernkitError as exc:
            raise problem("", str(exc).replace("\n", " ")) from None
        raise problem("", f"must be a built-in model name, a model YAML path or an inline model spec, got {spec!r}")

    @field_validator("train")
    @classmethod
    def _fits_the_model(cls, run: StepsSpec, info: ValidationInfo) -> StepsSpec:
        model = info.data.get("model")
        if model and run.seq_len > model.max_seq:
            raise problem("seq_len", f"must be <= the model's max_seq ({model.max_seq}), got {run.seq_len}")
        return run

    @field_validator("distill")
    @classmethod
    def _a_student_layer(cls, distill: DistillConfig, info: ValidationInfo) -> DistillConfig:
        n_layers = info.data["model"].n_layers if "model" in info.data else 1
        if not -n_layers <= distill.attention_layer < n_layers:
            raise problem("attention_layer", f"must be in [{-n_layers}, {n_layers - 1}], got {distill.attention_layer}")
        return distill


@dataclass(frozen=True)
class TrainConfig:
    """What the training loop reads: the spec flattened, paths resolved, the schedule given its rates."""

    model: ModelConfig
    precision: str
    seed: int
    steps: int
    batch: int
    seq_len: int
    optimizer: OptimConfig
    schedule: Schedule
    eval_interval: int
    eval_windows: int
    checkpoint_dir: Path
    checkpoint_interval: int
    max_bytes: int
    val_every: int
    distill: DistillConfig | None

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


def config_from_mapping(data: Any, source: str = "<dict>", base: Path | None = None) -> TrainConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the training config must be a YAML mapping")
    base = base or Path(".")
    spec = validate(TrainSpec, data, f"{source}: invalid training config:\n  ", sep="\n  ", context={"base": base})

    def resolve(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else base / p

    model = spec.model if spec.precision == "fp32" else replace(spec.model, weights=spec.precision)
    distill = spec.distill and replace(spec.distill, teacher=str(resolve(spec.distill.teacher)))
    return TrainConfig(model=model, precision=spec.precision, seed=spec.seed, steps=spec.train.total_steps,
                       batch=spec.train.batch, seq_len=spec.train.seq_len, optimizer=spec.optimizer,
                       schedule=Schedule(**asdict(spec.schedule), lr=spec.optimizer.lr,
                                         weight_decay=spec.optimizer.weight_decay),
                       eval_interval=spec.eval.interval, eval_windows=spec.eval.windows,
                       checkpoint_dir=resolve(spec.checkpoint.dir), checkpoint_interval=spec.checkpoint.interval,
                       max_bytes=spec.data.max_bytes, val_every=spec.data.val_every, distill=distill)


def load_train_config(path: str | Path) -> TrainConfig:
    data = read_yaml(path, "training config")
    # relative paths in the file (model YAML, checkpoint dir, teacher) resolve against the working directory
    return config_from_mapping(data, str(path))
