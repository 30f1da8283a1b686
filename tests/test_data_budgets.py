"""Label budgets and the train/validation split: stratified, seeded, reproducible, nested."""

from collections import Counter

import pytest

from kdlab.data import generate_dataset, label_budget, read_budget, train_val_split
from kdlab.data.budgets import choose_budget


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("bud") / "b", classes=["MoveUp", "MoveDown", "Grow", "Shrink"],
                            train_per_class=10, test_per_class=1, frames=4, size=16, progress=False)


def trainlist(root):
    return [(rel, int(lab) - 1) for rel, lab in (line.split() for line in (root / "trainlist01.txt").read_text().splitlines())]


@pytest.mark.parametrize("percent", [1, 5, 10, 20, 50, 100])
def test_budget_is_stratified(ds, percent):
    path = label_budget(ds, percent)
    assert path.parent == ds and path.name == f"trainlist01_budget{percent}_seed0.txt"
    chosen = read_budget(path)
    assert set(chosen) <= set(trainlist(ds)) and len(set(chosen)) == len(chosen)
    want = max(1, round(percent / 100 * 10))
    assert Counter(lab for _, lab in chosen) == {c: want for c in range(4)}


def test_budget_is_seeded_reproducible_and_nested(ds, tmp_path):
    a = read_budget(label_budget(ds, 20, seed=0))
    mtime = label_budget(ds, 20, seed=0).stat().st_mtime_ns
    assert label_budget(ds, 20, seed=0).stat().st_mtime_ns == mtime  # made once, then reused
    b = read_budget(label_budget(ds, 20, seed=1))
    assert a != b
    # The same seed on a fresh copy gives the same file.
    again = generate_dataset(tmp_path / "again", classes=["MoveUp", "MoveDown", "Grow", "Shrink"], train_per_class=10,
                             test_per_class=1, frames=4, size=16, progress=False)
    assert read_budget(label_budget(again, 20, seed=0)) == a
    small, large = set(read_budget(label_budget(ds, 10))), set(read_budget(label_budget(ds, 50)))
    assert small <= set(a) <= large


def test_choose_budget_unbalanced():
    labels = [0] * 50 + [1] * 7 + [2] * 1
    for percent in (1, 10, 30):
        picked = choose_budget(labels, percent, seed=3)
        counts = Counter(labels[i] for i in picked)
        assert counts == {c: max(1, round(percent / 100 * n)) for c, n in Counter(labels).items()}
    with pytest.raises(ValueError, match="percent"):
        choose_budget(labels, 0)


def test_train_val_split():
    labels = [i % 3 for i in range(30)] + [3, 3] + [4]
    train, val = train_val_split(labels, 0.2, seed=0)
    assert sorted(train + val) == list(range(len(labels))) and not set(train) & set(val)
    counts = Counter(labels[i] for i in val)
    assert counts == {0: 2, 1: 2, 2: 2, 3: 1}  # 20% of 10 each; a class of two keeps one; of one keeps it
    assert train_val_split(labels, 0.2, seed=0) == (train, val)
    assert train_val_split(labels, 0.2, seed=1) != (train, val)
    assert train_val_split(labels, 0.0) == (list(range(len(labels))), [])
    with pytest.raises(ValueError):
        train_val_split(labels, 1.0)
