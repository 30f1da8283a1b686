"""A model trained from scratch while its substage correlation with a teacher is recorded after
every epoch, through the run cache.

:class:`kdlab.correlation.CorrelationTracker` is fit's ``on_epoch_end`` hook that recomputes R on
a fixed probe after each epoch. :func:`track_correlation` trains one model with it through
:func:`kdlab.runs.load_or_train` and stores every recorded R as ``correlation-history.pt`` next to
``model.pt``: the run is trained once, then loaded with its tracker rebuilt (and packed by
``kdlab artifacts pack``, so a class with unpacked artifacts trains nothing).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from kdlab.correlation import CorrelationTracker, SubstageCorrelation
from kdlab.distill import weights_digest
from kdlab.io import atomic_save, load_checkpoint
from kdlab.models import build_model
from kdlab.runs import load_or_train, run_folder
from kdlab.students import key_of
from kdlab.trained import train_and_report
from kdlab.weak_splits import Splits

FILE = "correlation-history.pt"


def probe_key(probe: Iterable) -> dict:
    """The run-key entry of a probe: a DataLoader by its dataset and batch size (shuffling would
    change R between records, so it is refused), anything else by the contents of its clips."""
    if isinstance(probe, DataLoader):
        if not isinstance(probe.sampler, torch.utils.data.SequentialSampler):
            raise ValueError("the probe must give the same clips in the same order every epoch: use shuffle=False")
        return {"dataset": key_of(probe.dataset, "probe"), "batch_size": probe.batch_size}
    return {"clips": key_of([b[0] if isinstance(b, (list, tuple)) else b for b in probe], "probe")}


def _save_history(tracker: CorrelationTracker, path: Path) -> None:
    records = [{"R": c.R, "per_batch": c.per_batch, "student_names": list(c.student_names),
                "teacher_names": list(c.teacher_names), "pool": c.pool, "debiased": c.debiased}
               for c in tracker.history]
    atomic_save({"epochs": tracker.epochs, "records": records}, path)


def _load_history(tracker: CorrelationTracker, path: Path) -> CorrelationTracker:
    data = load_checkpoint(path)
    tracker.epochs = list(data["epochs"])
    tracker.history = [SubstageCorrelation(**r) for r in data["records"]]
    return tracker


def track_correlation(model: str, splits: Splits, teacher: nn.Module, probe: Iterable, *, labels: str = "all",
                      epochs: int, seed: int = 0, lr: float = 2e-3, batch_size: int = 16, progress: bool = True,
                      **measure) -> tuple[nn.Module, dict, CorrelationTracker]:
    """Train (or load) ``model`` from scratch on ``splits``' labels, recording R against ``teacher``
    on ``probe`` before training (epoch 0) and after every epoch.

    Args:
        model: a :func:`kdlab.models.build_model` name ("student", ...).
        labels: "all" (every training label) or "budget" (the labelled budget only).
        probe: batches of clips (B, 3, T, H, W), e.g. ``DataLoader(splits.val_set(), batch_size=20)``;
            the same clips every epoch.
        measure: :class:`~kdlab.correlation.CorrelationTracker` options (``pool``, ``debiased``,
            ``batches``, ``student_stages``, ``teacher_stages``); they are part of the run key.

    Returns ``(model, info, tracker)``: the trained model (last epoch), its ``info`` (as
    :func:`kdlab.teachers.train_scratch`'s, ``info["history"]`` the per-epoch records) and the
    tracker with ``epochs == [0, 1, ..., epochs]`` and one :class:`SubstageCorrelation` per epoch.
    """
    if labels not in ("budget", "all"):
        raise ValueError(f"labels must be 'budget' or 'all', got {labels!r}")
    data = splits.labelled_set() if labels == "budget" else splits.all_labels_set()
    kind = f"tracked-{labels}"
    run_config = {"model": model, "kind": kind, "epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size,
                  "data": splits.cfg.key(), "train_size": len(data), "teacher": weights_digest(teacher),
                  "probe": probe_key(probe), "measure": key_of(measure, "measure")}

    def train(fit_dir: Path):
        if fit_dir.exists():  # an interrupted run resumes without the R of its first epochs: start over
            shutil.rmtree(fit_dir)
        torch.manual_seed(seed)
        net = build_model(model, splits.num_classes)
        tracker = CorrelationTracker(net, teacher, probe, **measure)
        tracker.record(0)
        run = train_and_report(net, data, splits.val_set(), splits.test,
                               build=lambda: build_model(model, splits.num_classes), epochs=epochs, lr=lr,
                               batch_size=batch_size, seed=seed, out_dir=fit_dir, run_config=run_config,
                               progress=progress, on_epoch_end=tracker)
        _save_history(tracker, fit_dir.parent / FILE)
        return net, {"kind": kind, "model": model, "seed": seed, "epochs": epochs, **run.info()}

    net, info = load_or_train(kind, run_config, train, verbose=progress)
    tracker = CorrelationTracker(net, teacher, probe, **measure)
    return net, info, _load_history(tracker, run_folder(kind, run_config) / FILE)


__all__ = ["track_correlation", "probe_key", "FILE"]
