"""The misclassification browser: pick a test video, see its frames and each model's prediction.

:func:`model_probs` runs a model over a dataset, :func:`mistakes` lists the videos one model gets
wrong (those another model gets right first), and :func:`prediction_rows` describes one video;
these plain functions are tested without a browser. :class:`VideoBrowser` wires a slider over the
listed videos to a figure: the clip's frames above, every model's class probabilities below.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ._widget import FigureWidget
from .video import as_frames

__all__ = ["model_probs", "mistakes", "prediction_rows", "VideoBrowser"]


@torch.no_grad()
def model_probs(model: torch.nn.Module, dataset: Dataset, batch_size: int = 32) -> torch.Tensor:
    """Softmax probabilities (n, C) of ``model`` on every item ``(clip (3, T, H, W), label, ...)`` of
    ``dataset``, in order, in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    device = next(iter(model.parameters())).device
    out = []
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            out.append(torch.softmax(model(batch[0].to(device)).float(), 1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def mistakes(probs: torch.Tensor, true, other: torch.Tensor | None = None) -> list[int]:
    """Rows (videos) that ``probs`` (n, C) gets wrong against ``true`` (n,).

    With ``other`` (n, C), another model's probabilities: the videos ``other`` gets right come
    first (what the first model could learn from it), each group by decreasing confidence of the
    first model in its wrong answer.
    """
    true = torch.as_tensor(true, dtype=torch.long).reshape(-1)
    if probs.dim() != 2 or probs.shape[0] != true.numel():
        raise ValueError(f"probs must be (n, C) with n = {true.numel()} videos, got {tuple(probs.shape)}")
    if other is not None and other.shape != probs.shape:
        raise ValueError(f"other {tuple(other.shape)} must have the shape of probs {tuple(probs.shape)}")
    conf, pred = probs.max(1)
    wrong = torch.nonzero(pred != true).flatten().tolist()
    other_right = (other.argmax(1) == true) if other is not None else torch.zeros_like(true, dtype=torch.bool)
    return sorted(wrong, key=lambda r: (not bool(other_right[r]), -float(conf[r])))


def prediction_rows(probs: Mapping[str, torch.Tensor], true, row: int, classes: Sequence[str]) -> list[dict]:
    """One dict per model for video ``row``: ``model``, ``predicted`` (class name), ``confidence``,
    ``p_true`` (probability of the true class), ``right`` (bool)."""
    true = torch.as_tensor(true, dtype=torch.long).reshape(-1)
    y = int(true[row])
    out = []
    for name, p in probs.items():
        k = int(p[row].argmax())
        out.append({"model": name, "predicted": classes[k], "confidence": float(p[row, k]),
                    "p_true": float(p[row, y]), "right": k == y})
    return out


class VideoBrowser(FigureWidget):
    """A slider over chosen videos of a dataset: frames, and each model's class probabilities.

    Args:
        dataset: items ``(clip (3, T, H, W), label, ...)``.
        probs: ``{model name: (n, C) probabilities on dataset}`` (e.g. from :func:`model_probs`).
        classes: the C class names.
        rows: the videos to browse (default: every video), e.g. :func:`mistakes`.
        max_frames: frames shown per clip.

    ``.widget`` is the ipywidgets box to display, ``.slider`` its control (position in ``rows``),
    ``.current`` the :func:`prediction_rows` of the shown video; ``update()`` redraws.
    """

    def __init__(self, dataset: Dataset, probs: Mapping[str, torch.Tensor], classes: Sequence[str],
                 rows: Sequence[int] | None = None, max_frames: int = 8):
        import ipywidgets as w

        self.dataset, self.probs, self.classes = dataset, dict(probs), list(classes)
        n = len(next(iter(self.probs.values())))
        self.rows = list(rows) if rows is not None else list(range(n))
        if not self.rows:
            raise ValueError("no videos to browse (rows is empty)")
        self.true = torch.tensor([int(dataset[r][1]) for r in range(n)]) if n <= 5000 else None
        self.max_frames = max_frames
        self.slider = w.IntSlider(0, 0, len(self.rows) - 1, description="video", continuous_update=False)
        self._wire(self.slider, (self.slider,), plt.figure(figsize=(11, 4.2)))
        self.current: list[dict] = []
        self.update()

    def update(self) -> list[dict]:
        """Draw the video at the slider's position."""
        row = self.rows[self.slider.value]
        clip, label = self.dataset[row][0], int(self.dataset[row][1])
        self.current = prediction_rows(self.probs, self.true, row, self.classes)
        fig = self.figure
        fig.clear()
        frames = as_frames(clip)
        pick = np.linspace(0, len(frames) - 1, min(self.max_frames, len(frames))).round().astype(int)
        grid = fig.add_gridspec(2, len(pick), height_ratios=[1, 1.5], hspace=0.45)
        for c, t in enumerate(pick):
            ax = fig.add_subplot(grid[0, c])
            ax.imshow(frames[t]), ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"t={t}", fontsize=7)
        ax = fig.add_subplot(grid[1, :])
        k = np.arange(len(self.classes))
        width = 0.8 / len(self.probs)
        for m, (name, p) in enumerate(self.probs.items()):
            ax.bar(k + (m - (len(self.probs) - 1) / 2) * width, p[row].numpy(), width=width, label=name)
        ax.axvspan(label - 0.45, label + 0.45, color="tab:green", alpha=0.12, label="true class")
        ax.set_xticks(k, self.classes, rotation=25, ha="right", fontsize=8)
        ax.set_ylim(0, 1), ax.set_ylabel("probability"), ax.legend(fontsize=8, loc="upper right")
        said = "; ".join(f"{r['model']}: {r['predicted']} ({r['confidence']:.2f})" for r in self.current)
        fig.suptitle(f"video {row} ({self.slider.value + 1} of {len(self.rows)}), truly {self.classes[label]} | {said}",
                     fontsize=9)
        self._show()
        return self.current
