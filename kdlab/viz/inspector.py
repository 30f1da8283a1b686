"""Feature-distribution inspector: look at what the feature-distribution losses compare.

:func:`distribution_view` is the plain function behind the widget (tested without a browser):
for one stage pair and one channel it returns the teacher's and the student's distribution in
one of three views, and the loss value that view's ``fd_loss`` variant gives for the whole pair:

- ``"histogram"``: the channel's activation values over the batch and all positions;
- ``"softmax"``: the spatio-temporal softmax of the channel for one clip (what
  ``fd_loss(kind="channel_softmax")`` compares), positions sorted by the teacher's probability;
- ``"gaussian"``: the normal densities with the channel's mean and variance over the batch and
  positions (what ``fd_loss(kind="gaussian")`` compares).

:class:`FeatureInspector` wires ipywidgets controls (stage pair, channel, view, temperature, raw
or adapted features and, when given, a slider over training checkpoints) to that function and
redraws on every change. :func:`compared_features` is what it compares: the student's features
raw (:func:`match_shape`) or through a trained adapter, next to the teacher's on the same grid.
With the per-epoch states of one distillation run (:mod:`kdlab.viz.epochs`) the slider moves over
that student's own epochs, each shown through that epoch's adapters.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from kdlab.hooks import capture
from kdlab.modes import eval_mode
from kdlab.viz._widget import show_in
from kdlab.losses import fd_loss

VIEWS = ("histogram", "softmax", "gaussian")
_VIEW_LOSS = {"histogram": "mmd", "softmax": "channel_softmax", "gaussian": "gaussian"}


def match_shape(f_s: torch.Tensor, f_t: torch.Tensor, adapter=None) -> torch.Tensor:
    """Bring student features (B, C_s, T, H, W) to the teacher's shape for comparison.

    With a trained ``adapter`` (from a distillation objective) it is applied; without one the
    student is resampled to the teacher's (T, H, W) and its channels are repeated or cut to C_t
    (channel c of the student next to channel c of the teacher: a raw, unaligned comparison).
    """
    if adapter is not None:
        with torch.no_grad():
            return adapter.eval()(f_s)
    f = F.interpolate(f_s, size=f_t.shape[2:], mode="trilinear", align_corners=False) if f_s.shape[2:] != f_t.shape[2:] else f_s
    c_s, c_t = f.shape[1], f_t.shape[1]
    return f.repeat(1, -(-c_t // c_s), 1, 1, 1)[:, :c_t] if c_s != c_t else f


def compared_features(f_s: torch.Tensor, f_t: torch.Tensor, adapter=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's and the teacher's features as a loss compares them, ``(student, teacher)``.

    Without ``adapter``: :func:`match_shape` (raw) and the teacher as it is. With a trained
    adapter (a :class:`kdlab.losses.StageAdapter` of a distillation objective, in eval mode): the
    adapted student, and the teacher average-pooled onto the adapter's output grid, as the
    objective pools it (``grid="coarser"``, ``max_positions``).
    """
    f_s = match_shape(f_s, f_t, adapter)
    if adapter is not None and f_s.shape[2:] != f_t.shape[2:]:
        f_t = F.adaptive_avg_pool3d(f_t, tuple(f_s.shape[2:]))
    return f_s, f_t


def distribution_view(f_s: torch.Tensor, f_t: torch.Tensor, channel: int, view: str = "histogram",
                      temperature: float = 1.0, clip: int = 0, bins: int = 40) -> dict:
    """The two distributions of one channel in one view, plus the pair's loss.

    Args:
        f_s, f_t: student (already matched, see :func:`match_shape`) and teacher features, (B, C, T, H, W).
        channel: channel index in ``[0, C)``.
        view: ``"histogram"``, ``"softmax"`` or ``"gaussian"``.
        temperature: the softmax temperature (softmax view and its loss).
        clip: which clip of the batch the softmax view shows.

    Returns a dict with ``x`` (bin centres, positions or value grid), ``student`` and ``teacher``
    (arrays over ``x``), ``loss`` (the matching ``fd_loss`` variant on the whole pair, a float),
    ``loss_name`` and labels for the axes.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; valid: {', '.join(VIEWS)}")
    if f_s.shape != f_t.shape:
        raise ValueError(f"student {tuple(f_s.shape)} and teacher {tuple(f_t.shape)} features differ: match them first")
    if not 0 <= channel < f_t.shape[1]:
        raise ValueError(f"channel {channel} out of range [0, {f_t.shape[1]})")
    s = f_s[:, channel].detach().double()
    t = f_t[:, channel].detach().double()
    if view == "histogram":
        lo, hi = float(min(s.min(), t.min())), float(max(s.max(), t.max()))
        hi = hi if hi > lo else lo + 1e-6
        edges = np.linspace(lo, hi, bins + 1)
        student = np.histogram(s.numpy().ravel(), edges, density=True)[0]
        teacher = np.histogram(t.numpy().ravel(), edges, density=True)[0]
        x, xlabel, ylabel = (edges[:-1] + edges[1:]) / 2, "activation", "density"
    elif view == "softmax":
        p_t = torch.softmax(t[clip].flatten() / temperature, 0)
        p_s = torch.softmax(s[clip].flatten() / temperature, 0)
        order = torch.argsort(p_t, descending=True)
        teacher, student = p_t[order].numpy(), p_s[order].numpy()
        x, xlabel, ylabel = np.arange(len(order)), "position (sorted by teacher probability)", "probability"
    else:
        mean_s, std_s = float(s.mean()), float(s.std(unbiased=False)) + 1e-6
        mean_t, std_t = float(t.mean()), float(t.std(unbiased=False)) + 1e-6
        lo = min(mean_s - 4 * std_s, mean_t - 4 * std_t)
        hi = max(mean_s + 4 * std_s, mean_t + 4 * std_t)
        x = np.linspace(lo, hi, 200)
        student = np.exp(-0.5 * ((x - mean_s) / std_s) ** 2) / (std_s * np.sqrt(2 * np.pi))
        teacher = np.exp(-0.5 * ((x - mean_t) / std_t) ** 2) / (std_t * np.sqrt(2 * np.pi))
        xlabel, ylabel = "activation", "density"
    kind = _VIEW_LOSS[view]
    options = {"temperature": temperature} if kind == "channel_softmax" else {}
    with torch.no_grad():
        loss = float(fd_loss(f_s.float(), f_t.float(), kind=kind, **options))
    return {"x": np.asarray(x), "student": np.asarray(student), "teacher": np.asarray(teacher), "loss": loss,
            "loss_name": f"fd_loss(kind={kind!r})", "xlabel": xlabel, "ylabel": ylabel}


def draw_view(ax, data: dict, title: str = "") -> None:
    """Plot one :func:`distribution_view` result on ``ax``."""
    ax.clear()
    style = ax.step if data["xlabel"] == "activation" and len(data["x"]) < 100 else ax.plot
    style(data["x"], data["teacher"], label="teacher", color="tab:blue")
    style(data["x"], data["student"], label="student", color="tab:orange")
    ax.fill_between(data["x"], data["teacher"], alpha=0.15, color="tab:blue")
    ax.set_xlabel(data["xlabel"])
    ax.set_ylabel(data["ylabel"])
    ax.set_title(f"{title}\n{data['loss_name']} = {data['loss']:.4f}", fontsize=9)
    ax.legend(fontsize=8)


class FeatureInspector:
    """Interactive comparison of student and teacher feature distributions.

    Args:
        student, teacher: stage-structured models (``stage_names``).
        clips: a probe batch (B, 3, T, H, W).
        pairs: (student stage, teacher stage) pairs to offer (default: stage i with stage i, then
            every other pair that has an adapter).
        adapters: optional ``{(s, t): adapter}`` from a trained distillation objective.
        checkpoints: optional ``{label: weights}`` for a slider, e.g. per epoch. ``weights`` is the
            student's state dict, or ``{"model": state dict, "adapters": {(s, t): adapter},
            "pairing": {(s, t): W}}`` (:meth:`kdlab.viz.epochs.EpochStates.checkpoints`): then the
            adapted view at that checkpoint uses *its* adapters.

    ``.widget`` is the ipywidgets box to display; ``.pair``, ``.channel``, ``.view``,
    ``.temperature``, ``.features`` ("raw" or "adapted") and ``.checkpoint`` are its controls;
    ``.data`` is the current view (with ``adapter``: the adapter used, or None).
    """

    def __init__(self, student, teacher, clips: torch.Tensor, pairs: Sequence[tuple[str, str]] | None = None,
                 adapters: Mapping | None = None, checkpoints: Mapping[str, dict] | None = None):
        import ipywidgets as w

        self.student, self.teacher, self.clips = student, teacher, clips
        self.adapters = dict(adapters or {})
        self.checkpoints = {label: value if "model" in value else {"model": value}
                            for label, value in (checkpoints or {}).items()}
        adapted = [*self.adapters, *(p for c in self.checkpoints.values() for p in c.get("adapters", {}))]
        same_depth = list(zip(student.stage_names, teacher.stage_names))
        self.pairs = list(pairs or dict.fromkeys([*(p for p in same_depth if p in adapted or not adapted),
                                                  *(p for p in sorted(set(adapted)) if p not in same_depth)]))
        self._features: dict = {}
        self.teacher_features = self._run(teacher, [t for _, t in self.pairs])
        self.pair = w.Dropdown(options=[(f"{s} -> {t}", (s, t)) for s, t in self.pairs], description="stages")
        self.channel = w.IntSlider(0, 0, 1, description="channel", continuous_update=False)
        self.view = w.ToggleButtons(options=VIEWS, value="histogram", description="view")
        self.temperature = w.FloatLogSlider(1.0, base=10, min=-1, max=1, description="temperature",
                                            continuous_update=False)
        self.features = w.ToggleButtons(options=("raw", "adapted"), value="adapted" if adapted else "raw",
                                        description="student", disabled=not adapted,
                                        tooltips=("channels repeated, no adapter", "through the trained adapter"))
        labels = list(self.checkpoints) or ["current"]
        self.checkpoint = w.SelectionSlider(options=labels, value=labels[-1], description="checkpoint",
                                            continuous_update=False, disabled=not self.checkpoints)
        self.output = w.Output()
        self.figure, self.ax = plt.subplots(figsize=(6, 3.4))
        plt.close(self.figure)  # shown through the Output widget only
        for control in (self.pair, self.channel, self.view, self.temperature, self.features, self.checkpoint):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.pair, self.checkpoint]), self.features, self.view,
                              w.HBox([self.channel, self.temperature]), self.output])
        self.data: dict = {}
        self.update()

    def _run(self, model, names) -> dict:
        with eval_mode(model), torch.no_grad():
            _, features = capture(model, self.clips, sorted(set(names)), detach=True)
        return features

    def student_features(self, label: str) -> dict:
        """Tapped student features for a checkpoint label (computed once each)."""
        if label not in self._features:
            if label in self.checkpoints:
                current = {k: v.clone() for k, v in self.student.state_dict().items()}
                self.student.load_state_dict(self.checkpoints[label]["model"])
                self._features[label] = self._run(self.student, [s for s, _ in self.pairs])
                self.student.load_state_dict(current)
            else:
                self._features[label] = self._run(self.student, [s for s, _ in self.pairs])
        return self._features[label]

    def adapter(self, pair: tuple[str, str], label: str):
        """The adapter the adapted view uses for ``pair`` at checkpoint ``label`` (that checkpoint's
        own, else the one given as ``adapters``; None when there is none)."""
        own = self.checkpoints.get(label, {}).get("adapters", {})
        return own.get(pair, self.adapters.get(pair))

    def update(self) -> dict:
        """Recompute the view for the current controls and redraw (the widgets' callback)."""
        s_name, t_name = pair = self.pair.value
        label = self.checkpoint.value
        adapter = self.adapter(pair, label) if self.features.value == "adapted" else None
        f_s, f_t = compared_features(self.student_features(label)[s_name], self.teacher_features[t_name], adapter)
        self.channel.max = f_t.shape[1] - 1
        self.data = distribution_view(f_s, f_t, min(self.channel.value, f_t.shape[1] - 1), self.view.value,
                                      self.temperature.value)
        self.data["adapter"] = adapter
        weight = self.checkpoints.get(label, {}).get("pairing", {}).get(pair)
        how = "adapted" if adapter is not None else "raw"
        title = f"{s_name} -> {t_name} ({how}{'' if weight is None else f', W = {weight:.2f}'}), channel {self.channel.value}"
        draw_view(self.ax, self.data, f"{label}: {title}" if self.checkpoints else title)
        self.figure.tight_layout()
        show_in(self.output, self.figure)
        return self.data


def inspect_features(student, teacher, loader_or_clips, **kwargs) -> FeatureInspector:
    """Build a :class:`FeatureInspector` on a probe batch (a clip tensor or the first batch of a loader)."""
    clips = loader_or_clips if isinstance(loader_or_clips, torch.Tensor) else next(iter(loader_or_clips))[0]
    return FeatureInspector(student, teacher, clips, **kwargs)
