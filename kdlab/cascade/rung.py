"""One rung of a cascade: its training data and its training from one or more teachers."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from kdlab.distill import CachedViews, TeacherCache, describe_dataset, make_objective
from kdlab.distill.dense import DenseDistillation
from kdlab.weak_splits import Splits
from kdlab.models import VideoNetSpec, build_model, count_flops
from kdlab.pseudo import LabelView
from kdlab.trained import train_and_report


class PseudoView(LabelView):
    """:class:`~kdlab.pseudo.LabelView` over *every* video of ``base`` (index = position), so it can
    sit inside :class:`~kdlab.distill.CachedViews`. Items ``(clip, labels[index], index)``; a random
    flip maps the label through ``flip_map``. Its cache key leaves the labels out: the clips (and
    so a teacher's outputs on them) do not depend on them, so one teacher cache serves every rung."""

    def __init__(self, base: Dataset, labels: torch.Tensor):
        super().__init__(base, range(len(base)), labels)

    def cache_key(self) -> dict:
        return {"base": describe_dataset(self.base), "flip": self.flip, "flip_map": self.flip_map}


def training_set(splits: Splits, labels: torch.Tensor, views: int | None) -> tuple[Dataset, CachedViews | None]:
    """The labelled + unlabelled videos labelled by ``labels`` (N,) (-1: no label), with training
    augmentation; with ``views=V`` each video is one of V fixed views (items gain the view)."""
    base: Dataset = PseudoView(splits.train, labels)
    views_ds = None
    if views is not None:
        base = views_ds = CachedViews(base, views=views, seed=0)
    return Subset(base, splits.labelled + splits.unlabelled), views_ds


def train_rung(k: int, spec: VideoNetSpec, teachers: list[nn.Module], splits: Splits, labels: torch.Tensor,
               weights: torch.Tensor | None, *, views, method, epochs, seed, lr, batch_size, clip_shape,
               folder: Path, cache_dir: Path, run_config: dict, progress: bool, rank: int,
               options: dict, amp: bool = False, log_dir: Path | None = None) -> tuple[nn.Module, dict]:
    """Train rung ``k`` (a model of ``spec``) from ``teachers`` with ``method``: one objective, or
    :class:`~kdlab.distill.dense.DenseDistillation` over several. ``labels`` (N,) over every training
    video (-1: none) and per-video ``weights`` (N,) or None feed the label term; clips are
    ``clip_shape`` (3, T, H, W). fit resumes inside ``folder/fit``. Returns (model, info)."""
    train_set, views_ds = training_set(splits, labels, views)
    torch.manual_seed(seed)
    student = build_model(spec, splits.num_classes)
    parts = []
    for j, t in enumerate(teachers):
        cache = None
        if views_ds is not None:
            cache = TeacherCache(t, views_ds, cache_dir, indices=splits.labelled + splits.unlabelled,
                                 progress=progress)
        settings = {"epochs": epochs, "val_data": splits.val_set(), "teacher_cache": cache, "clip_shape": clip_shape,
                    "sample_weights": weights}
        overrides = {**settings, **options}
        if j > 0:
            overrides["label_weight"] = 0.0  # the label term counts once, in the first part
        parts.append(make_objective(method, t, student, **overrides))
    objective = parts[0] if len(parts) == 1 else DenseDistillation(parts)
    run = train_and_report(student, train_set, splits.val_set(), splits.test,
                           build=lambda: build_model(spec, splits.num_classes), objective=objective, epochs=epochs,
                           lr=lr, batch_size=batch_size, seed=seed, out_dir=folder / "fit", run_config=run_config,
                           progress=progress, amp=amp, log_dir=log_dir)
    info = {"rung": k, "trained": True, "spec": spec.to_dict(), "method": method, "epochs": epochs, "seed": seed,
            "views": views, **run.info(), "flops": count_flops(student, (1, *clip_shape))}
    return student, info
