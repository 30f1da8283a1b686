"""One run epoch by epoch: fit's hook keeps each epoch's student and adapters, and the inspector
shows each epoch through that epoch's own adapters."""

import numpy as np
import pytest
import torch

from kdlab.distill import SubstageDistillation
from kdlab.train import fit
from kdlab.viz.epochs import EpochStates
from kdlab.viz.inspector import FeatureInspector, compared_features, distribution_view

from toydata import MovingBar, tiny_student, tiny_teacher

TOY = (3, 8, 16, 16)  # MovingBar clips


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch SKD run of the tiny pair on MovingBar, with its states per epoch (and epoch 0)."""
    teacher, student = tiny_teacher(2), tiny_student(2)
    objective = SubstageDistillation(teacher, student, schedule="joint", clip_shape=TOY, probe_size=8)
    states = EpochStates(student, objective)
    states.record(0)
    fit(student, MovingBar(24), objective=objective, epochs=2, batch_size=8, progress=False, on_epoch_end=states)
    return teacher, student, objective, states


def conv(adapter):
    return adapter.proj[0].weight


def upto(model, stage, clips):
    """A model's features at ``stage``, by hand: the stem, then each stage up to it."""
    with torch.no_grad():
        x = model.stem(clips)
        for name in model.stage_names[:model.stage_names.index(stage) + 1]:
            x = getattr(model, name)(x)
    return x


def trained_pair(states):
    """The pair with the largest pairing weight in the first epoch: its adapter surely trained
    (pairs under ``min_pair_weight`` are skipped and may keep their initial weights)."""
    W = states.pairing_at(1)
    return max(W, key=W.get)


def test_each_epoch_keeps_its_own_weights_and_adapters(run, tmp_path):
    teacher, student, objective, states = run
    assert states.epochs == [0, 1, 2] and len(states.pairs) == 16  # every stage pair has an adapter
    last = states.adapters_at(2)
    for key, pair in states.pairs.items():  # the last epoch's copies are the trained objective's
        assert torch.equal(conv(last[pair]), conv(objective.adapters[key]))
    pair = trained_pair(states)
    first = states.adapters_at(0)
    assert not torch.equal(conv(first[pair]), conv(last[pair]))  # the adapters trained
    final = student.state_dict()
    assert all(torch.equal(v, final[k]) for k, v in states.states[2]["model"].items())
    assert not all(torch.equal(v, final[k]) for k, v in states.states[0]["model"].items())
    assert not last[pair].training  # BatchNorm uses the running statistics of that epoch
    assert states.pairing_at(0) == {}  # before training no pairing was used
    W = states.pairing_at(1)
    assert set(W) == set(states.pairs.values()) and sum(W[("stage1", t)] for t in student.stage_names) == pytest.approx(1)

    states.save(tmp_path / "states.pt")
    loaded = EpochStates.load(tmp_path / "states.pt")
    assert loaded.epochs == states.epochs and loaded.pairs == states.pairs
    assert torch.equal(conv(loaded.adapters_at(1)[pair]), conv(states.adapters_at(1)[pair]))


def test_the_adapted_view_at_epoch_k_uses_the_adapters_of_epoch_k(run):
    teacher, student, _, states = run
    clips = MovingBar(6, seed=3).clips
    viewer = tiny_student(2, seed=5)  # the inspector loads each epoch's weights into it
    inspector = FeatureInspector(viewer, teacher, clips, checkpoints=states.checkpoints())
    assert inspector.features.value == "adapted" and inspector.checkpoint.options == ("epoch 0", "epoch 1", "epoch 2")
    pair = trained_pair(states)
    inspector.pair.value = pair
    inspector.view.value = "gaussian"
    for k in (1, 2, 0):
        inspector.checkpoint.value = f"epoch {k}"
        adapter = states.adapters_at(k)[pair]
        assert torch.equal(conv(inspector.data["adapter"]), conv(adapter))
        # by hand: epoch k's student weights, epoch k's adapter, the teacher on the adapter's grid
        student.load_state_dict(states.states[k]["model"])
        student.eval()
        f_s, f_t = upto(student, pair[0], clips), upto(teacher.eval(), pair[1], clips)
        expected = distribution_view(*compared_features(f_s, f_t, adapter), inspector.channel.value, "gaussian")
        assert inspector.data["loss"] == pytest.approx(expected["loss"], rel=1e-5)
        assert np.allclose(inspector.data["student"], expected["student"], rtol=1e-4, atol=1e-6)
        other = distribution_view(*compared_features(f_s, f_t, states.adapters_at(2 if k == 0 else 0)[pair]),
                                  inspector.channel.value, "gaussian")
        assert inspector.data["loss"] != pytest.approx(other["loss"], rel=1e-3)


def test_moving_the_epoch_slider_and_the_raw_toggle_change_the_data(run):
    teacher, _, _, states = run
    inspector = FeatureInspector(tiny_student(2), teacher, MovingBar(6, seed=3).clips, checkpoints=states.checkpoints())
    inspector.pair.value = ("stage4", "stage4")
    shown = {}
    for label in inspector.checkpoint.options:
        inspector.checkpoint.value = label
        shown[label] = (inspector.data["loss"], inspector.data["student"].copy())
    assert len({round(loss, 8) for loss, _ in shown.values()}) == 3
    assert not np.allclose(shown["epoch 0"][1], shown["epoch 2"][1])
    adapted = inspector.data
    inspector.features.value = "raw"
    assert inspector.data["adapter"] is None and inspector.data["loss"] != pytest.approx(adapted["loss"])
    assert "W = " in inspector.ax.get_title() and "raw" in inspector.ax.get_title()


def test_compared_features_pools_the_teacher_onto_the_adapter_grid():
    from kdlab.losses import StageAdapter

    f_s, f_t = torch.randn(2, 4, 8, 8, 8), torch.randn(2, 16, 4, 8, 8)
    adapter = StageAdapter((4, 8, 8, 8), (16, 4, 4, 4)).eval()  # a pair compared on a coarser grid
    a, b = compared_features(f_s, f_t, adapter)
    assert a.shape == b.shape == (2, 16, 4, 4, 4)
    assert torch.allclose(b, torch.nn.functional.avg_pool3d(f_t, (1, 2, 2)))
    raw_s, raw_t = compared_features(f_s, f_t)
    assert raw_s.shape == f_t.shape and raw_t is f_t
