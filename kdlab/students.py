"""Distilled students through the run cache: one student per call, trained once.

:func:`distill_student` trains a student with one method of :mod:`kdlab.distill` on the weak
setting of a :class:`~kdlab.weak_splits.Splits` (the labelled budget plus the unlabelled videos,
whose labels read -1), through :func:`kdlab.train.fit`, and stores it in the run cache
(:func:`kdlab.runs.load_or_train`): a second call with the same method, options, data, teacher,
epochs and seed loads it instead of training again. Every method gets the same data, optimiser,
learning rate, batch size and epochs; only the objective's terms differ.

With ``views=V`` the training clips are drawn from V fixed augmented views per video
(:class:`~kdlab.distill.CachedViews`) and the teacher's outputs on all of them are computed once
into a :class:`~kdlab.distill.TeacherCache` under ``<runs>/teacher-cache``, shared by every
student of the same teacher and data. Later epochs and later students then skip the teacher's
forward pass. ``scratch`` trains on the same views (it needs no teacher), so a comparison at
equal ``views`` compares methods on identical clips.

:func:`matrices_from_history` turns the per-epoch ``R/<s>-<t>`` and ``W/<s>-<t>`` entries that
the objective writes into the history back into (S_student, S_teacher) matrices for plotting.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from kdlab.distill import CachedViews, TeacherCache, describe_dataset, make_objective, weights_digest
from kdlab.distill.methods import METHODS
from kdlab.environment import runs_dir
from kdlab.models import build_model
from kdlab.protocol import check_teacher
from kdlab.runs import load_or_train
from kdlab.teachers import default_epochs
from kdlab.trained import train_and_report
from kdlab.weak_splits import MaskedLabels, Splits

__all__ = ["distill_student", "student_run_config", "weak_training_set", "teacher_cache", "key_of", "matrices_from_history"]


def weak_training_set(splits: Splits, views: int | None = None, view_seed: int = 0) -> Dataset:
    """The weak-supervision training set: labelled + unlabelled videos (unlabelled read -1).

    ``views=None``: fresh random clips every epoch (``splits.weak_set()``). ``views=V``: each
    video is one of V fixed augmented views, items ``(clip, label, index, view)``.
    """
    if views is None:
        return splits.weak_set()
    return MaskedLabels(CachedViews(splits.train, views=views, seed=view_seed), splits.labelled + splits.unlabelled,
                        splits.labelled)


def teacher_cache(teacher: nn.Module, splits: Splits, views: int, view_seed: int = 0,
                  progress: bool = True) -> TeacherCache:
    """The teacher's outputs on the V views of every weak-set video (built on first use, then read)."""
    data = CachedViews(splits.train, views=views, seed=view_seed)
    return TeacherCache(teacher, data, runs_dir() / "teacher-cache", indices=splits.labelled + splits.unlabelled,
                        progress=progress)


def key_of(value: Any, name: str = "option") -> Any:
    """A JSON-able stand-in for a value that decides a run: tensors and models by a hash of their
    contents, datasets by :func:`~kdlab.distill.describe_dataset`. Anything else must already be
    plain JSON (numbers, strings, None, lists, dicts); otherwise a TypeError names the option."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [key_of(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): key_of(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest = hashlib.sha1(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
        return {"tensor": digest, "shape": list(t.shape), "dtype": str(t.dtype)}
    if isinstance(value, nn.Module):
        return {"module": weights_digest(value)}
    if isinstance(value, Dataset):
        return {"dataset": describe_dataset(value)}
    raise TypeError(f"{name}={value!r} cannot be part of a run key: pass plain values, tensors, modules or "
                    "datasets (or a callable's name through key=)")


def student_run_config(method: str, splits: Splits, train_set, teacher: nn.Module | None, *, model: str, epochs: int,
                       seed: int, lr: float, batch_size: int, views: int | None, options: dict,
                       extra: dict | None = None) -> dict:
    """The run-cache key of one distilled student: everything that decides its weights (the data
    by content and by the videos of each split, the teacher by its weights, every option)."""
    return {
        "method": method, "model": model, "epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size,
        "views": views, "data": splits.cfg.key(), "train_size": len(train_set),
        "videos": hashlib.sha1(json.dumps([splits.labelled, splits.unlabelled, splits.val]).encode()).hexdigest(),
        "teacher": None if teacher is None else weights_digest(teacher),
        "options": key_of(options, "options"), **(extra or {}),
    }


def distill_student(method: str, splits: Splits, teacher: nn.Module | None, *, epochs: int | None = None,
                    seed: int = 0, model: str = "student", views: int | None = None, lr: float = 2e-3,
                    batch_size: int = 16, key: dict | None = None, progress: bool = True, retrain: bool = False,
                    allow_label_leak: bool = False, amp: bool = False, **options) -> tuple[nn.Module, dict]:
    """Train (or load) a ``model`` distilled from ``teacher`` with ``method`` on the weak setting.

    Args:
        method: a key of :data:`kdlab.distill.METHODS` ("scratch", "kd", ..., "skd").
        splits: the data (labelled budget, unlabelled videos, validation, test).
        teacher: the frozen teacher (ignored, and may be None, for "scratch").
        epochs: default :func:`kdlab.teachers.default_epochs` ("student"); also sizes the
            progressive schedule.
        seed: initialisation and data order.
        views: None (random clips every epoch, the teacher run on every batch) or V (V fixed
            views per video, the teacher's outputs cached once, see the module docstring).
        lr, batch_size: as in :func:`kdlab.train.fit`.
        key: extra JSON-able entries for the run key (e.g. what a callable option stands for).
        allow_label_leak: do not warn when the teacher saw labels of the unlabelled videos
            (:func:`kdlab.protocol.check_teacher`; only to demonstrate the leak).
        amp: bf16 autocast (:func:`kdlab.train.fit`); part of the run key when on.
        options: overrides of the method's preset, any :class:`kdlab.distill.Distillation`
            option (``schedule="joint"``, ``fd_kind="gaussian"``, ``soft_targets=...``).

    Returns ``(student, info)``; ``info`` holds ``val_top1`` and ``test_top1`` (last epoch),
    ``best_epoch``, ``best_val_top1``, ``best_epoch_test_top1``, ``teacher_val_top1``,
    ``params``, ``train_seconds``, ``history`` (per-epoch records, with the objective's R and W),
    ``confusion``, ``method``, ``options``, ``seed``, ``epochs``, ``views``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method != "scratch" and teacher is None:
        raise ValueError(f"method {method!r} distils from a teacher: pass teacher= (only 'scratch' needs none)")
    if views is not None and views < 1:
        raise ValueError(f"views must be None or >= 1, got {views}")
    epochs = epochs or default_epochs("student")
    teacher = None if method == "scratch" else teacher
    check_teacher(teacher, splits, allow_label_leak=allow_label_leak)
    train_set = weak_training_set(splits, views)
    run_config = student_run_config(method, splits, train_set, teacher, model=model, epochs=epochs, seed=seed, lr=lr,
                                    batch_size=batch_size, views=views, options=options,
                                    extra={**(key or {}), **({"amp": True} if amp else {})})
    clip_shape = (3, splits.cfg.frames, splits.cfg.size, splits.cfg.size)

    def train(fit_dir: Path):
        torch.manual_seed(seed)
        student = build_model(model, splits.num_classes)
        cache = None
        if teacher is not None and views is not None:
            cache = teacher_cache(teacher, splits, views, progress=progress)
        settings = {"epochs": epochs, "val_data": splits.val_set(), "teacher_cache": cache, "clip_shape": clip_shape}
        objective = make_objective(method, teacher, student, **{**settings, **options})
        run = train_and_report(student, train_set, splits.val_set(), splits.test,
                               build=lambda: build_model(model, splits.num_classes), objective=objective,
                               epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, out_dir=fit_dir,
                               run_config=run_config, progress=progress, amp=amp)
        info = {"kind": f"distill-{method}", "method": method, "model": model, "seed": seed, "epochs": epochs,
                "views": views, "options": run_config["options"], **run.info(),
                "teacher_val_top1": run.history.last.get("teacher/val_top1")}
        return student, info

    return load_or_train(f"distill-{method}", run_config, train, retrain=retrain, verbose=progress)


def matrices_from_history(records: list[dict], name: str = "W"
                          ) -> tuple[list[int], list[torch.Tensor], list[str], list[str]]:
    """``(epochs, matrices, student_stages, teacher_stages)`` from history records holding
    ``<name>/<student stage>-<teacher stage>`` entries (``name`` "W" or "R"), one matrix per
    epoch that has them, in the order the stages first appear."""
    prefix = f"{name}/"
    student, teacher = [], []
    for r in records:
        for k in r:
            if k.startswith(prefix):
                s, t = k[len(prefix):].split("-", 1)
                student += [s] if s not in student else []
                teacher += [t] if t not in teacher else []
    epochs, matrices = [], []
    for r in records:
        if any(k.startswith(prefix) for k in r):
            M = torch.full((len(student), len(teacher)), float("nan"), dtype=torch.float64)
            for i, s in enumerate(student):
                for j, t in enumerate(teacher):
                    M[i, j] = r.get(f"{prefix}{s}-{t}", float("nan"))
            epochs.append(int(r["epoch"]))
            matrices.append(M)
    return epochs, matrices, student, teacher

