"""Classifiers trained with cross-entropy through the run cache: the teachers and the scratch baselines.

- :func:`get_teacher`: the teacher of one protocol (``"all"``, ``"labelled"``, ``"pretrained"``;
  README, "Teacher protocols and the label leak"), trained once and then loaded;
- :func:`train_scratch`: a model trained from scratch on the labelled budget or on every label;
- :func:`train_classifier`: what both run: one classifier on one training set of a
  :class:`~kdlab.weak_splits.Splits`, stored in the run cache (:func:`kdlab.runs.load_or_train`);
- :func:`default_epochs`: epochs per model role in the default and quick modes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from kdlab import environment
from kdlab.data import default_dataset
from kdlab.data.fingerprint import dataset_fingerprint
from kdlab.models import build_model, count_flops
from kdlab.protocol import labels_seen, mark_teacher
from kdlab.runs import load_or_train
from kdlab.trained import train_and_report
from kdlab.weak_splits import Splits

__all__ = ["PROTOCOLS", "default_epochs", "get_teacher", "train_classifier", "train_scratch"]

PROTOCOLS = ("all", "labelled", "pretrained")


def default_epochs(kind: str) -> int:
    """Epochs per model role in the default and quick modes."""
    table = {"teacher": (20, 4), "student": (15, 4), "pretrain": (10, 3)}
    default, quick = table[kind]
    return environment.pick(default, quick)


def train_classifier(model_name: str, train_set: Dataset, splits: Splits, *, kind: str, epochs: int,
                     seed: int = 0, key: dict | None = None, lr: float = 2e-3, init: torch.nn.Module | None = None,
                     progress: bool = True, retrain: bool = False) -> tuple[torch.nn.Module, dict]:
    """Train ``model_name`` with cross-entropy on ``train_set`` (stored in the run cache under
    ``kind`` and ``key``); validate on ``splits`` validation, report on its test split.

    ``init`` starts from another model's weights (fine-tuning); its key must then be in ``key``.
    Returns ``(model, info)`` with ``info``: val/test top-1 (last epoch), best-val epoch and its
    test top-1, params, FLOPs, seconds, history, and ``labels_seen`` (:mod:`kdlab.protocol`: the
    videos of ``splits`` whose labels trained it, when ``train_set`` is a subset of ``splits.train``).
    """
    run_config = {"model": model_name, "kind": kind, "epochs": epochs, "seed": seed, "lr": lr,
                  "data": splits.cfg.key(), "train_size": len(train_set), **(key or {})}

    def train(fit_dir: Path):
        torch.manual_seed(seed)
        model = build_model(model_name, splits.num_classes)
        if init is not None:
            model.load_state_dict(init.state_dict())
        run = train_and_report(model, train_set, splits.val_set(), splits.test,
                               build=lambda: build_model(model_name, splits.num_classes), epochs=epochs, lr=lr,
                               seed=seed, out_dir=fit_dir, run_config=run_config, progress=progress)
        info = {"kind": kind, "model": model_name, "seed": seed, "epochs": epochs, **run.info(),
                "flops": count_flops(model, (1, 3, splits.cfg.frames, splits.cfg.size, splits.cfg.size)),
                "labels_seen": _labels_seen(train_set, splits)}
        return model, info

    return load_or_train(kind, run_config, train, retrain=retrain, verbose=progress)


def _labels_seen(train_set: Dataset, splits: Splits) -> dict | None:
    """The :func:`kdlab.protocol.labels_seen` record of a subset of ``splits.train`` (else None)."""
    if isinstance(train_set, Subset) and train_set.dataset is splits.train:
        return labels_seen(splits.root.name, [splits.train.samples[i][0] for i in train_set.indices],
                           fingerprint=dataset_fingerprint(splits.root))
    return None


def get_teacher(protocol: str = "all", splits: Splits | None = None, *, model: str = "teacher", seed: int = 0,
                epochs: int | None = None, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The teacher for one protocol (README, "The method"), trained once and then loaded from the run cache.

    - ``"all"``: trained on every training label (the upper bound);
    - ``"labelled"``: trained on the labelled budget only;
    - ``"pretrained"``: pre-trained on a separate simulated *source* corpus (other appearance,
      backgrounds and speeds), then fine-tuned on the labelled budget (what practice looks like).

    ``info["protocol"]`` records which one it is, and ``info["labels_seen"]`` (also attached to
    the model, :mod:`kdlab.protocol`) the target videos whose labels trained it, so that a
    distillation from this teacher can warn when it saw the labels of its "unlabelled" videos.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown teacher protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    splits = splits or Splits()
    epochs = epochs or default_epochs("teacher")
    if protocol == "all":
        net, info = train_classifier(model, splits.all_labels_set(), splits, kind="teacher-all", epochs=epochs,
                                     seed=seed, progress=progress)
    elif protocol == "labelled":
        net, info = train_classifier(model, splits.labelled_set(), splits, kind="teacher-labelled", epochs=epochs,
                                     seed=seed, progress=progress)
    else:
        # the whole source corpus, whatever the target's pool: pre-training is not the weak setting
        source_cfg = dataclasses.replace(splits.cfg, root=str(default_dataset(domain="source")), budget=100.0,
                                         pool=None)
        source = Splits(source_cfg, progress=progress)
        pre, pre_info = train_classifier(model, source.all_labels_set(), source, kind="teacher-source",
                                         epochs=default_epochs("pretrain"), seed=seed, progress=progress)
        net, info = train_classifier(model, splits.labelled_set(), splits, kind="teacher-pretrained", epochs=epochs,
                                     seed=seed, init=pre, lr=5e-4, progress=progress,
                                     key={"pretrained_on": source_cfg.key(), "pretrain_epochs": pre_info["epochs"]})
        info = {**info, "source_test_top1": pre_info["test_top1"]}
    seen = info.get("labels_seen")
    info = {**info, "protocol": protocol, "labels_seen": None if seen is None else {**seen, "protocol": protocol}}
    return mark_teacher(net, info["labels_seen"]), info


def train_scratch(model: str = "student", splits: Splits | None = None, *, labels: str = "budget", seed: int = 0,
                  epochs: int | None = None, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """A model trained from scratch on the labelled budget (``labels="budget"``) or on all
    training labels (``labels="all"``).

    On the budget, the default number of epochs is scaled so the model takes as many optimiser
    steps as one trained on every training video: a scratch baseline is never under-trained.
    """
    splits = splits or Splits()
    if labels not in ("budget", "all"):
        raise ValueError(f"labels must be 'budget' or 'all', got {labels!r}")
    data = splits.labelled_set() if labels == "budget" else splits.all_labels_set()
    if epochs is None:
        epochs = default_epochs("student")
        if labels == "budget":  # as many optimiser steps as a student trained on every training video
            epochs *= max(1, round(len(splits.weak_set()) / len(data)))
    return train_classifier(model, data, splits, kind=f"scratch-{labels}", epochs=epochs, seed=seed,
                            progress=progress)
