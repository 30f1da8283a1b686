"""Mixed precision (bf16 autocast): fit, the students, the cascade and the CLI pass amp= through."""

import json
import math

import pytest
import torch

import kdlab.trained as trained_module  # where every run's fit is called
import kdlab.students as students
from kdlab.cascade import capacity_ladder, cascade
from kdlab.train import ResumeMismatchError, fit

from toydata import MovingBar, tiny_splits, tiny_student, tiny_teacher, tiny_videos


def test_fit_with_amp_runs_in_bf16_and_learns(tmp_path):
    model = tiny_student()
    dtypes = set()
    model.stage1.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype) if m.training else None)
    history = fit(model, MovingBar(48), MovingBar(16, seed=1), epochs=4, batch_size=8, progress=False, amp=True,
                  out_dir=tmp_path / "run")
    assert dtypes == {torch.bfloat16}
    losses = history.series("train/loss")
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in fp32
    with pytest.raises(ResumeMismatchError, match="amp: stored True, asked None"):
        fit(tiny_student(), MovingBar(48), MovingBar(16, seed=1), epochs=4, batch_size=8, progress=False,
            out_dir=tmp_path / "run")


def test_without_amp_nothing_changes():
    model = tiny_student()
    dtypes = set()
    model.stage1.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    fit(model, MovingBar(16), epochs=1, batch_size=8, progress=False)
    assert dtypes == {torch.float32}


@pytest.fixture
def fit_kwargs(fit_spy):
    """Every fit call's keyword arguments, from the students and the cascade."""
    return fit_spy(trained_module)


def test_students_and_the_cascade_pass_amp_through(tmp_path, fit_kwargs):
    splits = tiny_splits(tmp_path)
    teacher = tiny_teacher(splits.num_classes).eval()
    _, info = students.distill_student("kd", splits, teacher, epochs=1, progress=False, amp=True)
    _, plain = students.distill_student("kd", splits, teacher, epochs=1, progress=False)
    assert [c["amp"] for c in fit_kwargs] == [True, False]  # amp is part of the run key: both trained
    assert all(math.isfinite(r["train/loss"]) for r in info["history"])

    fit_kwargs.clear()
    rungs = capacity_ladder(teacher.spec, teacher.spec.replace(widths=(4, 4, 8, 8), stem_width=4), steps=1)
    result = cascade(splits, teacher, rungs, method="kd", epochs=1, views=2, progress=False, amp=True,
                     out_dir=tmp_path / "cascade", log_dir=tmp_path / "tb")
    assert [c["amp"] for c in fit_kwargs] == [True, True]
    assert [c["log_dir"] for c in fit_kwargs] == [tmp_path / "tb" / "rung-1", tmp_path / "tb" / "rung-2"]
    assert json.loads((tmp_path / "cascade" / "cascade.json").read_text())["amp"] is True
    assert all(math.isfinite(r["train/loss"]) for info in result.rungs[1:] for r in info["history"])


def test_the_cli_flag(tmp_path, monkeypatch):
    from kdlab.cli import main
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    root = tiny_videos(tmp_path, train_per_class=6, test_per_class=1, classes=["MoveLeft", "MoveRight"])
    args = ["distill", "--data", str(root), "--method", "scratch", "--views", "0", "--epochs", "1",
            "--batch-size", "4", "--budget", "50"]
    assert main([*args, "--out", str(tmp_path / "amp"), "--amp"]) == 0
    assert main([*args, "--out", str(tmp_path / "fp32")]) == 0
    assert json.loads((tmp_path / "amp" / "config.json").read_text())["amp"] is True
    assert "amp" not in json.loads((tmp_path / "fp32" / "config.json").read_text())  # older folders still resume
    report = json.loads((tmp_path / "amp" / "report.json").read_text())
    assert math.isfinite(report["student"]["history"][0]["train/loss"])
