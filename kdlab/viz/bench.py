"""Plots of a benchmark result (:mod:`kdlab.bench`): accuracy vs FLOPs, budget curves, ablation bars.

Each function takes the result dict (as stored in ``results/benchmark.json``) and an optional
axis, and returns the figure. :func:`save_plots` writes all three as PNGs beside the JSON.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_accuracy_flops", "plot_budget_curves", "plot_ablations", "save_plots"]


def _axis(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def plot_accuracy_flops(result: dict, ax=None):
    """Test top-1 (mean ± std over seeds) against inference MFLOPs per clip: the teacher and every
    method (all students share one architecture, so they stand in one column, labelled)."""
    fig, ax = _axis(ax, (7, 4.2))
    t = result["teacher"]
    ax.scatter([t["flops"] / 1e6], [t["acc"]], marker="*", s=160, color="tab:red", label=f"teacher ({t['protocol']})",
               zorder=3)
    methods = result["methods"]
    order = sorted(methods, key=lambda n: methods[n]["mean"])
    for k, name in enumerate(order):
        e = methods[name]
        x = e["flops"] / 1e6
        color = "tab:green" if name == "skd" else ("tab:grey" if name.startswith("scratch") else "tab:blue")
        ax.errorbar([x], [e["mean"]], yerr=[e["std"]], fmt="o", color=color, capsize=3, zorder=2)
        ax.annotate(name, (x, e["mean"]), xytext=(8 + 46 * (k % 3), 0), textcoords="offset points", va="center",
                    fontsize=8, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("inference MFLOPs per clip (log)")
    ax.set_ylabel("test top-1 (%), last epoch")
    ax.set_title(f"{result['budget']:g} % labels, {len(result['seeds'])} seed(s)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_budget_curves(result: dict, ax=None):
    """Test top-1 against the label budget (log scale), one line per swept method, plus the teacher."""
    fig, ax = _axis(ax, (6.5, 4))
    sweep = result.get("sweep") or {}
    budgets = sweep.get("budgets", [])
    teacher = [(b, a) for b, a in zip(budgets, sweep.get("teacher_acc", [])) if a is not None]
    if teacher:
        ax.plot(*zip(*teacher), "k--", marker="*", label=f"teacher ({result['teacher']['protocol']})")
    for name, rows in sweep.get("methods", {}).items():
        b = np.array([r["budget"] for r in rows])
        m = np.array([r["mean"] for r in rows])
        s = np.array([r["std"] for r in rows])
        line, = ax.plot(b, m, marker="o", label=name)
        ax.fill_between(b, m - s, m + s, color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    if budgets:
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
    ax.set_xlabel("labelled training videos (%)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"label-budget sweep, seeds {', '.join(map(str, sweep.get('seeds', [])))}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_ablations(result: dict, ax=None):
    """Each ablation's change in test top-1 against the run it differs from (points, ± its std)."""
    fig, ax = _axis(ax, (6.5, 0.5 + 0.45 * max(1, len(result.get("ablations", {})))))
    abl = {n: e for n, e in result.get("ablations", {}).items() if e.get("delta") is not None}
    names = list(abl)
    deltas = [abl[n]["delta"] for n in names]
    errs = [abl[n]["std"] for n in names]
    colors = ["tab:red" if d < 0 else "tab:green" for d in deltas]
    ax.barh(names, deltas, xerr=errs, color=colors, capsize=3)
    ax.axvline(0, color="k", lw=1)
    for y, (n, d) in enumerate(zip(names, deltas)):
        ax.annotate(f"{d:+.1f} vs {abl[n]['reference']}", (d, y), xytext=(4 if d >= 0 else -4, 0),
                    textcoords="offset points", ha="left" if d >= 0 else "right", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("change in test top-1 (points) when the part is switched off")
    ax.set_title("SKD ablations")
    return fig


def save_plots(result: dict, folder: str | Path, stem: str = "benchmark") -> list[Path]:
    """Write ``<stem>-flops.png``, ``<stem>-budgets.png`` and ``<stem>-ablations.png`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, fn in (("flops", plot_accuracy_flops), ("budgets", plot_budget_curves), ("ablations", plot_ablations)):
        fig = fn(result)
        path = folder / f"{stem}-{suffix}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
