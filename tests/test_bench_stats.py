"""kdlab.bench.stats: the paired bootstrap interval against an exact enumeration, and its reading."""

import itertools

import numpy as np
import pytest

from kdlab.bench.report import takeaways, with_vs_kd
from kdlab.bench.stats import compare, paired_ci, verdict


def exact_bootstrap_quantiles(d, levels):
    """Every one of the n**n equally likely resamples of the differences, enumerated."""
    means = np.array([np.mean(pick) for pick in itertools.product(d, repeat=len(d))])
    return np.percentile(means, levels)


@pytest.mark.parametrize("a,b", [([80, 82, 85, 79, 90], [78, 83, 80, 79, 84]), ([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 5.0, 1.0])])
def test_the_interval_matches_the_exact_bootstrap_distribution(a, b):
    d = np.subtract(a, b)
    mean, (lo, hi) = paired_ci(a, b)
    assert mean == pytest.approx(d.mean())
    exact_lo, exact_hi = exact_bootstrap_quantiles(d, [2.5, 97.5])
    spread = d.max() - d.min()
    assert lo == pytest.approx(exact_lo, abs=0.05 * spread) and hi == pytest.approx(exact_hi, abs=0.05 * spread)
    assert d.min() <= lo <= mean <= hi <= d.max()


def test_constant_differences_have_no_spread_and_one_seed_has_no_interval():
    assert paired_ci([3, 4, 5], [1, 2, 3]) == (2.0, [2.0, 2.0])
    assert paired_ci([70.0], [60.0]) == (10.0, [10.0, 10.0])
    with pytest.raises(ValueError, match="equally long"):
        paired_ci([1, 2], [1, 2, 3])


def test_the_reading_comes_from_the_interval_not_from_the_means():
    assert verdict([0.2, 3.0]) == "better" and verdict([-3.0, -0.1]) == "worse"
    assert verdict([-0.5, 4.0]) == "not distinguishable"
    # a large mean gap made of one lucky seed is not distinguishable; a small steady one is
    lucky = compare({"seeds": [0, 1, 2, 3, 4], "acc": [60, 60, 60, 60, 90]},
                    {"seeds": [0, 1, 2, 3, 4], "acc": [61, 61, 61, 61, 61]})
    steady = compare({"seeds": [0, 1, 2, 3, 4], "acc": [61, 62, 61, 62, 61.5]},
                     {"seeds": [0, 1, 2, 3, 4], "acc": [60, 61, 60, 61, 60.5]})
    assert lucky["diff"] > steady["diff"] and lucky["verdict"] == "not distinguishable"
    assert steady["verdict"] == "better" and steady["ci95"] == [1.0, 1.0]


def test_comparisons_pair_by_seed():
    a = {"seeds": [2, 0, 1], "acc": [12.0, 10.0, 11.0]}
    b = {"seeds": [0, 1, 2, 3], "acc": [9.0, 10.0, 11.0, 50.0]}
    assert compare(a, b)["diff"] == pytest.approx(1.0) and compare(a, b)["seeds"] == 3
    assert compare(a, {"seeds": [7], "acc": [1.0]}) is None


def test_the_report_reads_better_worse_and_not_distinguishable_from_the_intervals():
    def e(acc):
        return {"acc": acc, "seeds": list(range(len(acc))), "mean": float(np.mean(acc)), "std": float(np.std(acc, ddof=1)),
                "best_epoch_mean": 0.0, "train_seconds_mean": 1.0}

    methods = with_vs_kd({"scratch": e([20, 22, 21]), "kd": e([80, 81, 82]), "skd": e([85, 86, 84])})
    text = " ".join(takeaways({"teacher": {"acc": 90.0}, "seeds": [0, 1, 2], "methods": methods}))
    assert "SKD vs KD: +4.0" in text and "better" in text and "worse (paired difference" in text
    methods = with_vs_kd({"kd": e([80, 81, 82]), "skd": e([79, 82, 80])})
    text = " ".join(takeaways({"teacher": {"acc": 90.0}, "seeds": [0, 1, 2], "methods": methods}))
    assert "SKD vs KD: -0.7" in text and "not distinguishable" in text and "better" not in text
