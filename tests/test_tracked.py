"""track_correlation: R recorded after every epoch through the run cache, trained once, then loaded
with the same R (so a class with unpacked artifacts trains nothing)."""

import pytest
import torch
from torch.utils.data import DataLoader

from kdlab.correlation import substage_correlation
from kdlab.tracked import track_correlation
from kdlab.train import NO_TRAINING, TrainingDisabledError

from toydata import tiny_splits, tiny_teacher

MEASURE = dict(pool="mean", debiased=False, batches=None)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    splits = tiny_splits(tmp_path_factory.mktemp("tracked"))
    teacher = tiny_teacher(splits.num_classes).eval()
    probe = DataLoader(splits.val_set(), batch_size=4)
    return splits, teacher, probe


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv(NO_TRAINING, raising=False)


def test_records_every_epoch_and_loads_the_same_history_without_training(setting, runs, monkeypatch):
    splits, teacher, probe = setting
    model, info, tracker = track_correlation("student", splits, teacher, probe, epochs=2, seed=1, progress=False,
                                             **MEASURE)
    assert tracker.epochs == [0, 1, 2] and tracker.stack().shape == (3, 4, 4)
    assert len(info["history"]) == 2 and 0 <= info["test_top1"] <= 100
    # the last record is R of the trained model, recomputed here directly
    now = substage_correlation(model, teacher, probe, **MEASURE).R
    assert torch.allclose(tracker.history[-1].R, now, atol=1e-9)
    assert not torch.allclose(tracker.history[0].R, now)  # training changed R

    monkeypatch.setenv(NO_TRAINING, "1")  # a second call must load, not train
    again, again_info, loaded = track_correlation("student", splits, teacher, probe, epochs=2, seed=1,
                                                  progress=False, **MEASURE)
    assert loaded.epochs == tracker.epochs and torch.equal(loaded.stack(), tracker.stack())
    assert [c.student_names for c in loaded.history] == [c.student_names for c in tracker.history]
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    assert again_info["history"] == info["history"]
    assert loaded.student is again and loaded.teacher is teacher  # it can record more, e.g. after fine-tuning

    # another measure is another run: it would train
    with pytest.raises(TrainingDisabledError):
        track_correlation("student", splits, teacher, probe, epochs=2, seed=1, progress=False,
                          **{**MEASURE, "pool": "flatten"})


def test_a_shuffled_probe_is_refused(setting, runs):
    splits, teacher, _ = setting
    with pytest.raises(ValueError, match="shuffle=False"):
        track_correlation("student", splits, teacher, DataLoader(splits.val_set(), batch_size=4, shuffle=True),
                          epochs=1, progress=False)
