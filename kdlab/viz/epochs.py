"""One distillation run, epoch by epoch: the student's weights and its objective's adapters.

:func:`kdlab.train.fit` keeps the *last* epoch (``checkpoint.pt``, with the objective's adapters)
and the best one (``best.pt``, the model only); the history keeps every epoch's numbers, not its
weights. :class:`EpochStates` is fit's ``on_epoch_end`` hook (as
:class:`kdlab.correlation.CorrelationTracker` is) that keeps a CPU copy of both after every
epoch, and :func:`distill_epochs` trains one student with it through the run cache
(:func:`kdlab.runs.load_or_train`), storing the copies as ``epoch-states.pt`` next to
``model.pt``: the run is trained once, then loaded (and packed by ``kdlab artifacts pack``).

:meth:`EpochStates.checkpoints` turns the copies into the ``checkpoints`` of
:class:`kdlab.viz.inspector.FeatureInspector`, so its slider moves over one student's own
epochs and each epoch's features are shown through that epoch's trained adapters.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from kdlab.io import atomic_save, load_checkpoint
from kdlab.losses import StageAdapter

FILE = "epoch-states.pt"


def _copy(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class EpochStates:
    """fit's ``on_epoch_end`` hook: after every epoch, a copy of ``model``'s weights and of the
    stage adapters of ``objective`` (a :class:`kdlab.distill.Distillation`; none without one).

    Epochs are counted as *epochs trained*: fit's 0-based epoch e is kept as e + 1; call
    :meth:`record` with 0 before training for the starting point. Copying does not change the run.

    Attributes: ``epochs`` (list of ints), ``states`` (one dict per epoch: ``model``, ``adapters``
    (adapter key -> state dict), ``W`` (the pairing weights used in that epoch; None for epoch 0)), ``pairs``
    (adapter key -> (student stage, teacher stage)) and ``shapes`` (adapter key -> its
    StageAdapter's (student_shape, teacher_shape)).
    """

    def __init__(self, model: nn.Module, objective: nn.Module | None = None):
        self.model, self.objective = model, objective
        self.epochs: list[int] = []
        self.states: list[dict] = []
        self.pairs: dict[str, tuple[str, str]] = {}
        self.shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        for key, adapter in (getattr(objective, "adapters", None) or {}).items():
            if isinstance(adapter, StageAdapter) and isinstance(adapter.proj, nn.Sequential):
                i, j = map(int, key.split("_"))
                self.pairs[key] = (objective.student_stages[i], objective.teacher_stages[j])
                self.shapes[key] = (tuple(adapter.student_shape), tuple(adapter.teacher_shape))

    def record(self, epoch: int) -> None:
        """Keep the current weights as those after ``epoch`` epochs of training."""
        adapters = {key: _copy(self.objective.adapters[key].state_dict()) for key in self.pairs}
        W = getattr(self.objective, "W", None) if epoch > 0 else None  # before training no W was used
        self.epochs.append(int(epoch))
        self.states.append({"model": _copy(self.model.state_dict()), "adapters": adapters,
                            "W": None if W is None or W.numel() == 0 else W.detach().cpu().clone()})

    def __call__(self, epoch: int, record: dict | None = None) -> None:
        """fit's ``on_epoch_end(epoch, record)`` hook."""
        self.record(epoch + 1)

    def __len__(self) -> int:
        return len(self.states)

    def __repr__(self) -> str:
        return f"EpochStates({len(self)} epochs {self.epochs}, {len(self.pairs)} adapters)"

    # -- adapters and the inspector's checkpoints ---------------------------------------------
    def adapters_at(self, epoch: int) -> dict[tuple[str, str], StageAdapter]:
        """The trained adapters after ``epoch`` epochs, ``{(student stage, teacher stage): adapter}``
        in eval mode (their BatchNorm uses the running statistics of that epoch)."""
        state = self.states[self.epochs.index(epoch)]
        out = {}
        for key, pair in self.pairs.items():
            adapter = StageAdapter(*self.shapes[key])
            adapter.load_state_dict(state["adapters"][key])
            out[pair] = adapter.eval()
        return out

    def pairing_at(self, epoch: int) -> dict[tuple[str, str], float]:
        """The pairing weight W[i, j] of each adapter's pair during ``epoch`` (empty without W)."""
        W = self.states[self.epochs.index(epoch)]["W"]
        if W is None:
            return {}
        return {pair: float(W[tuple(map(int, key.split("_")))]) for key, pair in self.pairs.items()}

    def checkpoints(self) -> dict[str, dict]:
        """``{"epoch k": {"model": state dict, "adapters": {...}, "pairing": {...}}}`` for every kept
        epoch: the ``checkpoints`` argument of :class:`~kdlab.viz.inspector.FeatureInspector`."""
        return {f"epoch {e}": {"model": s["model"], "adapters": self.adapters_at(e), "pairing": self.pairing_at(e)}
                for e, s in zip(self.epochs, self.states)}

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        atomic_save({"epochs": self.epochs, "states": self.states, "pairs": self.pairs,
                     "shapes": {k: [list(a), list(b)] for k, (a, b) in self.shapes.items()}}, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> "EpochStates":
        data = load_checkpoint(Path(path))
        out = cls.__new__(cls)
        out.model = out.objective = None
        out.epochs, out.states = list(data["epochs"]), list(data["states"])
        out.pairs = {k: tuple(v) for k, v in data["pairs"].items()}
        out.shapes = {k: (tuple(a), tuple(b)) for k, (a, b) in data["shapes"].items()}
        return out


def distill_epochs(method: str, splits, teacher: nn.Module, *, epochs: int, seed: int = 0, views: int | None = 2,
                   model: str = "student", lr: float = 2e-3, batch_size: int = 16, progress: bool = True,
                   **options) -> tuple[nn.Module, dict, EpochStates]:
    """Train (or load) one student distilled with ``method`` on the weak setting of ``splits``,
    keeping its weights and adapters after every epoch (and before the first).

    The same data, objective and training as :func:`kdlab.students.distill_student` (the run is
    stored under its own kind, ``epochs-<method>``, since it also stores ``epoch-states.pt``).
    Unlike ``distill_student`` it does not check what the teacher saw: it is for looking at
    features, not for comparing accuracies. Returns ``(student, info, states)``.
    """
    from kdlab.distill import make_objective
    from kdlab.models import build_model
    from kdlab.students import student_run_config, teacher_cache, weak_training_set
    from kdlab.runs import load_or_train, run_folder
    from kdlab.trained import train_and_report

    train_set = weak_training_set(splits, views)
    run_config = student_run_config(method, splits, train_set, teacher, model=model, epochs=epochs, seed=seed, lr=lr,
                                    batch_size=batch_size, views=views, options=options,
                                    extra={"keeps": "epoch-states"})
    kind = f"epochs-{method}"
    clip_shape = (3, splits.cfg.frames, splits.cfg.size, splits.cfg.size)

    def train(fit_dir: Path):
        if fit_dir.exists():  # an interrupted run resumes without the states of its first epochs: start over
            shutil.rmtree(fit_dir)
        torch.manual_seed(seed)
        student = build_model(model, splits.num_classes)
        cache = teacher_cache(teacher, splits, views, progress=progress) if views is not None else None
        objective = make_objective(method, teacher, student, epochs=epochs, val_data=splits.val_set(),
                                   teacher_cache=cache, clip_shape=clip_shape, **options)
        states = EpochStates(student, objective)
        states.record(0)
        run = train_and_report(student, train_set, splits.val_set(), splits.test,
                               build=lambda: build_model(model, splits.num_classes), objective=objective,
                               epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, out_dir=fit_dir,
                               run_config=run_config, progress=progress, on_epoch_end=states)
        states.save(fit_dir.parent / FILE)
        info = {"kind": kind, "method": method, "model": model, "seed": seed, "epochs": epochs, "views": views,
                "options": run_config["options"], **run.info()}
        return student, info

    student, info = load_or_train(kind, run_config, train, verbose=progress)
    return student, info, EpochStates.load(run_folder(kind, run_config) / FILE)


__all__ = ["EpochStates", "distill_epochs", "FILE"]
