"""Training pools (DataConfig.pool) and the label settings over one pool that the benchmark compares."""

from collections import Counter

import pytest

from kdlab.data import generate_dataset
from kdlab.weak_splits import DataConfig, Splits
from kdlab.students import weak_training_set

CLASSES = ["MoveLeft", "MoveRight", "Grow"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("pool") / "sim", classes=CLASSES, train_per_class=20,
                            test_per_class=2, frames=8, size=32, progress=False)


def per_class(splits, indices):
    return Counter(splits.labels[i] for i in indices)


def test_a_pool_holds_n_videos_per_class_with_the_budget_inside_and_validation_outside(root):
    s = Splits(DataConfig(root=str(root), pool=10, budget=20), progress=False)
    pool = s.labelled + s.unlabelled
    assert per_class(s, pool) == {0: 10, 1: 10, 2: 10} and per_class(s, s.labelled) == {0: 2, 1: 2, 2: 2}
    assert not set(pool) & set(s.val) and not set(s.labelled) & set(s.unlabelled)
    assert per_class(s, s.val) == {0: 2, 1: 2, 2: 2}  # 10 % of 20 per class, the same for every pool size
    smaller = Splits(DataConfig(root=str(root), pool=5, budget=20), progress=False)
    assert smaller.val == s.val and len(smaller.labelled + smaller.unlabelled) == 15
    assert s.summary()["pool"] == 10 and Splits(DataConfig(root=str(root)), progress=False).summary()["pool"] is None


def test_a_pool_larger_than_the_data_is_refused_by_name(root):
    with pytest.raises(ValueError, match=r"pool=50 videos per class.*choose 1\.\.18"):
        Splits(DataConfig(root=str(root), pool=50), progress=False)


def test_runs_without_a_pool_keep_their_keys_and_pools_change_them(root):
    plain = DataConfig(root=str(root))
    assert "pool" not in plain.key() and DataConfig(root=str(root), pool=10).key()["pool"] == 10


def test_all_labels_and_labelled_only_are_the_same_pool_relabelled(root):
    s = Splits(DataConfig(root=str(root), pool=10, budget=20), progress=False)
    everyone = s.with_all_labels()
    assert sorted(everyone.labelled) == sorted(s.labelled + s.unlabelled) and everyone.unlabelled == []
    labels = [item[1] for item in weak_training_set(everyone, views=2)]
    assert all(lab >= 0 for lab in labels) and len(labels) == 30
    repeated = s.labelled_only(repeat=5)
    weak = weak_training_set(repeated, views=2)
    assert len(weak) == 5 * len(s.labelled) == len(s.labelled) + len(s.unlabelled)  # as many clips as the pool
    assert Counter(weak[i][2] for i in range(len(weak))) == {i: 5 for i in s.labelled}
    assert s.unlabelled and s.labelled == sorted(s.labelled)  # the originals are untouched
