"""Plain knowledge distillation, shown: soft targets, temperature and the KD gradient of one video.

:func:`kd_view` is the plain computation behind the widget (tested without a browser): for one
video's teacher logits z_t (K,) and student logits z_s (K,) at temperature T it returns the
softened distributions p^T = softmax(z / T), the KD loss of :func:`kdlab.losses.kd_loss` and its
gradient with respect to the student's logits,

    d/dz_s [ T^2 * KL(p_t^T || p_s^T) ] = T * (p_s^T - p_t^T)          (the T^2-scaled loss)
    d/dz_s [       KL(p_t^T || p_s^T) ] = (p_s^T - p_t^T) / T          (without the factor).

:class:`KDExplorer` wires a temperature slider and a "T^2 factor" checkbox to a two-panel plot
(soft targets; gradient). See docs/method.md, section 1.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from kdlab.losses import kd_loss

from ._widget import FigureWidget

__all__ = ["kd_view", "draw_kd", "KDExplorer"]


def _logits(name: str, z) -> torch.Tensor:
    z = torch.as_tensor(z, dtype=torch.float64).detach().cpu()
    if z.dim() == 2 and z.shape[0] == 1:
        z = z[0]
    if z.dim() != 1 or z.numel() < 2:
        raise ValueError(f"{name}: expected the logits of one video, (K,) with K >= 2, got {tuple(z.shape)}")
    return z


def kd_view(teacher_logits, student_logits, temperature: float, scaled: bool = True) -> dict:
    """Soft targets, KD loss and KD gradient of one video at temperature T.

    Args:
        teacher_logits, student_logits: (K,) (or (1, K)) logits of the same video.
        temperature: T > 0.
        scaled: True for kdlab's loss T^2 * KL (gradient T * (p_s - p_t)); False for the plain
            KL (gradient (p_s - p_t) / T).

    Returns a dict of numpy arrays (K,): ``teacher`` p_t^T, ``student`` p_s^T, ``gradient``; and
    floats ``loss`` (the loss as ``scaled`` says), ``dark`` (teacher mass off its argmax:
    1 - max p_t^T), ``entropy`` (of p_t^T, in nats), ``temperature``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z_t, z_s = _logits("teacher_logits", teacher_logits), _logits("student_logits", student_logits)
    if z_t.shape != z_s.shape:
        raise ValueError(f"teacher logits {tuple(z_t.shape)} and student logits {tuple(z_s.shape)} differ")
    T = float(temperature)
    p_t, p_s = torch.softmax(z_t / T, 0), torch.softmax(z_s / T, 0)
    loss = kd_loss(z_s[None], z_t[None], T).item()  # T^2 * KL, B = 1
    gradient = T * (p_s - p_t) if scaled else (p_s - p_t) / T
    return {
        "teacher": p_t.numpy(), "student": p_s.numpy(), "gradient": gradient.numpy(),
        "loss": loss if scaled else loss / T**2, "dark": 1.0 - p_t.max().item(),
        "entropy": float(-(p_t * p_t.clamp_min(1e-300).log()).sum()), "temperature": T, "scaled": scaled,
    }


def draw_kd(axes, view: dict, classes: Sequence[str], highlight: Sequence[int] = (), grad_limit: float | None = None):
    """Draw :func:`kd_view`'s dict on two axes: soft targets (teacher and student bars), gradient.

    ``highlight``: class indices whose tick labels are drawn in bold (e.g. a mirrored pair).
    ``grad_limit``: fixed y-range of the gradient panel (so moving T shows the scale change).
    """
    ax_p, ax_g = axes
    k = np.arange(len(classes))
    ax_p.clear(), ax_g.clear()
    ax_p.bar(k - 0.2, view["teacher"], width=0.4, color="tab:blue", label="teacher $p_t^T$")
    ax_p.bar(k + 0.2, view["student"], width=0.4, color="tab:orange", label="student $p_s^T$")
    ax_p.set_ylim(0, 1), ax_p.set_ylabel("probability")
    ax_p.set_title(f"soft targets at T = {view['temperature']:.2f}: dark knowledge (mass off the argmax) "
                   f"{view['dark']:.2f}", fontsize=9)
    ax_p.legend(fontsize=8, loc="upper right")
    colors = ["tab:red" if g > 0 else "tab:green" for g in view["gradient"]]
    ax_g.bar(k, view["gradient"], color=colors)
    ax_g.axhline(0, color="k", lw=0.8)
    name = "T (p_s - p_t)" if view["scaled"] else "(p_s - p_t) / T"
    ax_g.set_title(f"gradient of the KD loss w.r.t. the student's logits = {name}; loss {view['loss']:.3f}",
                   fontsize=9)
    ax_g.set_ylabel("d loss / d z_s")
    if grad_limit:
        ax_g.set_ylim(-grad_limit, grad_limit)
    for ax in axes:
        ax.set_xticks(k, list(classes), rotation=35, ha="right", fontsize=8)
        for c in highlight:
            ax.get_xticklabels()[c].set_fontweight("bold")


class KDExplorer(FigureWidget):
    """A temperature slider (and a T^2-factor checkbox) over one video's soft targets and KD gradient.

    Args:
        teacher_logits, student_logits: (K,) logits of one video.
        classes: K class names.
        highlight: class indices to mark (e.g. the video's class and its mirror).
        temperature: the slider's start value.

    ``.widget`` is the ipywidgets box to display; ``.temperature`` and ``.scaled`` its controls;
    ``.view`` the current :func:`kd_view` dict; ``update()`` redraws (the controls' callback).
    """

    def __init__(self, teacher_logits, student_logits, classes: Sequence[str], highlight: Sequence[int] = (),
                 temperature: float = 1.0):
        import ipywidgets as w

        self.teacher_logits, self.student_logits = teacher_logits, student_logits
        self.classes, self.highlight = list(classes), list(highlight)
        self.temperature = w.FloatLogSlider(temperature, base=10, min=-0.5, max=1.3, step=0.02,
                                            description="T", continuous_update=False, readout_format=".2f")
        self.scaled = w.Checkbox(True, description="T\u00b2 factor in the loss")
        # One y-range for the gradient over the slider's range, so the scale change is visible.
        grid = np.logspace(-0.5, 1.3, 40)
        self.grad_limit = 1.1 * max(np.abs(kd_view(teacher_logits, student_logits, T, s)["gradient"]).max()
                                    for T in grid for s in (True, False))
        figure, self.axes = plt.subplots(1, 2, figsize=(11, 3.4))
        self._wire(w.HBox([self.temperature, self.scaled]), (self.temperature, self.scaled), figure)
        self.view: dict = {}
        self.update()

    def update(self) -> dict:
        """Recompute :func:`kd_view` for the controls and redraw."""
        self.view = kd_view(self.teacher_logits, self.student_logits, self.temperature.value, self.scaled.value)
        draw_kd(self.axes, self.view, self.classes, self.highlight, self.grad_limit)
        self.figure.tight_layout()
        self._show()
        return self.view
