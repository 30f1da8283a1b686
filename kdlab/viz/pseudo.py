"""Plots of pseudo-label quality: accuracy vs coverage, per-class thresholds, reliability, corrections.

Each function draws on ``ax`` (or a new figure) and returns the matplotlib Figure. Accuracies are
measured against the hidden true labels, which only these plots and the metrics may read.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from kdlab.pseudo import KINDS, PseudoLabels, accuracy_coverage_curve, expected_calibration_error, reliability_bins

__all__ = ["plot_accuracy_coverage", "plot_class_thresholds", "plot_reliability", "plot_corrections"]


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _names(class_names: Sequence[str] | None, n: int) -> list[str]:
    names = list(class_names) if class_names is not None else [str(c) for c in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for {n} classes")
    return names


def plot_accuracy_coverage(pl: PseudoLabels, true_labels, *, others: Mapping[str, torch.Tensor] | None = None,
                           subset: str = "unlabelled", ax=None):
    """Accuracy of the k most confident videos against coverage k / n, sweeping the threshold.

    Curves: the ensemble before smoothing (P), the refined S, and each of ``others`` (name ->
    probabilities (n, C) in ``pl.index`` order, e.g. a single view's). The dot marks the
    operating point of the class-adaptive thresholds. ``subset``: "unlabelled" (the videos that
    need pseudo-labels) or "all" predicted videos.
    """
    if subset not in ("unlabelled", "all"):
        raise ValueError(f"subset must be 'unlabelled' or 'all', got {subset!r}")
    true = torch.as_tensor(true_labels, dtype=torch.long)[pl.index]
    rows = pl.original[pl.index] < 0 if subset == "unlabelled" else torch.ones_like(true, dtype=torch.bool)
    curves = {"ensemble P": pl.probs, "refined S": pl.smoothed, **(others or {})}
    ax = _axes(ax, (4.8, 3.6))
    for name, probs in curves.items():
        if probs.shape != pl.probs.shape:
            raise ValueError(f"{name!r}: probabilities {tuple(probs.shape)} must be (n, C) = {tuple(pl.probs.shape)}")
        conf, pred = probs[rows].max(1)
        c = accuracy_coverage_curve(conf, pred == true[rows])
        ax.plot(c["coverage"].numpy(), c["accuracy"].numpy(), label=name)
    chosen = pl.mask[pl.index][rows]
    if chosen.any():
        accuracy = (pl.hard[pl.index][rows][chosen] == true[rows][chosen]).float().mean().item()
        ax.plot([chosen.float().mean().item()], [accuracy], "o", color="k", label="adaptive thresholds")
    ax.set_xlabel(f"coverage ({subset} videos kept)")
    ax.set_ylabel("accuracy vs true labels")
    ax.set_xlim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("pseudo-label accuracy vs coverage")
    return ax.figure


def plot_class_thresholds(pl: PseudoLabels, class_names: Sequence[str] | None = None, ax=None):
    """Bars: each class's threshold, the global tau as a line, and the number of pseudo-labels on top."""
    names = _names(class_names, pl.num_classes)
    counts = torch.bincount(pl.hard[pl.where("pseudo")], minlength=pl.num_classes).tolist()
    ax = _axes(ax, (0.8 + 0.7 * pl.num_classes, 3.4))
    bars = ax.bar(range(pl.num_classes), pl.thresholds.numpy(), color="tab:blue", alpha=0.8)
    for bar, n in zip(bars, counts):
        ax.annotate(str(n), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8)
    tau = pl.settings.get("tau")
    if tau is not None:
        ax.axhline(tau, color="k", ls="--", lw=1, label=f"tau = {tau:g}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xticks(range(pl.num_classes), names, rotation=45, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("confidence threshold")
    ax.set_title("class-adaptive thresholds (numbers: pseudo-labels)")
    return ax.figure


def plot_reliability(probs, labels, bins: int = 10, ax=None):
    """Reliability diagram: accuracy per confidence bin against the diagonal, ECE in the legend.

    ``probs``: (n, C) probabilities, or a mapping name -> (n, C) to compare (e.g. before and after
    calibration); ``labels`` (n,) true labels.
    """
    sets = probs if isinstance(probs, Mapping) else {"model": probs}
    labels = torch.as_tensor(labels, dtype=torch.long)
    ax = _axes(ax, (4.0, 3.8))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect calibration")
    width = 1.0 / bins / len(sets)
    for k, (name, p) in enumerate(sets.items()):
        r = reliability_bins(p, labels, bins)
        used = r["count"] > 0
        left = r["edges"][:-1] + k * width
        ece = expected_calibration_error(p, labels, bins)
        ax.bar(left[used].numpy(), r["accuracy"][used].numpy(), width=width, align="edge", alpha=0.7,
               edgecolor="k", lw=0.5, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram")
    ax.legend(fontsize=8, loc="upper left")
    return ax.figure


def plot_corrections(pl: PseudoLabels, true_labels, class_names: Sequence[str] | None = None):
    """Two panels: what happened to the given labels (corrections right / wrong, dropped, wrong
    labels left in place), and a matrix of given label -> corrected label."""
    m = pl.metrics(true_labels)
    true = torch.as_tensor(true_labels, dtype=torch.long)
    corrected = pl.where("corrected")
    missed = int(((pl.original >= 0) & (pl.original != true) & (pl.kind == KINDS.index("given"))).sum())
    bars = {
        "corrected,\nright": m["corrections_right"],
        "corrected,\nwrong": m["corrections"] - m["corrections_right"],
        "dropped,\nwas wrong": m["dropped_were_wrong"],
        "dropped,\nwas right": m["dropped"] - m["dropped_were_wrong"],
        "wrong label\nkept": missed,
    }
    names = _names(class_names, pl.num_classes)
    height = max(3.6, 1.8 + 0.4 * pl.num_classes)  # room for a square matrix and its class names
    fig, (left, right) = plt.subplots(1, 2, figsize=(5.0 + 0.6 * pl.num_classes, height),
                                      gridspec_kw={"width_ratios": [1.2, 1]})
    colors = ["tab:green", "tab:red", "tab:olive", "tab:orange", "tab:grey"]
    left.bar(range(len(bars)), list(bars.values()), color=colors)
    left.set_xticks(range(len(bars)), list(bars), fontsize=8)
    left.set_ylabel("labelled videos")
    left.set_title(f"given labels: {m['noisy_given']} of {m['labelled']} wrong")
    matrix = np.zeros((pl.num_classes, pl.num_classes), dtype=int)
    for a, b in zip(pl.original[corrected].tolist(), pl.given[corrected].tolist()):
        matrix[a, b] += 1
    annot = np.where(matrix > 0, matrix.astype(str), "")  # only the cells that happened
    sns.heatmap(matrix, ax=right, annot=annot, fmt="", cmap="Blues", cbar=False, xticklabels=names,
                yticklabels=names, square=True, linewidths=0.5, linecolor="0.9")
    right.set_xlabel("corrected to")
    right.set_ylabel("given label")
    right.set_title("corrections")
    fig.tight_layout()
    return fig
