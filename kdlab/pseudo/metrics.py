"""How good are pseudo-labels: accuracy against the hidden true labels vs coverage, and calibration.

Every function takes plain tensors so that it works on any model's probabilities:
probs (n, C), labels (n,), confidence (n,), correct (n,) bool.
"""

from __future__ import annotations

import torch


def accuracy_coverage_curve(confidence: torch.Tensor, correct: torch.Tensor) -> dict[str, torch.Tensor]:
    """Keep the most confident samples first: for every threshold, how many pass and how many are right.

    Returns ``coverage`` (n,) = (r + 1) / n, ``accuracy`` (n,) = accuracy of the r + 1 most
    confident samples, ``threshold`` (n,) = the confidence of the (r + 1)-th, in descending order.
    Ties are broken by position (stable sort), so the curve is reproducible.
    """
    confidence, correct = confidence.flatten().float(), correct.flatten().float()
    if confidence.shape != correct.shape:
        raise ValueError(f"confidence {tuple(confidence.shape)} and correct {tuple(correct.shape)} must match")
    order = torch.sort(confidence, descending=True, stable=True).indices
    hits = correct[order].cumsum(0)
    kept = torch.arange(1, len(order) + 1, dtype=torch.float32)
    return {"coverage": kept / max(len(order), 1), "accuracy": hits / kept, "threshold": confidence[order]}


def accuracy_at_coverage(confidence: torch.Tensor, correct: torch.Tensor, coverage: float) -> float:
    """Accuracy of the ``ceil(coverage * n)`` most confident samples (1.0 = all of them)."""
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    curve = accuracy_coverage_curve(confidence, correct)
    n = len(curve["accuracy"])
    k = min(n, max(1, int(torch.tensor(coverage * n).ceil())))
    return float(curve["accuracy"][k - 1])


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> dict[str, torch.Tensor]:
    """Equal-width confidence bins over [0, 1]: per bin the mean confidence, accuracy and count.

    probs (n, C), labels (n,). Returns ``edges`` (bins + 1,), ``confidence``, ``accuracy`` (bins,)
    (NaN for empty bins) and ``count`` (bins,). A sample with confidence exactly 1 falls in the last bin.
    """
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"expected probs (n, C) and labels (n,), got {tuple(probs.shape)} and {tuple(labels.shape)}")
    conf, pred = probs.float().max(1)
    correct = (pred == labels).float()
    which = (conf * bins).long().clamp(0, bins - 1)
    count = torch.bincount(which, minlength=bins).float()
    mean_conf = torch.bincount(which, conf, minlength=bins) / count
    accuracy = torch.bincount(which, correct, minlength=bins) / count
    return {"edges": torch.linspace(0, 1, bins + 1), "confidence": mean_conf, "accuracy": accuracy, "count": count}


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> float:
    """ECE = sum_b (n_b / n) * |accuracy_b - confidence_b| over equal-width confidence bins."""
    r = reliability_bins(probs, labels, bins)
    used = r["count"] > 0
    gap = (r["accuracy"][used] - r["confidence"][used]).abs()
    return float((r["count"][used] * gap).sum() / r["count"].sum().clamp(min=1))
