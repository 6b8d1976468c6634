"""Learning-rate and weight-decay schedules, as pure functions of the step (so resuming is exact).

- `cosine`: linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio`; weight decay constant.
- `constant`: warm-up, then flat.
- `two_stage` (BitNet b1.58 2B4T report, 1.5e-3 -> 8e-4 then 5e-4 -> 0): stage 1 (the first
  `stage1_fraction` of the steps) warms up and decays linearly from `lr` to `lr * stage1_end_ratio` at
  a high rate; at the boundary the rate drops ("cooldown") to `lr * stage2_ratio` and decays by cosine
  to `lr * min_lr_ratio`. Weight decay
  follows a cosine from `weight_decay` to 0 over stage 1 and is off (0) in stage 2.
"""

from __future__ import annotations

import math

from ternkit.schema import NonNegativeInt, Section, number, one_of, section

SCHEDULES = ("cosine", "constant", "two_stage")


@section
class ScheduleSpec(Section):
    """The `schedule:` section of a training config (the rates come from `optimizer:`)."""

    kind: one_of(*SCHEDULES) = "cosine"
    warmup: NonNegativeInt = 0
    min_lr_ratio: number(hi=1.0) = 0.1
    stage1_fraction: number(lo_ok=False, hi=1.0) = 0.5
    stage1_end_ratio: number(hi=1.0) = 8 / 15  # 2B4T: 1.5e-3 -> 8e-4 in stage 1
    stage2_ratio: number(hi=1.0) = 1 / 3  # 2B4T: stage 2 starts at 5e-4


@section(kw_only=True)
class Schedule(ScheduleSpec):
    lr: float
    weight_decay: float

    def _cos(self, frac: float, hi: float, lo: float) -> float:
        frac = min(max(frac, 0.0), 1.0)
        return lo + (hi - lo) * 0.5 * (1 + math.cos(math.pi * frac))

    def lr_at(self, step: int, total: int) -> float:
        """Learning rate of update `step` (0-based) out of `total`."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.kind == "constant":
            return self.lr
        if self.kind == "cosine":
            return self._cos((step - self.warmup) / max(1, total - 1 - self.warmup), self.lr, self.lr * self.min_lr_ratio)
        boundary = self._boundary(total)
        if step < boundary:
            frac = (step - self.warmup) / max(1, boundary - self.warmup)
            return self.lr + (self.lr * self.stage1_end_ratio - self.lr) * frac
        return self._cos((step - boundary) / max(1, total - 1 - boundary), self.lr * self.stage2_ratio,
                         self.lr * self.min_lr_ratio)

    def weight_decay_at(self, step: int, total: int) -> float:
        if self.kind != "two_stage":
            return self.weight_decay
        boundary = self._boundary(total)
        return self._cos(step / max(1, boundary), self.weight_decay, 0.0) if step < boundary else 0.0

    def _boundary(self, total: int) -> int:
        return max(self.warmup, int(round(total * self.stage1_fraction)))
