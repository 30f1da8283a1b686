"""The seed explorer: paired per-seed differences by hand; the sliders drive the view."""

import pytest

from kdlab.viz.seeds import SeedExplorer, paired_seeds

RESULT = {"methods": {
    "kd": {"seeds": [0, 1, 2, 3], "acc": [80.0, 82.0, 79.0, 81.0]},
    "skd": {"seeds": [3, 0, 1, 2], "acc": [84.0, 83.0, 81.0, 80.0]},  # another order: pairs go by seed
    "at": {"seeds": [0, 1], "acc": [60.0, 61.0]},
}}


def test_pairs_go_by_seed_and_the_mean_is_the_mean_of_differences():
    v = paired_seeds(RESULT, "skd")
    assert v["seeds"] == [3, 0, 1, 2] and v["ref"] == [81.0, 80.0, 82.0, 79.0]
    assert v["diff"] == [3.0, 3.0, -1.0, 1.0] and v["mean"] == pytest.approx(1.5)
    lo, hi = v["ci95"]
    assert -1.0 <= lo <= 1.5 <= hi <= 3.0  # a bootstrap of the mean stays within the per-seed range


def test_fewer_seeds_and_one_seed():
    v = paired_seeds(RESULT, "skd", max_seeds=2)
    assert v["seeds"] == [3, 0] and v["mean"] == pytest.approx(3.0)
    one = paired_seeds(RESULT, "at", max_seeds=1)
    assert one["ci95"] == [-20.0, -20.0] and one["verdict"].startswith("one seed")
    assert paired_seeds(RESULT, "at")["verdict"] == "worse"


def test_unknown_method_is_named():
    with pytest.raises(KeyError, match="methods"):
        paired_seeds(RESULT, "dkd")


def test_sliders_change_the_view():
    pytest.importorskip("ipywidgets")
    ex = SeedExplorer(RESULT)
    assert ex.view["method"] == "skd" and len(ex.view["seeds"]) == 4
    ex.method.value = "at"
    assert ex.view["method"] == "at" and len(ex.view["seeds"]) == 2
    ex.method.value = "skd"
    ex.seeds.value = 2
    assert ex.view["seeds"] == [3, 0]
