"""Plots of training runs: learning curves, confusion matrices, result bars."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def _records(run) -> list[dict]:
    """Accepts a History, a list of epoch records, or an ``info`` dict with a ``history`` list."""
    if hasattr(run, "records"):
        return run.records
    if isinstance(run, Mapping):
        return run["history"]
    return list(run)


def plot_history(runs: Mapping[str, object], keys: Sequence[str] = ("train/loss", "val/top1"), axes=None):
    """One panel per key (e.g. training loss, validation top-1), one line per named run."""
    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
        axes = axes[0]
    for ax, key in zip(axes, keys):
        for name, run in runs.items():
            records = _records(run)
            epochs = [r["epoch"] + 1 for r in records if key in r]
            ax.plot(epochs, [r[key] for r in records if key in r], marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    plt.tight_layout()
    return axes[0].figure


def plot_confusion(confusion, classes: Sequence[str], ax=None, title: str = "", normalize: bool = True):
    """Heatmap of a confusion matrix (rows: true class, columns: predicted), row-normalised to %."""
    matrix = np.asarray(confusion, dtype=float)
    if normalize:
        matrix = 100 * matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * len(classes) + 2.5, 0.5 * len(classes) + 2))
    sns.heatmap(matrix, annot=len(classes) <= 12, fmt=".0f", cmap="Blues", vmin=0, vmax=100 if normalize else None,
                xticklabels=classes, yticklabels=classes, cbar=False, ax=ax, annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.tick_params(labelsize=7)
    return ax.figure


def plot_results(results: Mapping[str, float], ax=None, chance: float | None = None, title: str = "test top-1 (%)"):
    """Horizontal bars of one number per named model, with an optional chance line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(results) + 1))
    names = list(results)
    ax.barh(names, [results[n] for n in names], color=sns.color_palette("deep", len(names)))
    for i, n in enumerate(names):
        ax.text(results[n] + 1, i, f"{results[n]:.1f}", va="center", fontsize=8)
    if chance is not None:
        ax.axvline(chance, color="grey", ls="--", lw=1, label="chance")
        ax.legend(fontsize=8)
    ax.set_xlim(0, 105)
    ax.invert_yaxis()
    ax.set_title(title)
    plt.tight_layout()
    return ax.figure
