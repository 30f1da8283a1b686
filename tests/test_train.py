"""The training engine: resume, NaN guard, checkpoints, history, evaluation, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from kdlab.io import CheckpointError, atomic_save, load_checkpoint
from kdlab.models import build_model
from kdlab.train import History, NonFiniteLossError, ResumeMismatchError, Supervised, evaluate, fit

from toydata import MovingBar


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return build_model("student", 2, widths=(4, 8, 8, 8), stem_width=4)


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_learns_and_history_has_every_term():
    model = tiny_model()
    history = fit(model, MovingBar(96), MovingBar(32, seed=1), epochs=4, batch_size=16, progress=False)
    assert len(history) == 4
    assert {"train/ce", "train/loss", "train/acc", "val/top1", "val/loss", "lr", "seconds"} <= set(history.last)
    assert history.last["val/top1"] >= 90.0  # left vs right bars: easy once time is modelled


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    train, val = MovingBar(64), MovingBar(16, seed=1)
    full = tiny_model()
    fit(full, train, val, epochs=3, batch_size=8, progress=False, out_dir=tmp_path / "full")
    interrupted = tiny_model()
    fit(interrupted, train, val, epochs=3, batch_size=8, progress=False, out_dir=tmp_path / "cut", stop_after_epoch=0)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 0
    resumed = tiny_model(seed=123)  # a fresh process would start from other random weights
    history = fit(resumed, train, val, epochs=3, batch_size=8, progress=False, out_dir=tmp_path / "cut")
    assert [r["epoch"] for r in history.records] == [0, 1, 2]
    assert states_equal(full.state_dict(), resumed.state_dict())
    # A finished run is not trained again.
    again = tiny_model(seed=7)
    fit(again, train, val, epochs=3, batch_size=8, progress=False, out_dir=tmp_path / "cut")
    assert states_equal(full.state_dict(), again.state_dict())


def test_resume_with_other_settings_is_refused(tmp_path):
    train = MovingBar(32)
    fit(tiny_model(), train, epochs=1, batch_size=8, progress=False, out_dir=tmp_path)
    with pytest.raises(ResumeMismatchError, match="other settings"):
        fit(tiny_model(), train, epochs=1, batch_size=8, lr=0.5, progress=False, out_dir=tmp_path)


class ExplodesAt(nn.Module):
    """An objective whose 'kd' term turns NaN at a given step."""

    def __init__(self, step):
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, model, batch):
        logits = model(batch[0])
        ce = nn.functional.cross_entropy(logits, batch[1])
        kd = ce * (float("nan") if self.calls == self.step else 0.0)
        self.calls += 1
        return {"ce": ce, "kd": kd}, logits


def test_nan_guard_names_term_and_step(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"'kd'.*epoch 1, step 2"):
        fit(tiny_model(), MovingBar(32), epochs=3, batch_size=8, progress=False,
            objective=ExplodesAt(step=4 + 2), out_dir=tmp_path)
    # The checkpoint of the last good epoch is kept.
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 0


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    atomic_save({"epoch": 0}, tmp_path / "checkpoint.pt")
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="checkpoint.pt could not be read"):
        fit(tiny_model(), MovingBar(16), epochs=1, progress=False, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


class RecordsMode(Supervised):
    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, model, batch):
        self.modes.append(model.training)
        return super().forward(model, batch)


def test_model_is_back_in_training_mode_after_validation():
    objective = RecordsMode()
    fit(tiny_model(), MovingBar(32), MovingBar(16, seed=1), epochs=2, batch_size=8, progress=False,
        objective=objective)
    assert len(objective.modes) == 8 and all(objective.modes)


def test_best_epoch_is_chosen_on_validation_and_its_weights_kept(tmp_path):
    seen = {}

    def remember(epoch, record):
        seen[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    model = tiny_model()
    history = fit(model, MovingBar(48), MovingBar(16, seed=1), epochs=3, batch_size=8, progress=False,
                  out_dir=tmp_path, on_epoch_end=remember)
    vals = history.series("val/top1")
    best = history.best_epoch
    assert vals[best] == max(vals) and vals.index(max(vals)) == best
    assert states_equal(history.best_state, seen[best])
    assert states_equal(load_checkpoint(tmp_path / "best.pt")["model"], seen[best])
    summary = history.summary()
    assert summary["last"]["epoch"] == 2 and summary["best"]["epoch"] == best
    stored = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in stored["records"]] == [0, 1, 2]
    assert History(records=[{"epoch": 0, "train/loss": 1.0}]).best_epoch is None


class RecordsSteps(Supervised):
    """Supervised, remembering every step's loss (as a Python float) and its correct/seen counts."""

    def __init__(self):
        super().__init__()
        self.losses, self.correct, self.seen = [], [], []

    def forward(self, model, batch):
        terms, logits = super().forward(model, batch)
        self.losses.append(sum(terms.values()).item())
        mask = batch[1] >= 0
        self.correct.append(int((logits.argmax(1)[mask] == batch[1][mask]).sum()))
        self.seen.append(int(mask.sum()))
        return terms, logits


def test_the_epoch_record_is_the_mean_of_its_steps_exactly():
    # fit sums on the device and reads once per epoch; the numbers are those of a Python float sum.
    objective = RecordsSteps()
    data = MovingBar(40)
    data.labels[::5] = -1  # unlabelled clips count in no accuracy
    history = fit(tiny_model(), data, epochs=2, batch_size=8, progress=False, objective=objective)
    for epoch, record in enumerate(history.records):
        steps = slice(5 * epoch, 5 * epoch + 5)  # 40 clips, batches of 8
        total = 0.0
        for value in objective.losses[steps]:
            total += value
        assert record["train/loss"] == total / 5
        assert record["train/acc"] == 100.0 * sum(objective.correct[steps]) / sum(objective.seen[steps])
    assert 0 < history.records[0]["train/acc"] < 100 and sum(objective.seen[:5]) < 40


def test_deterministic_sets_the_cuda_flags_and_leaves_the_cpu_alone(monkeypatch):
    from kdlab.runtime import deterministic

    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
              torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        deterministic("cpu")
        assert (torch.backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before[::2]
        monkeypatch.setenv("KDLAB_DETERMINISTIC", "0")
        deterministic("cuda")  # setting the flags needs no GPU
        assert torch.are_deterministic_algorithms_enabled() == before[2]
        monkeypatch.delenv("KDLAB_DETERMINISTIC")
        deterministic("cuda")
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") in (":4096:8", ":16:8")  # set when kdlab is imported
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[:2]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])


class Fixed(nn.Module):
    """Returns given per-sample probabilities, to check evaluate against a hand computation."""

    num_classes = 3

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.table[x[:, 0, 0, 0, 0].long()].log()


def test_evaluate_matches_hand_counts_and_averages_views():
    # Per sample: 2 views with probabilities; the view mean decides.
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1],   # sample 0: mean [.4,.5,.1] -> 1
                          [0.1, 0.1, 0.8], [0.1, 0.2, 0.7],   # sample 1: -> 2
                          [0.5, 0.4, 0.1], [0.6, 0.1, 0.3]])  # sample 2: -> 0
    labels = torch.tensor([1, 0, 0])
    clips = torch.zeros(3, 2, 3, 1, 1, 1)
    clips[:, :, 0, 0, 0, 0] = torch.arange(6, dtype=torch.float).view(3, 2)
    data = list(zip(clips, labels))
    m = evaluate(Fixed(probs), data, batch_size=2)
    assert m["n"] == 3
    assert m["top1"] == pytest.approx(200 / 3)          # samples 0 and 2 right
    assert m["confusion"] == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    assert m["per_class"][:2] == [50.0, 100.0]
    mean = probs.view(3, 2, 3).mean(1)
    assert m["loss"] == pytest.approx(-(mean[[0, 1, 2], labels].log().mean()).item(), rel=1e-5)
    top2 = mean.topk(2).indices  # with 3 classes "top5" covers all of them
    assert m["top5"] == 100.0 and (top2 == labels[:, None]).any(1).sum() == 2


@pytest.mark.slow
def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    script = Path(__file__).parent / "ddp_fit.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert states_equal(a, b)
    assert float((tmp_path / "val.txt").read_text()) > 50.0  # it learned something, on both halves
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["settings"]["world_size"] == 2


def test_no_training_mode_refuses_to_train_but_lets_a_finished_run_load(tmp_path, monkeypatch):
    # KDLAB_NO_TRAINING (a class that unpacked the instructor's runs): a run that would train stops
    # with a message naming the variable, before any weight changes; a finished run still returns.
    from torch.utils.data import TensorDataset

    from kdlab.train import NO_TRAINING, TrainingDisabledError

    data = TensorDataset(torch.randn(8, 3, 2, 8, 8), torch.arange(8) % 2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 8 * 8, 2))
    fit(model, data, epochs=1, batch_size=4, out_dir=tmp_path / "done", progress=False)
    monkeypatch.setenv(NO_TRAINING, "1")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainingDisabledError, match=NO_TRAINING):
        fit(model, data, epochs=1, batch_size=4, out_dir=tmp_path / "new", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    history = fit(model, data, epochs=1, batch_size=4, out_dir=tmp_path / "done", progress=False)
    assert len(history.records) == 1
    monkeypatch.setenv(NO_TRAINING, "0")  # "0" means off
    fit(model, data, epochs=1, batch_size=4, progress=False)
