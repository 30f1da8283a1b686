"""Heatmaps of substage correlation R and pairing weights W, over one epoch or many.

Rows are student stages, columns teacher stages, each cell annotated with its value. The slider
keeps its drawing logic in :func:`draw_epoch`, a plain function, so tests (and curious readers)
can drive it by setting ``slider.value`` without a browser.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_correlation",
    "plot_correlation_history",
    "plot_correlation_row",
    "draw_epoch",
    "CorrelationSlider",
    "correlation_slider",
]


def _matrix_and_names(R: Any, student_names, teacher_names) -> tuple[np.ndarray, list[str], list[str]]:
    """Accept a tensor, an array or a SubstageCorrelation; fill in names where missing."""
    if hasattr(R, "R") and hasattr(R, "student_names"):  # a SubstageCorrelation
        student_names = student_names or R.student_names
        teacher_names = teacher_names or R.teacher_names
        R = R.R
    if hasattr(R, "detach"):
        R = R.detach().cpu().numpy()
    M = np.asarray(R, dtype=float)
    if M.ndim != 2:
        raise ValueError(f"expected a (S_student, S_teacher) matrix, got shape {M.shape}")
    s = list(student_names) if student_names is not None else [f"s{i + 1}" for i in range(M.shape[0])]
    t = list(teacher_names) if teacher_names is not None else [f"t{j + 1}" for j in range(M.shape[1])]
    if (len(s), len(t)) != M.shape:
        raise ValueError(
            f"{len(s)} student and {len(t)} teacher names do not fit a matrix of shape {M.shape}"
        )
    return M, s, t


def plot_correlation(
    R: Any,
    student_names: Sequence[str] | None = None,
    teacher_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str = "substage correlation (linear CKA)",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    fmt: str = ".2f",
    cbar: bool = True,
    cbar_ax: Axes | None = None,
) -> Axes:
    """Annotated heatmap of R (or of a pairing W) with stage names on the axes; returns the Axes.

    ``R``: (S_student, S_teacher) tensor / array, or a ``SubstageCorrelation`` (its names are used).
    Debiased CKA can dip below 0: pass ``vmin=None`` to let the colour scale follow the data.
    """
    M, s, t = _matrix_and_names(R, student_names, teacher_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.9 * M.shape[1], 0.8 + 0.7 * M.shape[0]))
    sns.heatmap(
        M, ax=ax, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, square=True,
        xticklabels=t, yticklabels=s, cbar=cbar, cbar_ax=cbar_ax, linewidths=0.5,
    )
    ax.set_xlabel("teacher stage")
    ax.set_ylabel("student stage")
    ax.tick_params(axis="y", labelrotation=0)
    if title:
        ax.set_title(title)
    return ax


def plot_correlation_history(
    history: Sequence[Any],
    student_names: Sequence[str] | None = None,
    teacher_names: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
    ncols: int = 4,
    title: str = "substage correlation over epochs",
    **heatmap_kwargs,
) -> Figure:
    """Small multiples: one annotated heatmap per epoch, one shared colour scale and colour bar."""
    if not history:
        raise ValueError("history is empty: pass one R matrix per epoch")
    epochs = list(epochs) if epochs is not None else list(range(len(history)))
    if len(epochs) != len(history):
        raise ValueError(f"{len(epochs)} epoch labels for {len(history)} matrices")
    M0, _, _ = _matrix_and_names(history[0], student_names, teacher_names)
    ncols = max(1, min(ncols, len(history)))
    nrows = math.ceil(len(history) / ncols)
    w, h = 1.0 + 0.8 * M0.shape[1], 0.6 + 0.7 * M0.shape[0]
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols + 1.0, h * nrows + 0.6), squeeze=False)
    cax = fig.add_axes([0.93, 0.15, 0.015, 0.7])
    fig.subplots_adjust(right=0.9)
    for k, ax in enumerate(axes.flat):
        if k >= len(history):
            ax.set_visible(False)
            continue
        plot_correlation(
            history[k], student_names, teacher_names, ax=ax, title=f"epoch {epochs[k]}",
            cbar=(k == 0), cbar_ax=cax if k == 0 else None, **heatmap_kwargs,
        )
        if k % ncols:  # names only on the first column, to save room
            ax.set_ylabel("")
    fig.suptitle(title)
    return fig


def draw_epoch(
    ax: Axes,
    cax: Axes,
    history: Sequence[Any],
    index: int,
    student_names: Sequence[str] | None = None,
    teacher_names: Sequence[str] | None = None,
    epochs: Sequence[int] | None = None,
    **heatmap_kwargs,
) -> None:
    """Redraw ``ax`` (and its colour bar ``cax``) with the matrix of ``history[index]``."""
    if not 0 <= index < len(history):
        raise IndexError(f"epoch index {index} out of range for {len(history)} matrices")
    label = epochs[index] if epochs is not None else index
    ax.clear()
    cax.clear()
    plot_correlation(
        history[index], student_names, teacher_names, ax=ax, cbar_ax=cax,
        title=f"epoch {label}", **heatmap_kwargs,
    )


class CorrelationSlider:
    """An epoch slider above a heatmap. ``.widget`` is what a notebook displays.

    Attributes: ``slider`` (ipywidgets.IntSlider over indices into ``history``), ``figure``,
    ``ax`` and ``index`` (the epoch index drawn last).
    """

    def __init__(self, history, student_names=None, teacher_names=None, epochs=None, **heatmap_kwargs):
        import ipywidgets as widgets

        if not history:
            raise ValueError("history is empty: pass one R matrix per epoch")
        self.history = list(history)
        self._args = dict(student_names=student_names, teacher_names=teacher_names, epochs=epochs)
        self._kwargs = heatmap_kwargs
        M0, _, _ = _matrix_and_names(self.history[0], student_names, teacher_names)
        # A Figure outside pyplot: it is shown only through the Output widget, never twice,
        # and is freed with this object.
        self.figure = Figure(figsize=(2.0 + 0.9 * M0.shape[1], 1.2 + 0.7 * M0.shape[0]))
        self.ax = self.figure.add_axes([0.2, 0.18, 0.62, 0.7])
        self.cax = self.figure.add_axes([0.86, 0.18, 0.03, 0.7])
        self.output = widgets.Output()
        self.slider = widgets.IntSlider(
            value=len(self.history) - 1, min=0, max=len(self.history) - 1, description="epoch",
            continuous_update=False,
        )
        self.slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.slider, self.output])
        self.index = -1
        self.show(self.slider.value)

    def show(self, index: int) -> None:
        """Draw ``history[index]`` and refresh the output area."""
        draw_epoch(self.ax, self.cax, self.history, index, **self._args, **self._kwargs)
        self.index = index
        from kdlab.viz._widget import show_in

        show_in(self.output, self.figure)

    def _on_change(self, change: dict) -> None:
        self.show(change["new"])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def correlation_slider(history, student_names=None, teacher_names=None, epochs=None, **heatmap_kwargs):
    """A :class:`CorrelationSlider` over a list of R matrices (one per epoch)."""
    return CorrelationSlider(history, student_names, teacher_names, epochs, **heatmap_kwargs)


def plot_correlation_row(
    panels: dict,
    vmin: float | None = None,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    label: str = "",
    title: str = "",
    width: float = 4.0,
    height: float = 3.6,
) -> Figure:
    """Side-by-side annotated heatmaps on **one** colour scale with **one** colour bar.

    ``panels``: ``{title: R}`` or ``{title: (R, student_names, teacher_names)}``, each R an
    (S_student, S_teacher) tensor / array or a ``SubstageCorrelation``. ``vmin=None``: the
    smaller of 0 and the smallest entry (debiased CKA can dip below 0); ``vmax=None``: the
    largest entry. ``label`` names the colour bar (e.g. "linear CKA" or "pairing weight W").
    Returns the Figure; its last axes is the colour bar.
    """
    if not panels:
        raise ValueError("panels is empty: pass {title: R} for at least one matrix")
    items = []
    for name, value in panels.items():
        R, s, t = value if isinstance(value, tuple) else (value, None, None)
        items.append((name, *_matrix_and_names(R, s, t)))
    every = np.concatenate([M.ravel() for _, M, _, _ in items])
    lo = min(0.0, float(np.nanmin(every))) if vmin is None else vmin
    hi = float(np.nanmax(every)) if vmax is None else vmax
    n = len(items)
    fig, axes = plt.subplots(1, n, figsize=(width * n + 0.8, height), squeeze=False)
    fig.subplots_adjust(left=0.06, right=0.9, wspace=0.35, bottom=0.18, top=0.82 if title else 0.88)
    cax = fig.add_axes([0.92, 0.2, 0.012, 0.62])
    for k, (ax, (name, M, s, t)) in enumerate(zip(axes[0], items)):
        plot_correlation(M, s, t, ax=ax, title=name, vmin=lo, vmax=hi, cmap=cmap, cbar=(k == 0),
                         cbar_ax=cax if k == 0 else None)
        if k:
            ax.set_ylabel("")
    if label:
        cax.set_ylabel(label)
    if title:
        fig.suptitle(title)
    return fig
