"""Multi-head attention-relation distillation (MiniLM v2, as used by BitDistill).

For one layer, the Q, K and V projection outputs `A` ([B, T, C], before RoPE) of teacher and student
are each split into `heads` relation heads of width `d = C / heads`; the relation matrix of a head is
`R = softmax(A Aᵀ / √d)` over the positions a causal model may see (j ≤ i). The loss is the KL
divergence `KL(R_teacher || R_student)` averaged over batch, heads and rows, summed over Q, K and V.
Teacher and student may have different widths; only `heads` must divide both.
"""

from __future__ import annotations

import numpy as np

from ternkit.errors import TernkitError
from ternkit.graph.modelgraph import bitlinear_node


def _split(a: np.ndarray, heads: int) -> np.ndarray:
    b, t, c = a.shape
    if c % heads:
        raise TernkitError(f"distill.relation_heads ({heads}) must divide the projection width {c}")
    return a.reshape(b, t, heads, c // heads).transpose(0, 2, 1, 3)  # [B, R, T, d]


def _log_relations(a: np.ndarray) -> np.ndarray:
    t, d = a.shape[-2], a.shape[-1]
    s = (a @ a.transpose(0, 1, 3, 2)) / np.sqrt(d)
    s = np.where(np.triu(np.ones((t, t), dtype=bool), 1), -np.inf, s)
    s = s - s.max(axis=-1, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def relation_kl(student: np.ndarray, teacher: np.ndarray, heads: int) -> tuple[float, np.ndarray]:
    """(KL(R_t || R_s) averaged over rows, d loss / d student [B, T, C])."""
    a = _split(student.astype(np.float64), heads)
    ls = _log_relations(a)
    lt = _log_relations(_split(teacher.astype(np.float64), heads))
    pt, ps = np.exp(lt), np.exp(ls)
    rows = ls.shape[0] * ls.shape[1] * ls.shape[2]
    valid = np.isfinite(lt)
    loss = float(np.sum(pt * (np.where(valid, lt, 0.0) - np.where(valid, ls, 0.0)))) / rows
    ds = (ps - pt) / rows / np.sqrt(a.shape[-1])  # d loss / d (A Aᵀ), masked entries are 0 - 0
    da = (ds + ds.transpose(0, 1, 3, 2)) @ a
    b, r, t, d = da.shape
    return loss, da.transpose(0, 2, 1, 3).reshape(b, t, r * d).astype(student.dtype)


def relation_nodes(layer: int) -> list[str]:
    return [bitlinear_node(layer, role) for role in ("q", "k", "v")]
