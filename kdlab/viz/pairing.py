"""The correlation/pairing explorer: a distillation run's recorded R and W, epoch by epoch.

A :class:`~kdlab.distill.Distillation` objective with a correlation-based pairing records, at the
start of every epoch, the substage correlation R (S_student, S_teacher) and the pairing W it then
uses (history entries ``R/<student stage>-<teacher stage>`` and ``W/...``;
:func:`kdlab.students.matrices_from_history` turns them into matrices). :func:`pairing_view`
computes what the explorer shows for one epoch (tested without a browser): R, W, and for the
CKA-softmax rule the W that row-softmax(R / tau) gives, with their largest difference.
:class:`PairingExplorer` wires an epoch slider to the two heatmaps.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from kdlab.correlation import softmax_pairing

from ._widget import FigureWidget
from .heatmaps import plot_correlation

__all__ = ["pairing_view", "PairingExplorer"]


def pairing_view(R_history: Sequence, W_history: Sequence, index: int, tau: float | None = None) -> dict:
    """R and W (S_student, S_teacher) of record ``index``; with ``tau``, also ``W_from_R`` =
    row-softmax(R / tau) and ``max_diff`` = max |W - W_from_R| (0 up to rounding when W was made
    by the CKA-softmax rule from this R). Also ``best``: each student stage's teacher stage of
    largest W (list of column indices)."""
    if len(R_history) != len(W_history):
        raise ValueError(f"{len(R_history)} R matrices but {len(W_history)} W matrices: one of each per epoch")
    if not 0 <= index < len(R_history):
        raise IndexError(f"record {index} out of range for {len(R_history)} epochs")
    R = torch.as_tensor(R_history[index], dtype=torch.float64)
    W = torch.as_tensor(W_history[index], dtype=torch.float64)
    if R.shape != W.shape or R.dim() != 2:
        raise ValueError(f"R {tuple(R.shape)} and W {tuple(W.shape)} must be the same (S_student, S_teacher) shape")
    view = {"R": R, "W": W, "best": W.argmax(1).tolist()}
    if tau is not None:
        view["W_from_R"] = softmax_pairing(R, tau).double()
        view["max_diff"] = float((W - view["W_from_R"]).abs().max())
    return view


class PairingExplorer(FigureWidget):
    """An epoch slider over a run's recorded R and W, drawn side by side.

    Args:
        R_history, W_history: one (S_student, S_teacher) matrix per recorded epoch.
        student_names, teacher_names: stage names for the axes.
        epochs: the epoch of each record (default 0, 1, ...), shown 1-based.
        tau: the CKA-softmax temperature, to show how far W is from row-softmax(R / tau).

    ``.widget`` is the ipywidgets box to display, ``.slider`` its control, ``.view`` the current
    :func:`pairing_view` dict; ``update()`` redraws.
    """

    def __init__(self, R_history, W_history, student_names=None, teacher_names=None, epochs=None,
                 tau: float | None = None):
        import ipywidgets as w

        self.R_history, self.W_history = list(R_history), list(W_history)
        self.names = dict(student_names=student_names, teacher_names=teacher_names)
        self.epochs = list(epochs) if epochs is not None else list(range(len(self.R_history)))
        self.tau = tau
        pairing_view(self.R_history, self.W_history, 0, tau)  # checks the inputs
        self.slider = w.IntSlider(0, 0, len(self.R_history) - 1, description="record", continuous_update=False)
        figure, self.axes = plt.subplots(1, 2, figsize=(10, 3.8))
        self._wire(self.slider, (self.slider,), figure)
        self.view: dict = {}
        self.update()

    def update(self) -> dict:
        """Draw R and W of the record at the slider's position."""
        k = self.slider.value
        self.view = pairing_view(self.R_history, self.W_history, k, self.tau)
        fig = self.figure
        for ax in list(fig.axes):
            if ax not in self.axes:
                ax.remove()  # last draw's colour bars
        for ax in self.axes:
            ax.clear()
        plot_correlation(self.view["R"], ax=self.axes[0], title=f"R at the start of epoch {self.epochs[k] + 1}",
                         vmin=None, **self.names)
        plot_correlation(self.view["W"], ax=self.axes[1], cmap="magma", vmin=0.0, vmax=1.0,
                         title=f"W used in epoch {self.epochs[k] + 1}", **self.names)
        if self.tau is not None:
            fig.suptitle(f"W = row-softmax(R / {self.tau:g}): largest difference {self.view['max_diff']:.1e}",
                         fontsize=9)
        fig.tight_layout()
        self._show()
        return self.view
