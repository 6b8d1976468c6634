"""AdamW with decoupled weight decay and global max-norm gradient clipping.

Weight decay applies to the BitLinear latent weights and an untied LM head (2-D matrices), never to
norm gains or the embedding table (which is also the LM head when tied).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def decays(name: str, param: np.ndarray) -> bool:
    return param.ndim == 2 and not name.startswith("embed.")


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale gradients in place so their global L2 norm is at most `max_norm`; returns the norm before."""
    # sorted order: the sum must not depend on dict order (a resumed run loads params in file order)
    norm = float(np.sqrt(sum(float(np.sum(np.square(grads[k], dtype=np.float64))) for k in sorted(grads))))
    if max_norm and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= g.dtype.type(scale)
    return norm


@dataclass
class AdamW:
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    step_count: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float, weight_decay: float) -> None:
        """One in-place update: p -= lr * (m̂ / (sqrt(v̂) + eps) + wd * p) (decay only where `decays`)."""
        b1, b2 = self.betas
        self.step_count += 1
        c1 = 1 - b1 ** self.step_count
        c2 = 1 - b2 ** self.step_count
        for name, p in params.items():
            g = grads[name]
            if name not in self.m:
                self.m[name] = np.zeros_like(p)
                self.v[name] = np.zeros_like(p)
            m, v = self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            if weight_decay and decays(name, p):
                p -= p.dtype.type(lr * weight_decay) * p
            p -= p.dtype.type(lr) * (m / c1) / (np.sqrt(v / c2) + p.dtype.type(self.eps))

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {f"optim.m.{k}": a for k, a in self.m.items()}
        out.update({f"optim.v.{k}": a for k, a in self.v.items()})
        return out

    def load_state(self, step_count: int, arrays: dict[str, np.ndarray]) -> None:
        self.step_count = step_count
        self.m = {k.removeprefix("optim.m."): a.copy() for k, a in arrays.items() if k.startswith("optim.m.")}
        self.v = {k.removeprefix("optim.v."): a.copy() for k, a in arrays.items() if k.startswith("optim.v.")}
