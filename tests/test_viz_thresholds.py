"""The threshold explorer: per-class coverage and accuracy against a plain loop; the slider drives the view."""

import math

import numpy as np
import pytest

from kdlab.viz.thresholds import ThresholdExplorer, threshold_table


def data(n=200, C=5, seed=0):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.2, 1.0, n)
    true = rng.integers(0, C, n)
    # right more often when confident
    pred = np.where(rng.uniform(size=n) < conf, true, rng.integers(0, C, n))
    return conf, pred, true, C


def loop_table(conf, pred, true, t, C):
    cov, acc = [], []
    for c in range(C):
        cand = [i for i in range(len(conf)) if pred[i] == c]
        kept = [i for i in cand if conf[i] >= t]
        cov.append(len(kept) / len(cand) if cand else math.nan)
        acc.append(sum(true[i] == c for i in kept) / len(kept) if kept else math.nan)
    kept_all = [i for i in range(len(conf)) if conf[i] >= t]
    acc_all = sum(true[i] == pred[i] for i in kept_all) / len(kept_all) if kept_all else math.nan
    return cov, acc, len(kept_all) / len(conf), acc_all


@pytest.mark.parametrize("t", [0.0, 0.35, 0.6, 0.9, 1.01])
def test_table_matches_a_plain_loop(t):
    conf, pred, true, C = data()
    tab = threshold_table(conf, pred, true, t, C)
    cov, acc, cov_all, acc_all = loop_table(conf, pred, true, t, C)
    assert np.allclose(tab["coverage"], cov, equal_nan=True) and np.allclose(tab["accuracy"], acc, equal_nan=True)
    assert tab["coverage_all"] == pytest.approx(cov_all)
    assert (math.isnan(acc_all) and math.isnan(tab["accuracy_all"])) or tab["accuracy_all"] == pytest.approx(acc_all)


def test_a_class_nobody_predicts_is_nan_not_zero():
    tab = threshold_table([0.9, 0.8], [0, 0], [0, 1], 0.5, 3)
    assert np.isnan(tab["coverage"][2]) and np.isnan(tab["accuracy"][2]) and tab["accuracy"][0] == 0.5


def test_coverage_falls_as_the_threshold_rises():
    conf, pred, true, C = data()
    covs = [threshold_table(conf, pred, true, t, C)["coverage_all"] for t in np.linspace(0, 1, 11)]
    assert all(a >= b for a, b in zip(covs, covs[1:])) and covs[0] == 1.0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="one entry per video"):
        threshold_table([0.5], [0, 1], [0, 1], 0.5, 2)
    with pytest.raises(ValueError, match="lie in"):
        threshold_table([0.5], [3], [0], 0.5, 2)


def test_slider_changes_the_table():
    pytest.importorskip("ipywidgets")
    conf, pred, true, C = data()
    ex = ThresholdExplorer(conf, pred, true, list("abcde"), threshold=0.3)
    before = ex.table["coverage_all"]
    ex.threshold.value = 0.9
    assert ex.table["threshold"] == pytest.approx(0.9) and ex.table["coverage_all"] < before
