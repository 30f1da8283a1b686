"""fit(log_dir=...) and --log-dir write TensorBoard event files with every record of every epoch."""

import pytest
import torch

from kdlab.distill import Distillation
from kdlab.models import build_model
from kdlab.tblog import matrices
from kdlab.train import fit

from toydata import MovingBar, tiny_student, tiny_videos

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the tensorboard package (a kdlab dependency) is not installed")


def read_back(log_dir):
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return scalars, acc.Tags()["images"]


def test_every_scalar_of_every_epoch_is_logged(tmp_path):
    model = tiny_student()
    history = fit(model, MovingBar(16), MovingBar(8, seed=1), epochs=2, batch_size=8, progress=False,
                  log_dir=tmp_path / "tb")
    scalars, _ = read_back(tmp_path / "tb")
    for key in ("train/ce", "train/loss", "train/acc", "val/top1", "val/loss", "lr", "seconds"):
        assert [step for step, _ in scalars[key]] == [0, 1], key
        for (step, value), record in zip(scalars[key], history.records):
            assert value == pytest.approx(record[key], rel=1e-6, abs=1e-6), key


def test_distillation_logs_its_terms_and_the_r_and_w_matrices(tmp_path):
    student = tiny_student()
    teacher = build_model("teacher", 2, widths=(12, 16, 24, 32), stem_width=8)
    objective = Distillation(teacher, student, feature_loss="fd", pairing="cka_softmax", clip_shape=(3, 8, 16, 16),
                             probe=MovingBar(8))
    history = fit(student, MovingBar(16), objective=objective, epochs=2, batch_size=8, progress=False,
                  log_dir=tmp_path / "tb")
    scalars, images = read_back(tmp_path / "tb")
    last = history.records[-1]
    terms = [k for k in last if k.startswith("train/feat/")]
    assert terms and "train/kd" in scalars and all(k in scalars for k in terms)
    W = matrices(last)["W"]
    assert W.shape == (4, 4) and torch.allclose(W.sum(1), torch.ones(4), atol=1e-4)  # rows of a softmax
    for key in (k for k in last if k.startswith(("R/", "W/"))):
        assert scalars[key][-1] == (1, pytest.approx(last[key], rel=1e-5, abs=1e-6)), key
    assert {"R/matrix", "W/matrix"} <= set(images)


def test_a_resumed_run_logs_each_epoch_once(tmp_path):
    fit(tiny_student(), MovingBar(16), epochs=3, batch_size=8, progress=False, out_dir=tmp_path / "run",
        log_dir=tmp_path / "tb", stop_after_epoch=0)
    fit(tiny_student(), MovingBar(16), epochs=3, batch_size=8, progress=False, out_dir=tmp_path / "run",
        log_dir=tmp_path / "tb")
    scalars, _ = read_back(tmp_path / "tb")
    assert [step for step, _ in scalars["train/loss"]] == [0, 1, 2]


def test_the_cli_writes_logs(tmp_path, monkeypatch):
    from kdlab.cli import main
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    root = tiny_videos(tmp_path, train_per_class=4, test_per_class=1, classes=["MoveLeft", "MoveRight"])
    out = tmp_path / "out"
    assert main(["train", "--data", str(root), "--out", str(out), "--labels", "all", "--epochs", "2",
                 "--batch-size", "4", "--log-dir", str(out / "tensorboard")]) == 0
    scalars, _ = read_back(out / "tensorboard")
    assert [step for step, _ in scalars["train/ce"]] == [0, 1] and "val/top1" in scalars
