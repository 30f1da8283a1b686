"""Correlation of substages: linear CKA, the student x teacher matrix R, and pairings W.

**Linear CKA** (centred kernel alignment with a linear kernel) compares two feature batches of
the same B samples, whatever their widths: with K = X X^T and L = Y Y^T the (B, B) Gram matrices
of the per-sample features and HSIC their centred inner product,

    CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) * HSIC(L, L))      in [0, 1].

It is invariant to orthogonal transforms and isotropic scaling of either side, which is what we
want when a student stage and a teacher stage have different channel counts and bases. With few
samples and many features the plain (biased) estimate is inflated even for unrelated features;
``debiased=True`` uses the unbiased HSIC estimator instead (Song et al., 2012), which is near 0
for independent features (and may then be slightly negative).

**R** is the matrix of CKA between every student stage i and teacher stage j, averaged over a few
probe batches; :class:`CorrelationTracker` recomputes it after every training epoch.
**Pairings** turn R into weights W (S_student x S_teacher) for the substage loss
sum_ij W[i, j] * D(adapter_ij(F_s^i), F_t^j): identity, cka_softmax, monotone and learned, each
described in :mod:`kdlab.pairing`, where they live; their names are importable from here too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn

from kdlab.hooks import SubstageTap, default_stage_names
from kdlab.modes import eval_mode
from kdlab.pairing import (PAIRING_RULES, LearnedPairing, identity_pairing, make_pairing, monotone_assignment,
                           monotone_matching, softmax_pairing)

__all__ = [
    "POOLS",
    "PAIRING_RULES",
    "linear_cka",
    "cka_from_grams",
    "gram",
    "SubstageCorrelation",
    "substage_correlation",
    "CorrelationTracker",
    "identity_pairing",
    "softmax_pairing",
    "monotone_assignment",
    "monotone_matching",
    "LearnedPairing",
    "make_pairing",
]

POOLS = ("mean", "flatten")


# ------------------------------------------------------------------------------------------
# Linear CKA
# ------------------------------------------------------------------------------------------
def _features_2d(x: Any, pool: str) -> torch.Tensor:
    """(B, ...) -> (B, D) float64, centred over the batch.

    ``pool="mean"`` averages every axis after the channel axis (T, H, W for (B, C, T, H, W)),
    giving (B, C); ``"flatten"`` keeps every position, giving (B, C*T*H*W).
    """
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(POOLS)}")
    x = torch.as_tensor(x).detach()
    if x.dim() < 1:
        raise ValueError(f"features need a batch axis, got a scalar of shape {tuple(x.shape)}")
    # float64 for the Gram sums; MPS has no float64, so such tensors go to the CPU.
    if x.device.type == "mps":
        x = x.cpu()
    x = x.to(torch.float64)
    if pool == "mean" and x.dim() > 2:
        x = x.flatten(2).mean(dim=2)
    x = x.reshape(x.shape[0], -1)
    # Centring the features equals centring the Gram matrix (H X X^T H = (HX)(HX)^T) and loses
    # less precision when features carry a large common offset.
    return x - x.mean(dim=0, keepdim=True)


def gram(x: Any, pool: str = "flatten") -> torch.Tensor:
    """Linear Gram matrix (B, B), float64, of batch-centred features x (B, ...)."""
    f = _features_2d(x, pool)
    return f @ f.T


def _hsic_biased(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """<HKH, HLH>; the 1/(n-1)^2 factor is dropped because it cancels in CKA."""
    n = K.shape[0]
    H = torch.eye(n, dtype=K.dtype, device=K.device) - 1.0 / n
    return ((H @ K @ H) * (H @ L @ H)).sum()


def _hsic_unbiased(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC estimator (Song et al., 2012, eq. 5); needs n >= 4."""
    n = K.shape[0]
    K = K - torch.diag_embed(torch.diagonal(K))
    L = L - torch.diag_embed(torch.diagonal(L))
    k1, l1 = K.sum(dim=1), L.sum(dim=1)
    value = (K * L).sum() + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k1 @ l1)
    return value / (n * (n - 3))


def cka_from_grams(K: torch.Tensor, L: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """Linear CKA from two (B, B) Gram matrices; a 0-dim float64 tensor.

    A batch whose features do not vary (a zero HSIC(K, K)) shares no variation with anything:
    its CKA is defined as 0 rather than NaN, so that averages over stages and batches stay finite.
    """
    if K.shape != L.shape or K.dim() != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"Gram matrices must both be (B, B), got {tuple(K.shape)} and {tuple(L.shape)}")
    n = K.shape[0]
    if debiased and n < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples per batch, got {n}")
    if n < 2:
        raise ValueError(f"CKA needs at least 2 samples per batch, got {n}")
    hsic = _hsic_unbiased if debiased else _hsic_biased
    kl, kk, ll = hsic(K, L), hsic(K, K), hsic(L, L)
    denom = kk * ll
    if not bool(denom > 0):
        return torch.zeros((), dtype=torch.float64, device=K.device)
    return kl / denom.sqrt()


def linear_cka(x: Any, y: Any, debiased: bool = False, pool: str = "flatten") -> torch.Tensor:
    """Linear CKA between two feature batches x (B, ...) and y (B, ...); 0-dim float64 tensor.

    The shapes after the batch axis may differ (e.g. (B, 64, 8, 16, 16) vs (B, 256, 2, 4, 4)).
    ``pool="flatten"`` compares every (channel, t, h, w) value; ``pool="mean"`` first averages
    over T, H, W, comparing per-clip channel profiles (cheaper, blind to where things happen).
    Computed in float64 on the inputs' device (CPU for MPS tensors).
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape[:1] != y.shape[:1]:
        raise ValueError(
            f"CKA compares the same samples: batch sizes differ, x {tuple(x.shape)} vs y {tuple(y.shape)}"
        )
    K, L = gram(x, pool), gram(y, pool)
    return cka_from_grams(K, L.to(K.device), debiased=debiased)


# ------------------------------------------------------------------------------------------
# The substage correlation matrix R
# ------------------------------------------------------------------------------------------
@dataclass
class SubstageCorrelation:
    """Result of :func:`substage_correlation`.

    Attributes:
        R: (S_student, S_teacher) float64, the mean of ``per_batch`` over batches.
        per_batch: (N, S_student, S_teacher) float64, one CKA matrix per probe batch.
        student_names, teacher_names: the stage names along R's rows and columns.
    """

    R: torch.Tensor
    per_batch: torch.Tensor
    student_names: list[str]
    teacher_names: list[str]
    pool: str = "mean"
    debiased: bool = False

    @property
    def std(self) -> torch.Tensor:
        """Per-entry standard deviation over batches (0 for a single batch)."""
        if self.per_batch.shape[0] < 2:
            return torch.zeros_like(self.R)
        return self.per_batch.std(dim=0)

    @property
    def sem(self) -> torch.Tensor:
        """Standard error of the mean, for error bars."""
        return self.std / self.per_batch.shape[0] ** 0.5

    def best_teacher_stage(self) -> dict[str, str]:
        """Student stage name -> the teacher stage it correlates with most."""
        idx = self.R.argmax(dim=1).tolist()
        return {s: self.teacher_names[j] for s, j in zip(self.student_names, idx)}


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _clip_of(batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise TypeError(
        "loader batches must be a clip tensor (B, 3, T, H, W) or a tuple/list whose first item is one, "
        f"got {type(batch).__name__}"
    )


@torch.no_grad()
def substage_correlation(
    student: nn.Module,
    teacher: nn.Module,
    loader: Iterable,
    batches: int | None = 4,
    student_stages: list[str] | None = None,
    teacher_stages: list[str] | None = None,
    pool: str = "mean",
    debiased: bool = False,
) -> SubstageCorrelation:
    """CKA between every student stage and every teacher stage, over ``batches`` probe batches.

    Both models run in ``eval()`` under ``torch.no_grad()``: no gradients, no BatchNorm
    running-stat updates, no dropout noise. Every module's train/eval flag is restored afterwards.
    Clips go to the device of each model's parameters (the student's for a model on one device).

    Args:
        loader: yields clips (B, 3, T, H, W) or tuples whose first item is the clip.
        batches: how many batches to use (None: the whole loader).
        student_stages, teacher_stages: tapped names (default: each model's ``stage_names``).
        pool, debiased: as in :func:`linear_cka`.
    """
    if batches is not None and batches < 1:
        raise ValueError(f"batches must be >= 1 (or None for the whole loader), got {batches}")
    s_names = list(student_stages) if student_stages is not None else default_stage_names(student)
    t_names = list(teacher_stages) if teacher_stages is not None else default_stage_names(teacher)
    s_dev, t_dev = _device_of(student), _device_of(teacher)

    per_batch = []
    with eval_mode(student, teacher):
        with SubstageTap(student, s_names, detach=True) as s_tap, SubstageTap(
            teacher, t_names, detach=True
        ) as t_tap:
            batch_iter = loader if batches is None else itertools.islice(loader, batches)
            for batch in batch_iter:
                clip = _clip_of(batch)
                student(clip.to(s_dev))
                teacher(clip.to(t_dev))
                # One Gram per stage, then every pair reuses them: S_s + S_t Grams, not S_s * S_t.
                Ks = [gram(s_tap[n], pool) for n in s_tap.names]
                Lt = [gram(t_tap[n], pool).to(Ks[0].device) for n in t_tap.names]
                R_b = torch.stack(
                    [torch.stack([cka_from_grams(K, L, debiased) for L in Lt]) for K in Ks]
                )
                per_batch.append(R_b.cpu())
    if not per_batch:
        raise ValueError("the loader yielded no batches, so there is nothing to correlate")
    stacked = torch.stack(per_batch)
    return SubstageCorrelation(
        R=stacked.mean(dim=0),
        per_batch=stacked,
        student_names=s_tap.names,
        teacher_names=t_tap.names,
        pool=pool,
        debiased=debiased,
    )


class CorrelationTracker:
    """R recomputed on a fixed probe after every training epoch, to watch the student converge.

    Pass it to :func:`kdlab.train.fit` as ``on_epoch_end``; call :meth:`record` once before
    training for the untrained starting point::

        tracker = CorrelationTracker(student, teacher, probe_loader, batches=2)
        tracker.record(0)                                    # epoch 0: before any training
        fit(student, train_set, val_set, epochs=5, on_epoch_end=tracker)
        tracker.epochs                                       # [0, 1, 2, 3, 4, 5]
        plot_correlation_history(tracker.history, epochs=tracker.epochs)

    Epochs are counted as *epochs trained*: fit's 0-based epoch e is recorded as e + 1. Each
    record runs both models in eval mode without gradients (see :func:`substage_correlation`),
    so tracking does not change the training run: fit reseeds every epoch, and BatchNorm
    statistics are not touched. The other arguments are those of :func:`substage_correlation`.

    Attributes: ``history`` (one :class:`SubstageCorrelation` per record), ``epochs``.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        loader: Iterable,
        batches: int | None = 4,
        student_stages: list[str] | None = None,
        teacher_stages: list[str] | None = None,
        pool: str = "mean",
        debiased: bool = False,
    ):
        self.student, self.teacher, self.loader = student, teacher, loader
        self.options = dict(
            batches=batches, student_stages=student_stages, teacher_stages=teacher_stages,
            pool=pool, debiased=debiased,
        )
        self.history: list[SubstageCorrelation] = []
        self.epochs: list[int] = []

    def record(self, epoch: int) -> SubstageCorrelation:
        """Compute R now and store it under ``epoch``; returns it."""
        result = substage_correlation(self.student, self.teacher, self.loader, **self.options)
        self.history.append(result)
        self.epochs.append(int(epoch))
        return result

    def __call__(self, epoch: int, record: dict | None = None) -> None:
        """fit's ``on_epoch_end(epoch, record)`` hook: records R after 0-based ``epoch``."""
        self.record(epoch + 1)

    def stack(self) -> torch.Tensor:
        """All recorded R as one (records, S_student, S_teacher) float64 tensor."""
        if not self.history:
            raise ValueError("nothing recorded yet: call record() or pass the tracker to fit(on_epoch_end=...)")
        return torch.stack([c.R for c in self.history])

    def __len__(self) -> int:
        return len(self.history)

    def __repr__(self) -> str:
        return f"CorrelationTracker({len(self)} records, epochs={self.epochs})"
