"""Pairings: the substage correlation matrix R (:mod:`kdlab.correlation`) -> weights W.

W (S_student x S_teacher) weights the substage loss sum_ij W[i, j] * D(adapter_ij(F_s^i), F_t^j):

=============  ===========================================================================
identity       student stage i <-> the teacher stage at the same relative depth (one-hot)
cka_softmax    row-softmax(R / tau): soft, every teacher stage weighted by its similarity
monotone       one teacher stage per student stage, order kept, maximising total CKA (DP)
learned        logits trained with the student (LearnedPairing); starts from R / tau if given
=============  ===========================================================================

Every name here is also importable from :mod:`kdlab.correlation`, where it lived first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["PAIRING_RULES", "identity_pairing", "softmax_pairing", "monotone_assignment", "monotone_matching",
           "LearnedPairing", "make_pairing"]

PAIRING_RULES = ("identity", "cka_softmax", "monotone", "learned")


def _as_matrix(R: Any) -> torch.Tensor:
    from kdlab.correlation import SubstageCorrelation  # here: kdlab.correlation re-exports this module

    if isinstance(R, SubstageCorrelation):
        R = R.R
    R = torch.as_tensor(R, dtype=torch.float64)
    if R.dim() != 2 or 0 in R.shape:
        raise ValueError(f"R must be a non-empty (S_student, S_teacher) matrix, got shape {tuple(R.shape)}")
    return R


def _one_hot_rows(cols: list[int], num_cols: int) -> torch.Tensor:
    W = torch.zeros(len(cols), num_cols)
    W[torch.arange(len(cols)), torch.tensor(cols)] = 1.0
    return W


def identity_pairing(num_student: int, num_teacher: int) -> torch.Tensor:
    """One-hot W pairing student stage i with the teacher stage at the same relative depth.

    Stage i (0-based) of S_s sits at depth (i + 1) / S_s; it is paired with the first teacher
    stage j whose depth (j + 1) / S_t is at least that, i.e. j = ceil((i + 1) * S_t / S_s) - 1.
    Equal stage counts give the identity; the last student stage always meets the last teacher
    stage; with fewer teacher stages several student stages share one. W: (S_s, S_t), float32.
    """
    if num_student < 1 or num_teacher < 1:
        raise ValueError(f"stage counts must be >= 1, got {num_student} x {num_teacher}")
    cols = [-(-(i + 1) * num_teacher // num_student) - 1 for i in range(num_student)]
    return _one_hot_rows(cols, num_teacher)


def softmax_pairing(R: Any, tau: float = 0.1) -> torch.Tensor:
    """W = row-softmax(R / tau), float32 (S_s, S_t). Small tau -> argmax, large tau -> uniform."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return torch.softmax(_as_matrix(R) / tau, dim=1).float()


def monotone_assignment(R: Any) -> list[int]:
    """Teacher stage index for each student stage: non-decreasing, maximising sum_i R[i, j_i].

    Dynamic programming over (student stage i, teacher stage j): best[i][j] is the best total
    of stages 0..i when stage i takes teacher j, = R[i, j] + max(best[i-1][0..j]).
    O(S_s * S_t). Ties go to the lower teacher index.
    """
    R = _as_matrix(R)
    S_s, S_t = R.shape
    r = R.tolist()
    best = [r[0][:]]  # best[i][j]
    back: list[list[int]] = [[-1] * S_t]  # argmax over j' <= j of best[i-1][j']
    for i in range(1, S_s):
        row, arg = [], []
        run_j = 0
        for j in range(S_t):
            if best[i - 1][j] > best[i - 1][run_j]:
                run_j = j
            row.append(r[i][j] + best[i - 1][run_j])
            arg.append(run_j)
        best.append(row)
        back.append(arg)
    j = max(range(S_t), key=lambda c: (best[-1][c], -c))
    cols = [j]
    for i in range(S_s - 1, 0, -1):
        j = back[i][j]
        cols.append(j)
    return cols[::-1]


def monotone_matching(R: Any) -> torch.Tensor:
    """One-hot W (S_s, S_t), float32, from :func:`monotone_assignment`."""
    R = _as_matrix(R)
    return _one_hot_rows(monotone_assignment(R), R.shape[1])


class LearnedPairing(nn.Module):
    """Pairing weights learned with the student: W = row-softmax(logits).

    Add its parameters to the student's optimiser; the substage loss then moves weight toward
    the teacher stages the student can match best. ``init`` (e.g. R) starts the logits at
    init / tau; without it every row starts uniform.
    """

    def __init__(self, num_student: int, num_teacher: int, init: Any = None, tau: float = 1.0):
        super().__init__()
        if num_student < 1 or num_teacher < 1:
            raise ValueError(f"stage counts must be >= 1, got {num_student} x {num_teacher}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        logits = torch.zeros(num_student, num_teacher)
        if init is not None:
            init = _as_matrix(init)
            if tuple(init.shape) != (num_student, num_teacher):
                raise ValueError(
                    f"init has shape {tuple(init.shape)}, expected ({num_student}, {num_teacher})"
                )
            logits = (init / tau).float()
        self.logits = nn.Parameter(logits)

    def weights(self) -> torch.Tensor:
        """W (S_s, S_t): each row sums to 1; differentiable with respect to ``logits``."""
        return torch.softmax(self.logits, dim=1)

    def forward(self) -> torch.Tensor:
        return self.weights()

    def extra_repr(self) -> str:
        return f"num_student={self.logits.shape[0]}, num_teacher={self.logits.shape[1]}"


def make_pairing(
    rule: str,
    R: Any = None,
    tau: float = 0.1,
    num_student: int | None = None,
    num_teacher: int | None = None,
) -> torch.Tensor | LearnedPairing:
    """Build a pairing by name: one of ``PAIRING_RULES``.

    Returns W (S_s, S_t) for "identity", "cka_softmax" and "monotone"; for "learned" a
    :class:`LearnedPairing` module (call ``.weights()`` for W) because its logits must reach
    the optimiser. "identity" and "learned" take their size from R or from
    ``num_student`` / ``num_teacher``; "cka_softmax" and "monotone" need R.
    """
    if rule not in PAIRING_RULES:
        raise ValueError(f"unknown pairing rule {rule!r}; valid rules: {', '.join(PAIRING_RULES)}")
    if R is not None:
        R = _as_matrix(R)
        num_student, num_teacher = R.shape
    if rule in ("cka_softmax", "monotone") and R is None:
        raise ValueError(f"pairing rule {rule!r} needs the correlation matrix R")
    if num_student is None or num_teacher is None:
        raise ValueError(f"pairing rule {rule!r} needs R or both num_student and num_teacher")
    if rule == "identity":
        return identity_pairing(num_student, num_teacher)
    if rule == "cka_softmax":
        return softmax_pairing(R, tau)
    if rule == "monotone":
        return monotone_matching(R)
    return LearnedPairing(num_student, num_teacher, init=R, tau=tau)
