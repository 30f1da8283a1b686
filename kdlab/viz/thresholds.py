"""The pseudo-label threshold explorer: coverage and accuracy per class as one threshold moves.

:func:`threshold_table` is the plain computation behind the widget (tested without a browser).
For n videos with a confidence (n,), a predicted class (n,) and the true class (n,) (the truth
is for measuring only), a global threshold t keeps the videos with confidence >= t. Per class c,
counting by the *pseudo-label* (the predicted class, which is what the student would be told):

    candidates_c = #{videos predicted c}
    kept_c       = #{videos predicted c with confidence >= t}
    coverage_c   = kept_c / candidates_c            (NaN when no video is predicted c)
    accuracy_c   = #{kept, predicted c, right} / kept_c   (NaN when none is kept)

and overall coverage = kept / n, accuracy = right kept / kept. :class:`ThresholdExplorer` wires a
threshold slider to a per-class bar plot of both (see notebook 02, section 6).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ._widget import FigureWidget

__all__ = ["threshold_table", "draw_thresholds", "ThresholdExplorer"]


def _vector(name: str, x, dtype) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().reshape(-1)
    return x.to(dtype)


def threshold_table(confidence, predicted, true, threshold: float, num_classes: int) -> dict:
    """Coverage and accuracy per class (by pseudo-label) and overall, for one global threshold.

    Args:
        confidence: (n,) the confidence of each video's pseudo-label (e.g. max of S).
        predicted: (n,) the pseudo-label (argmax), ints in [0, num_classes).
        true: (n,) the true class (for measuring only).
        threshold: keep videos whose confidence is >= it.
        num_classes: C.

    Returns numpy arrays (C,) ``candidates``, ``kept``, ``right``, ``coverage``, ``accuracy`` (NaN
    where undefined), and floats ``coverage_all``, ``accuracy_all`` (NaN if nothing is kept),
    ``kept_all``, ``threshold``.
    """
    conf = _vector("confidence", confidence, torch.float64)
    pred = _vector("predicted", predicted, torch.long)
    true = _vector("true", true, torch.long)
    if not (conf.numel() == pred.numel() == true.numel()):
        raise ValueError(f"confidence {conf.numel()}, predicted {pred.numel()} and true {true.numel()} must have "
                         "one entry per video")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predicted classes must lie in [0, {num_classes})")
    keep = conf >= threshold
    right = keep & (pred == true)
    candidates = torch.bincount(pred, minlength=num_classes).double().numpy()
    kept = torch.bincount(pred[keep], minlength=num_classes).double().numpy()
    right_c = torch.bincount(pred[right], minlength=num_classes).double().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(candidates > 0, kept / np.maximum(candidates, 1), np.nan)
        accuracy = np.where(kept > 0, right_c / np.maximum(kept, 1), np.nan)
    n, k = conf.numel(), int(keep.sum())
    return {"candidates": candidates, "kept": kept, "right": right_c, "coverage": coverage, "accuracy": accuracy,
            "coverage_all": k / n if n else float("nan"), "accuracy_all": int(right.sum()) / k if k else float("nan"),
            "kept_all": k, "threshold": float(threshold)}


def draw_thresholds(ax, table: dict, classes: Sequence[str]) -> None:
    """Per-class bars of coverage and accuracy (hatched where no video is kept), with the overall values."""
    k = np.arange(len(classes))
    ax.clear()
    ax.bar(k - 0.2, np.nan_to_num(table["coverage"]), width=0.4, color="tab:blue", label="coverage (kept / predicted)")
    acc = table["accuracy"]
    ax.bar(k + 0.2, np.nan_to_num(acc), width=0.4, color="tab:green", label="accuracy of the kept")
    for c in np.flatnonzero(np.isnan(acc)):
        ax.annotate("none\nkept", (c + 0.2, 0.02), ha="center", fontsize=7, color="tab:red")
    ax.axhline(table["coverage_all"], color="tab:blue", ls="--", lw=1)
    if not np.isnan(table["accuracy_all"]):
        ax.axhline(table["accuracy_all"], color="tab:green", ls="--", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_xticks(k, list(classes), rotation=30, ha="right", fontsize=8)
    ax.set_title(f"threshold {table['threshold']:.2f}: {table['kept_all']} kept, coverage {table['coverage_all']:.1%}, "
                 f"accuracy {table['accuracy_all']:.1%} (dashed: all classes)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")


class ThresholdExplorer(FigureWidget):
    """A threshold slider over :func:`threshold_table`, redrawn as it moves.

    Args:
        confidence, predicted, true: (n,) as in :func:`threshold_table`.
        classes: the C class names.
        threshold: the slider's start value.

    ``.widget`` is the ipywidgets box to display, ``.threshold`` its slider, ``.table`` the
    current :func:`threshold_table` dict; ``update()`` redraws (the slider's callback).
    """

    def __init__(self, confidence, predicted, true, classes: Sequence[str], threshold: float = 0.5):
        import ipywidgets as w

        self.confidence, self.predicted, self.true = confidence, predicted, true
        self.classes = list(classes)
        self.threshold = w.FloatSlider(threshold, min=0.0, max=1.0, step=0.01, description="threshold",
                                       continuous_update=False, readout_format=".2f")
        figure, self.ax = plt.subplots(figsize=(9, 3.2))
        self._wire(self.threshold, (self.threshold,), figure)
        self.table: dict = {}
        self.update()

    def update(self) -> dict:
        """Recompute the table for the slider's threshold and redraw."""
        self.table = threshold_table(self.confidence, self.predicted, self.true, self.threshold.value,
                                     len(self.classes))
        draw_thresholds(self.ax, self.table, self.classes)
        self.figure.tight_layout()
        self._show()
        return self.table
