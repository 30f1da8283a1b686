"""Splits for weak supervision and the run cache."""

import json

import pytest
import torch

from kdlab.data import generate_dataset
from kdlab.weak_splits import DataConfig, MaskedLabels, Splits
from kdlab.models import build_model
from kdlab.runs import load_or_train, run_folder, run_key


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("exp") / "sim", classes=["MoveLeft", "MoveRight", "Grow"],
                            train_per_class=20, test_per_class=3, progress=False)
    return Splits(DataConfig(root=str(root), budget=10, cache=False), progress=False)


def test_splits_partition_the_training_videos(splits):
    lab, unl, val = set(splits.labelled), set(splits.unlabelled), set(splits.val)
    assert not (lab & unl or lab & val or unl & val)
    assert lab | unl | val == set(range(len(splits.train)))
    # Stratified: every class has labelled and validation videos.
    for c in range(splits.num_classes):
        assert any(splits.labels[i] == c for i in lab)
        assert any(splits.labels[i] == c for i in val)
    assert len(val) == pytest.approx(0.1 * len(splits.train), abs=splits.num_classes)


def test_weak_set_hides_unlabelled_labels_and_keeps_indices(splits):
    weak = splits.weak_set()
    assert len(weak) == len(splits.labelled) + len(splits.unlabelled)
    for i in range(len(weak)):
        clip, label, index = weak[i]
        if index in splits.labelled:
            assert label == splits.labels[index] or label == splits.train.flip_map[splits.labels[index]]
        else:
            assert label == -1
    masked = MaskedLabels(splits.train_eval, [0, 1], keep=[1])
    assert masked[0][1] == -1 and masked[1][1] == splits.labels[1]


def test_run_cache_trains_once_then_loads(tmp_path):
    calls = []

    def train(fit_dir):
        calls.append(fit_dir)
        torch.manual_seed(0)
        return build_model("student", 3, widths=(4, 4, 8, 8), stem_width=4), {"test_top1": 50.0}

    config = {"model": "student", "epochs": 1}
    model, info = load_or_train("demo", config, train, root=tmp_path, verbose=False)
    again, info2 = load_or_train("demo", config, train, root=tmp_path, verbose=False)
    assert len(calls) == 1 and info2 == info
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    folder = run_folder("demo", config, tmp_path)
    assert json.loads((folder / "config.json").read_text()) == config
    assert run_key(config) != run_key({**config, "epochs": 2})
    load_or_train("demo", {**config, "epochs": 2}, train, root=tmp_path, verbose=False)
    assert len(calls) == 2
