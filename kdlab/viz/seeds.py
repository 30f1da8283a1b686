"""The seed explorer: one method against a reference (KD), seed by seed, with the paired interval.

:func:`paired_seeds` is the plain computation (tested without a browser): over the seeds both
entries of a benchmark result ran (the first ``max_seeds`` of them), the per-seed accuracies, their
differences, the mean difference and its 95 % percentile-bootstrap interval
(:func:`kdlab.bench.stats.paired_ci`), and the verdict. :class:`SeedExplorer` wires a method slider
and a seed-count slider to a plot: one line per seed joining the reference's accuracy to the
method's, and the interval beside it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from kdlab.bench.stats import paired_ci, verdict

from ._widget import FigureWidget

__all__ = ["paired_seeds", "SeedExplorer"]


def paired_seeds(result: dict, method: str, reference: str = "kd", max_seeds: int | None = None) -> dict:
    """Per-seed comparison of ``result["methods"][method]`` with ``[reference]``.

    Returns ``seeds`` (the shared seeds, in the method's order, at most ``max_seeds``), ``acc``
    and ``ref`` (per-seed test top-1, %), ``diff`` (acc - ref per seed), ``mean`` (mean diff),
    ``ci95`` ([lo, hi]) and ``verdict`` ("better", "worse", "not distinguishable").
    """
    methods = result["methods"]
    for name in (method, reference):
        if name not in methods:
            raise KeyError(f"no method {name!r} in the result; methods: {sorted(methods)}")
    ref = dict(zip(methods[reference]["seeds"], methods[reference]["acc"]))
    pairs = [(s, a, ref[s]) for s, a in zip(methods[method]["seeds"], methods[method]["acc"]) if s in ref]
    if max_seeds is not None:
        pairs = pairs[:max(1, int(max_seeds))]
    if not pairs:
        raise ValueError(f"{method!r} and {reference!r} share no seed")
    seeds, acc, refs = (list(x) for x in zip(*pairs))
    mean, ci = paired_ci(acc, refs)
    return {"seeds": seeds, "acc": acc, "ref": refs, "diff": [a - b for a, b in zip(acc, refs)], "mean": mean,
            "ci95": ci, "verdict": verdict(ci) if len(seeds) > 1 else "one seed: no interval", "method": method,
            "reference": reference}


class SeedExplorer(FigureWidget):
    """A method slider and a seed-count slider over :func:`paired_seeds`.

    ``.widget`` is the ipywidgets box to display; ``.method`` and ``.seeds`` its sliders; ``.view``
    the current :func:`paired_seeds` dict; ``update()`` redraws.
    """

    def __init__(self, result: dict, reference: str = "kd", methods=None):
        import ipywidgets as w

        self.result, self.reference = result, reference
        names = [n for n in (methods or result["methods"]) if n != reference]
        if not names:
            raise ValueError("no method to compare with the reference")
        most = max(len(result["methods"][n]["seeds"]) for n in names)
        self.method = w.SelectionSlider(options=names, value=names[0], description="method",
                                        continuous_update=False)
        self.seeds = w.IntSlider(most, 1, most, description="seeds", continuous_update=False)
        figure, self.axes = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.4, 1]})
        self._wire(w.HBox([self.method, self.seeds]), (self.method, self.seeds), figure)
        self.view: dict = {}
        self.update()

    def update(self) -> dict:
        """Recompute for the sliders and redraw."""
        v = self.view = paired_seeds(self.result, self.method.value, self.reference, self.seeds.value)
        ax, bx = self.axes
        ax.clear(), bx.clear()
        for s, a, b in zip(v["seeds"], v["acc"], v["ref"]):
            ax.plot([0, 1], [b, a], "o-", color="tab:green" if a > b else ("tab:red" if a < b else "tab:grey"))
            ax.annotate(f"seed {s}", (1, a), xytext=(5, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_xticks([0, 1], [v["reference"], v["method"]]), ax.set_xlim(-0.3, 1.4)
        ax.set_ylabel("test top-1 (%)"), ax.set_title("one line per seed (same initialisation and data order)",
                                                      fontsize=9)
        lo, hi = v["ci95"]
        bx.errorbar([v["mean"]], [0], xerr=[[v["mean"] - lo], [hi - v["mean"]]], fmt="o", capsize=5, color="k")
        bx.scatter(v["diff"], np.full(len(v["diff"]), 0.3), color="tab:blue", s=14, label="per-seed differences")
        bx.axvline(0, color="grey", lw=1)
        bx.set_ylim(-0.6, 0.8), bx.set_yticks([])
        bx.set_xlabel(f"{v['method']} minus {v['reference']} (points)")
        bx.set_title(f"mean {v['mean']:+.1f}, 95 % CI [{lo:+.1f}, {hi:+.1f}]: {v['verdict']}", fontsize=9)
        bx.legend(fontsize=7, loc="upper right")
        self.figure.tight_layout()
        self._show()
        return v
