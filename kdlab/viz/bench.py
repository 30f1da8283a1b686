"""Plots of a benchmark result (:mod:`kdlab.bench`): accuracy vs FLOPs, budget curves, paired
differences to KD and ablation bars with 95 % intervals.

Each function takes the result dict (as stored in ``results/benchmark.json``) and an optional
axis, and returns the figure. :func:`save_plots` writes all three as PNGs beside the JSON.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_accuracy_flops", "plot_budget_curves", "plot_ablations", "plot_vs_kd", "save_plots"]


def _axis(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def plot_accuracy_flops(result: dict, ax=None, spread: float = 0.3):
    """Test top-1 (mean ± std over seeds) against inference MFLOPs per clip: the teacher and every
    method. All students share one architecture, hence one FLOPs value: to keep them apart they are
    spread over ``spread`` decades either side of it (ordered by accuracy), on a shaded band that
    says so, each labelled; the dotted line marks their true FLOPs."""
    fig, ax = _axis(ax, (7.5, 4.4))
    t = result["teacher"]
    ax.scatter([t["flops"] / 1e6], [t["acc"]], marker="*", s=160, color="tab:red", label=f"teacher ({t['protocol']})",
               zorder=3)
    methods = result["methods"]
    order = sorted(methods, key=lambda n: methods[n]["mean"])
    offsets = np.linspace(-spread, spread, len(order)) if len(order) > 1 else np.zeros(len(order))
    columns = sorted({methods[n]["flops"] for n in order})
    for x0 in columns:
        x = x0 / 1e6
        ax.axvspan(x * 10 ** (-spread * 1.3), x * 10 ** (spread * 1.3), color="0.93", zorder=0)
        ax.axvline(x, color="0.5", ls=":", lw=1, zorder=1)
        ax.annotate(f"students: {x:.0f} MFLOPs each\n(spread sideways to be legible)", (x, 0), xycoords=("data", "axes fraction"),
                    xytext=(0, 4), textcoords="offset points", ha="center", va="bottom", fontsize=7, color="0.35")
    for k, name in enumerate(order):
        e = methods[name]
        x = e["flops"] / 1e6 * 10 ** offsets[k]
        color = "tab:green" if name == "skd" else ("tab:grey" if name.startswith("scratch") else "tab:blue")
        ax.errorbar([x], [e["mean"]], yerr=[e["std"]], fmt="o", color=color, capsize=3, zorder=2)
        ax.annotate(name, (x, e["mean"] + e["std"]), xytext=(0, 4), textcoords="offset points", ha="center",
                    va="bottom", rotation=90, fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("inference MFLOPs per clip (log)")
    ax.set_ylabel("test top-1 (%), last epoch")
    ax.set_title(f"{result['budget']:g} % labels, {len(result['seeds'])} seed(s)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax.set_ylim(top=ax.get_ylim()[1] + 0.25 * (ax.get_ylim()[1] - ax.get_ylim()[0]))
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


def _ci_bars(ax, names: list[str], diffs: list[float], cis: list, helped_when_negative: bool) -> None:
    """Horizontal bars of paired differences with 95 % CI whiskers, coloured by what the interval
    says: green where the compared part or method helps, red where it hurts, grey where the
    interval includes zero."""
    lo = [d - c[0] if c else 0.0 for d, c in zip(diffs, cis)]
    hi = [c[1] - d if c else 0.0 for d, c in zip(diffs, cis)]
    colors = []
    for c in cis:
        if c is None or c[0] <= 0 <= c[1]:
            colors.append("tab:grey")
        else:
            helps = (c[1] < 0) == helped_when_negative
            colors.append("tab:green" if helps else "tab:red")
    ax.barh(names, diffs, xerr=[lo, hi], color=colors, capsize=3)
    ax.axvline(0, color="k", lw=1)
    for y, (d, c) in enumerate(zip(diffs, cis)):
        text = f"{d:+.1f}" + (f" [{c[0]:+.1f}, {c[1]:+.1f}]" if c else "")
        ax.annotate(text, (d, y), xytext=(4 if d >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if d >= 0 else "right", va="center", fontsize=8)
    ax.invert_yaxis()


def plot_vs_kd(result: dict, ax=None):
    """Every method's paired difference to plain KD (points, mean over seeds) with its 95 % bootstrap
    interval: green bars are reliably better than KD, red reliably worse, grey not distinguishable."""
    methods = {n: e for n, e in result.get("methods", {}).items() if e.get("vs_kd") and n != "kd"}
    fig, ax = _axis(ax, (7, 0.6 + 0.42 * max(1, len(methods))))
    names = sorted(methods, key=lambda n: methods[n]["vs_kd"]["diff"], reverse=True)
    _ci_bars(ax, names, [methods[n]["vs_kd"]["diff"] for n in names], [methods[n]["vs_kd"]["ci95"] for n in names],
             helped_when_negative=False)
    ax.set_xlabel("test top-1 minus KD's, same seeds (points), 95 % CI")
    ax.set_title(f"against plain KD ({result['methods']['kd']['mean']:.1f} %), {len(result['seeds'])} seeds"
                 if "kd" in result.get("methods", {}) else "against plain KD")
    return fig


def plot_ablations(result: dict, ax=None):
    """Each ablation's change in test top-1 against the run it differs from (points, paired over the
    seeds, 95 % CI): a bar left of zero means the part that was switched off had helped (green when
    the interval says so reliably, red when switching it off helped, grey when it cannot tell)."""
    abl = {n: e for n, e in result.get("ablations", {}).items() if e.get("delta") is not None}
    fig, ax = _axis(ax, (7, 0.6 + 0.45 * max(1, len(abl))))
    names = list(abl)
    _ci_bars(ax, [f"{n} (vs {abl[n]['reference']})" for n in names], [abl[n]["delta"] for n in names],
             [abl[n].get("ci95") for n in names], helped_when_negative=True)
    ax.set_xlabel("change in test top-1 (points) when the part is switched off, 95 % CI")
    ax.set_title("SKD ablations")
    return fig


def save_plots(result: dict, folder: str | Path, stem: str = "benchmark") -> list[Path]:
    """Write ``<stem>-flops.png``, ``-budgets.png``, ``-ablations.png`` and ``-vs-kd.png`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    plots = (("flops", plot_accuracy_flops), ("budgets", plot_budget_curves), ("ablations", plot_ablations),
             ("vs-kd", plot_vs_kd))
    for suffix, fn in plots:
        fig = fn(result)
        path = folder / f"{stem}-{suffix}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
