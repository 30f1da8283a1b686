"""kdlab.students: distilled students through the run cache, run keys, R/W matrices from a history."""

import copy

import pytest
import torch

import kdlab.trained as trained_module  # where every run's fit is called
from kdlab.students import distill_student, key_of, matrices_from_history, weak_training_set
from toydata import tiny_splits, tiny_teacher


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return tiny_splits(tmp_path_factory.mktemp("recipes"))


@pytest.fixture(scope="module")
def teacher(splits):
    return tiny_teacher(splits.num_classes)


@pytest.fixture
def counted_fit(fit_spy):
    """Runs go to a fresh folder; returns the objectives of the fit calls."""
    return fit_spy(trained_module, record=lambda kwargs: kwargs.get("objective"))


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("views", [None, 2])
def test_a_distilled_student_is_trained_once_then_loaded(splits, teacher, counted_fit, views):
    student, info = distill_student("kd", splits, teacher, epochs=1, views=views, progress=False)
    again, info2 = distill_student("kd", splits, teacher, epochs=1, views=views, progress=False)
    assert len(counted_fit) == 1 and same_weights(student, again)
    assert info2["test_top1"] == info["test_top1"] and 0 <= info["test_top1"] <= 100
    assert info["method"] == "kd" and info["views"] == views and len(info["history"]) == 1
    assert info["teacher_val_top1"] is not None  # the teacher was evaluated before distilling
    assert "train/kd" in info["history"][0] and "train/label" in info["history"][0]
    assert counted_fit[0].teacher_cache is None if views is None else counted_fit[0].teacher_cache is not None


def test_the_run_key_follows_method_options_seed_and_teacher(splits, teacher, counted_fit):
    distill_student("scratch", splits, None, epochs=1, progress=False)
    distill_student("scratch", splits, teacher, epochs=1, progress=False)  # scratch ignores the teacher
    assert len(counted_fit) == 1
    distill_student("scratch", splits, None, epochs=1, seed=1, progress=False)
    assert len(counted_fit) == 2
    distill_student("skd", splits, teacher, epochs=1, schedule="joint", probe_size=8, progress=False)
    distill_student("skd", splits, teacher, epochs=1, schedule="joint", fd_kind="gaussian", probe_size=8,
                    progress=False)
    assert len(counted_fit) == 4
    other = tiny_teacher(splits.num_classes, seed=5)
    distill_student("skd", splits, other, epochs=1, schedule="joint", probe_size=8, progress=False)
    assert len(counted_fit) == 5
    swapped = copy.copy(splits)  # one unlabelled video swapped with a validation video: same sizes, other videos
    swapped.unlabelled = splits.unlabelled[:-1] + splits.val[:1]
    swapped.val = splits.val[1:] + splits.unlabelled[-1:]
    distill_student("scratch", swapped, None, epochs=1, progress=False)
    assert len(counted_fit) == 6


def test_every_method_sees_the_same_data_and_scratch_uses_no_teacher(splits, teacher, counted_fit):
    distill_student("scratch", splits, None, epochs=1, views=2, progress=False)
    distill_student("fitnet", splits, teacher, epochs=1, views=2, progress=False)
    scratch, fitnet = counted_fit
    assert scratch.teacher is None and not scratch.student_stages
    assert fitnet.teacher is teacher and fitnet.student_stages == ["stage2"]
    weak = weak_training_set(splits, views=2)
    assert len(weak) == len(splits.labelled) + len(splits.unlabelled)
    labels = [weak[i][1] for i in range(len(weak))]
    assert sum(y >= 0 for y in labels) == len(splits.labelled)
    assert len(weak[0]) == 4 and len(weak_training_set(splits)[0]) == 3  # (clip, label, index[, view])


def test_skd_history_gives_back_the_pairing_and_correlation_matrices(splits, teacher, counted_fit):
    _, info = distill_student("skd", splits, teacher, epochs=2, schedule="joint", views=2, probe_size=8,
                               progress=False)
    epochs, W, s_names, t_names = matrices_from_history(info["history"], "W")
    _, R, _, _ = matrices_from_history(info["history"], "R")
    assert epochs == [0, 1] and s_names == t_names == ["stage1", "stage2", "stage3", "stage4"]
    assert all(M.shape == (4, 4) for M in W + R)
    assert all(torch.allclose(M.sum(1), torch.ones(4, dtype=M.dtype), atol=1e-5) for M in W)
    # W is the row-softmax of R / tau, as the objective computes it at each epoch start
    for w, r in zip(W, R):
        assert torch.allclose(w, torch.softmax(r / 0.1, dim=1), atol=1e-5)


def test_matrices_from_history_reads_names_in_order_and_skips_epochs_without_them():
    records = [{"epoch": 0, "val/top1": 1.0},
               {"epoch": 1, "W/a-x": 0.2, "W/a-y": 0.8, "W/b-x": 1.0, "W/b-y": 0.0, "R/a-x": 0.5}]
    epochs, (M,), s, t = matrices_from_history(records, "W")
    assert epochs == [1] and s == ["a", "b"] and t == ["x", "y"]
    assert M.tolist() == [[0.2, 0.8], [1.0, 0.0]]
    assert matrices_from_history(records, "Q") == ([], [], [], [])


def test_key_of_hashes_contents_and_names_what_it_cannot_key():
    a = torch.arange(6.0).view(2, 3)
    assert key_of(a) == key_of(a.clone()) != key_of(a + 1)
    assert key_of({"w": [1, a], "s": "x"})["w"][1]["shape"] == [2, 3]
    with pytest.raises(TypeError, match="feature_loss"):
        key_of({"feature_loss": lambda f_s, f_t: 0}, "options")


def test_bad_calls_fail_early(splits, teacher, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path))
    with pytest.raises(ValueError, match="unknown method 'crd'; valid: scratch, kd"):
        distill_student("crd", splits, teacher)
    with pytest.raises(ValueError, match="needs none"):
        distill_student("kd", splits, None)
    with pytest.raises(ValueError, match="views"):
        distill_student("kd", splits, teacher, views=0)
    assert not any(tmp_path.iterdir())  # nothing was written
