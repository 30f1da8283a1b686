"""Paired comparisons over seeds: the mean difference and its 95 % bootstrap confidence interval.

Two methods trained with the same seeds share their initialisation and data order, so their
per-seed accuracies are *paired*: the question is whether the per-seed differences are reliably
on one side of zero, not whether two means look far apart. :func:`paired_ci` resamples the seeds
with replacement (percentile bootstrap of the mean difference); :func:`verdict` reads the interval:
"better" when it lies above zero, "worse" below, otherwise "not distinguishable".

With 5 seeds the interval is coarse (and the percentile bootstrap is a little too narrow for so
few samples), which is why the benchmark calls a difference real only when the whole interval
excludes zero.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Bootstrap resamples; fixed seed so that a report is reproducible to the last digit.
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def paired_ci(a: Sequence[float], b: Sequence[float], *, level: float = 0.95, resamples: int = RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> tuple[float, list[float]]:
    """``(mean of a - b, [lo, hi])``: the mean paired difference and its percentile-bootstrap interval.

    ``a[k]`` and ``b[k]`` belong to the same seed. One pair gives the interval ``[d, d]`` (no spread
    is known, and :func:`verdict` then says "not distinguishable" only if ``d == 0``; callers report
    single seeds without a verdict).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equally long, non-empty per-seed lists, got {len(a)} and {len(b)}")
    d = a - b
    mean = float(d.mean())
    if d.size == 1:
        return mean, [mean, mean]
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return mean, [float(lo), float(hi)]


def verdict(ci: Sequence[float]) -> str:
    """"better" (the interval lies above 0), "worse" (below 0) or "not distinguishable"."""
    lo, hi = ci
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "not distinguishable"


def compare(record: dict, reference: dict) -> dict | None:
    """``{"diff", "ci95", "verdict"}`` of ``record`` against ``reference`` over the seeds both ran
    (None when they share no seed)."""
    ref = dict(zip(reference["seeds"], reference["acc"]))
    pairs = [(a, ref[s]) for s, a in zip(record["seeds"], record["acc"]) if s in ref]
    if not pairs:
        return None
    diff, ci = paired_ci([p[0] for p in pairs], [p[1] for p in pairs])
    return {"diff": diff, "ci95": ci, "verdict": verdict(ci), "seeds": len(pairs)}
