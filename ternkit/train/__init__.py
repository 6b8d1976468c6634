"""STE training in the numpy reference: hand-written gradients, AdamW, schedules, the stdlib byte
corpus, the training loop with exact resume, and the parity / distillation experiments."""

from ternkit.train.network import PRECISIONS, TrainModel

__all__ = ["PRECISIONS", "TrainModel"]
