"""Refinement of ensemble predictions into training targets.

Given the ensemble's probabilities P (n, C) and embeddings E (n, D) of n videos, and the weak
labels (a few given labels, some wrong), :func:`refine` runs five steps, in this order:

0. **Calibration**: P <- softmax(log P / T). Thresholds are absolute confidences, so they mean
   something only when confidences do, and an ensemble of a briefly trained net is often far
   less confident than it is accurate. Fit T on held-out labelled videos with
   :func:`fit_temperature` (kdlab's validation split); T = 1 leaves P alone. Fitting on the
   noisy budget itself would be wrong: the label noise looks like model error and flattens P.
1. **kNN smoothing**: S = (1 - alpha) * P + alpha * mean of P over each video's k nearest
   neighbours (cosine similarity of E, the video itself excluded). Videos of one class cluster
   in a good embedding, so a neighbourhood vote repairs isolated mistakes.
2. **Correction** of given labels: where argmax S differs from the given label and
   max S >= ``correct_tau``, the label is replaced by argmax S (``correction="relabel"``),
   dropped from training (``"drop"``), or kept (``"off"``). Each one is recorded (``kind``).
3. **Class-adaptive thresholds** for the unlabelled videos: for class c, among the unlabelled
   videos whose argmax S is c, ``threshold_c = min(tau, quantile_q(their confidences))``,
   at least ``floor``. So a class the model is unsure about keeps its most confident
   (1 - q) share instead of getting no pseudo-label at all, while confident classes use tau.
   A class that is nobody's argmax keeps threshold tau (and has no candidates).
4. **Targets**: kept given labels -> one-hot, weight 1; corrected labels and accepted
   pseudo-labels -> S (``soft=True``) or one-hot of argmax S, weight max S
   (``weighting="confidence"``) or 1; everything else -> weight 0, outside the mask.

Re-refinement with a newer model (after a cascade step) averages its probabilities into the
running ones, P <- m * P_old + (1 - m) * P_new (:func:`ema`), and refines again: see
:class:`kdlab.pseudo.labeler.PseudoLabeler`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .ensemble import Predictions
from .result import KINDS, PseudoLabels
from .weak import WeakLabels

CORRECTIONS = ("relabel", "drop", "off")
WEIGHTINGS = ("confidence", "uniform")


def ema(old: torch.Tensor, new: torch.Tensor, momentum: float) -> torch.Tensor:
    """Exponential moving average: ``momentum * old + (1 - momentum) * new`` (same shapes)."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if old.shape != new.shape:
        raise ValueError(f"old {tuple(old.shape)} and new {tuple(new.shape)} must have the same shape")
    return momentum * old + (1.0 - momentum) * new


def apply_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(log(probs) / T): (n, C) -> (n, C). T < 1 sharpens, T > 1 flattens, T = 1 keeps."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return (probs.float().clamp_min(1e-12).log() / temperature).softmax(1)


def fit_temperature(probs: torch.Tensor | Predictions, labels, grid: int = 241,
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T that minimises the NLL of ``labels`` (n,) under softmax(log(probs) / T), probs (n, C).

    ``probs`` may be :class:`Predictions` (its ensemble probabilities). A log-spaced grid search
    over ``bounds``: one parameter, so a grid is exact enough and cannot diverge (temperature
    scaling, on probabilities instead of logits). A model that is right on every held-out video
    hits the lower bound: its probabilities become (nearly) one-hot.
    """
    probs = probs.probs if isinstance(probs, Predictions) else probs
    labels = torch.as_tensor(labels, dtype=torch.long)
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"expected probs (n, C) and labels (n,), got {tuple(probs.shape)} and {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("fit_temperature needs at least one labelled sample")
    temps = torch.logspace(math.log10(bounds[0]), math.log10(bounds[1]), grid)
    logp = probs.float().clamp_min(1e-12).log()
    nll = torch.cat([F.cross_entropy((logp / t[:, None, None]).transpose(1, 2), labels.expand(len(t), -1),
                                     reduction="none").mean(1) for t in temps.split(16)])  # (grid,)
    return float(temps[nll.argmin()])


def knn_smooth(probs: torch.Tensor, embeddings: torch.Tensor, k: int = 10, alpha: float = 0.5,
               chunk: int = 1024) -> torch.Tensor:
    """``(1 - alpha) * probs + alpha * mean(probs of the k nearest neighbours)``; (n, C) -> (n, C).

    Neighbours by cosine similarity of ``embeddings`` (n, D), excluding the video itself; k is
    capped at n - 1. Rows still sum to 1. Computed ``chunk`` rows at a time (memory chunk x n).
    """
    if probs.dim() != 2 or embeddings.dim() != 2 or probs.shape[0] != embeddings.shape[0]:
        raise ValueError(f"expected probs (n, C) and embeddings (n, D), got {tuple(probs.shape)} and "
                         f"{tuple(embeddings.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    n = probs.shape[0]
    k = min(int(k), n - 1)
    if k <= 0 or alpha == 0:
        return probs.clone()
    z = F.normalize(embeddings.float(), dim=1)
    neighbour_mean = torch.empty_like(probs, dtype=torch.float32)
    for start in range(0, n, chunk):
        sim = z[start:start + chunk] @ z.T  # (b, n)
        rows = torch.arange(sim.shape[0])
        sim[rows, start + rows] = -float("inf")  # not your own neighbour
        neighbours = sim.topk(k, dim=1).indices  # (b, k)
        neighbour_mean[start:start + chunk] = probs[neighbours].float().mean(1)
    return (1 - alpha) * probs.float() + alpha * neighbour_mean


def class_thresholds(confidence: torch.Tensor, predicted: torch.Tensor, num_classes: int, *, tau: float = 0.9,
                     quantile: float = 0.5, floor: float = 0.0) -> torch.Tensor:
    """Per-class thresholds (C,): ``max(floor, min(tau, quantile_q(confidence[predicted == c])))``.

    A class with no predicted sample gets ``tau``. With q < 1, at least the (1 - q) most
    confident share of every predicted class passes (when floor allows), however unsure the model is.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    thresholds = torch.full((num_classes,), float(tau))
    for c in range(num_classes):
        conf_c = confidence[predicted == c].float()
        if conf_c.numel():
            thresholds[c] = min(float(tau), float(torch.quantile(conf_c, quantile)))
    return thresholds.clamp(min=floor)


def check_settings(*, correction="relabel", weighting="confidence", knn=10, soft=True, temperature=1.0,
                    **fractions) -> None:
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; valid: {CORRECTIONS}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; valid: {WEIGHTINGS}")
    if int(knn) < 0:
        raise ValueError(f"knn must be >= 0, got {knn}")
    for name, value in fractions.items():
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def refine(predictions: Predictions, weak: WeakLabels, *, temperature: float = 1.0, tau: float = 0.9,
           quantile: float = 0.5, floor: float = 0.0, knn: int = 10, alpha: float = 0.3, correct_tau: float = 0.9,
           correction: str = "relabel", soft: bool = True, weighting: str = "confidence") -> PseudoLabels:
    """Turn ensemble ``predictions`` and ``weak`` labels into :class:`PseudoLabels` (module docstring).

    ``knn=0`` or ``alpha=0`` skips smoothing (as does ``predictions.embeddings is None``);
    ``correction="off"`` keeps every given label; ``tau=1.0, quantile=1.0`` makes thresholds
    only as strict as each class's most confident video.
    """
    check_settings(temperature=temperature, tau=tau, quantile=quantile, floor=floor, knn=knn, alpha=alpha,
                    correct_tau=correct_tau, correction=correction, weighting=weighting)
    N, C = len(weak), predictions.num_classes
    if C != weak.num_classes:
        raise ValueError(f"predictions have {C} classes, the weak labels {weak.num_classes}")
    idx = predictions.index
    if idx.numel() and (idx.min() < 0 or idx.max() >= N):
        raise IndexError(f"prediction indices reach {int(idx.max())}, but the weak labels cover {N} videos")

    given_r = weak.given[idx]
    labelled = given_r >= 0
    P = apply_temperature(predictions.probs, float(temperature))
    if knn > 0 and alpha > 0 and predictions.embeddings is not None:
        S = knn_smooth(P, predictions.embeddings, knn, alpha)
    else:
        S = P.clone()
    conf, pred = S.max(1)

    contradicted = labelled & (pred != given_r) & (conf >= correct_tau)
    if correction == "off":
        contradicted = torch.zeros_like(contradicted)
    candidates = ~labelled
    thresholds = class_thresholds(conf[candidates], pred[candidates], C, tau=tau, quantile=quantile, floor=floor)
    accepted = candidates & (conf >= thresholds[pred])

    kind_r = torch.zeros(len(idx), dtype=torch.long)
    kind_r[labelled] = KINDS.index("given")
    kind_r[contradicted] = KINDS.index("corrected" if correction == "relabel" else "dropped")
    kind_r[accepted] = KINDS.index("pseudo")
    from_model = (kind_r == KINDS.index("corrected")) | accepted
    keep_given = kind_r == KINDS.index("given")

    target_r = S if soft else F.one_hot(pred, C).float()
    soft_r = torch.full((len(idx), C), 1.0 / C)
    soft_r[keep_given] = F.one_hot(given_r[keep_given], C).float()
    soft_r[from_model] = target_r[from_model]
    hard_r = torch.full((len(idx),), -1, dtype=torch.long)
    hard_r[keep_given] = given_r[keep_given]
    hard_r[from_model] = pred[from_model]
    weight_r = torch.zeros(len(idx))
    weight_r[keep_given] = 1.0
    weight_r[from_model] = conf[from_model] if weighting == "confidence" else 1.0

    def scatter(rows: torch.Tensor, fill) -> torch.Tensor:
        out = torch.full((N, *rows.shape[1:]), fill, dtype=rows.dtype)
        out[idx] = rows
        return out

    # Videos that were not predicted keep their given label (weight 1) and nothing else.
    soft_full = scatter(soft_r, 1.0 / C)
    outside = torch.ones(N, dtype=torch.bool)
    outside[idx] = False
    out_given = outside & weak.labelled
    soft_full[out_given] = F.one_hot(weak.given[out_given], C).float()
    hard_full = scatter(hard_r, -1)
    hard_full[out_given] = weak.given[out_given]
    kind_full = scatter(kind_r, 0)
    kind_full[out_given] = KINDS.index("given")
    weight_full = scatter(weight_r, 0.0)
    weight_full[out_given] = 1.0
    given_full = weak.given.clone()
    given_full[idx] = torch.where(keep_given, given_r, torch.where(kind_r == KINDS.index("corrected"), pred, -1))

    settings = dict(temperature=float(temperature), tau=tau, quantile=quantile, floor=floor, knn=knn, alpha=alpha,
                    correct_tau=correct_tau, correction=correction, soft=soft, weighting=weighting,
                    views=predictions.views, clips=predictions.clips, blind_flip=predictions.blind_flip)
    return PseudoLabels(soft=soft_full, hard=hard_full, mask=weight_full > 0, weights=weight_full,
                        given=given_full, original=weak.given.clone(), kind=kind_full,
                        confidence=scatter(conf, float("nan")), thresholds=thresholds, index=idx.clone(),
                        ensemble=predictions.probs.float(), probs=P, smoothed=S, settings=settings)
