"""From a teacher to pseudo-labelled training data: notebook 02's recipe as two calls.

:func:`teacher_pseudo_labels` runs the whole refinement of notebook 02 on a
:class:`~kdlab.weak_splits.Splits`: the multi-view ensemble over every training video outside
validation, a temperature fitted on the validation split, kNN smoothing, corrections and
class-adaptive thresholds (``refined=True``); or, for the ablation, the *raw* teacher argmax of one
clip for every unlabelled video, with no calibration, smoothing, correction or threshold
(``refined=False``).

:func:`with_pseudo_labels` returns a copy of the splits whose training videos carry those labels,
so that any recipe that trains on ``splits`` (e.g. :func:`kdlab.students.distill_student`) trains
on them with its own loop, views and teacher cache: the videos with a target become the
"labelled" ones, each labelled with its hard pseudo-label (mapped through ``flip_map`` when the
augmentation mirrors the clip), the rest stay unlabelled. Pass ``sample_weights=pl.weights`` to
the objective to weight each video by its confidence, as refinement does.

Label digests (:func:`pseudo_label_digest`) go into run keys: a changed label set trains a new run.
"""

from __future__ import annotations

import copy
import hashlib

import torch
from torch.utils.data import Subset

from ..protocol import check_teacher
from .ensemble import predict
from .refine import fit_temperature, refine
from .result import PseudoLabels
from .weak import WeakLabels

__all__ = ["REFINE_DEFAULTS", "teacher_pseudo_labels", "with_pseudo_labels", "pseudo_label_digest", "summary"]

#: Notebook 02's refinement settings (its section 6): clips per view of the ensemble, the global
#: threshold tau, the class-adaptive quantile, kNN smoothing and the correction threshold.
REFINE_DEFAULTS = dict(clips=2, tau=0.9, quantile=0.5, knn=10, alpha=0.3, correct_tau=0.9)


def teacher_pseudo_labels(teacher: torch.nn.Module, splits, weak: WeakLabels | None = None, *, refined: bool = True,
                          progress: bool = False, allow_label_leak: bool = False, **settings) -> PseudoLabels:
    """Pseudo-labels for every training video outside validation, from ``teacher``.

    Args:
        teacher: the labelling model (eval mode is set and restored by :func:`predict`).
        splits: a :class:`kdlab.weak_splits.Splits` (its ``train_eval``, ``labelled``,
            ``unlabelled``, ``val`` and ``labels`` are read; true labels only for the
            validation split's temperature and, outside this function, for measuring).
        weak: the labels the learner has (default: the budget's clean labels).
        refined: True: notebook 02's refinement with :data:`REFINE_DEFAULTS` updated by
            ``settings`` (any :func:`refine` argument, and ``clips``). False: the raw argmax of
            one identity clip for every unlabelled video, weight 1, given labels kept.
        allow_label_leak: do not warn when the teacher saw the labels of the unlabelled videos
            (:func:`kdlab.protocol.check_teacher`).
    """
    check_teacher(teacher, splits, allow_label_leak=allow_label_leak, what="pseudo-labelling")
    weak = weak if weak is not None else WeakLabels.from_splits(splits)
    videos = Subset(splits.train_eval, splits.labelled + splits.unlabelled)
    if not refined:
        preds = predict(teacher, videos, clips=1, views=("identity",), embed=None, progress=progress)
        return refine(preds, weak, temperature=1.0, tau=0.0, quantile=1.0, floor=0.0, knn=0, correction="off",
                      soft=False, weighting="uniform")
    options = {**REFINE_DEFAULTS, **settings}
    clips = int(options.pop("clips"))
    preds = predict(teacher, videos, clips=clips, progress=progress)
    val_true = torch.tensor([splits.labels[i] for i in splits.val])
    temperature = options.pop("temperature", None)
    if temperature is None:
        temperature = fit_temperature(predict(teacher, splits.val_set(), clips=clips), val_true)
    return refine(preds, weak, temperature=temperature, **options)


def with_pseudo_labels(splits, pl: PseudoLabels):
    """A shallow copy of ``splits`` whose training videos carry ``pl.hard`` as labels.

    ``train`` becomes ``pl.dataset(splits.train, all videos, flip=...)`` (it flips when the
    original did, mapping the pseudo-label); ``labelled`` is every non-validation video with a
    target, ``unlabelled`` the others. Validation, test and ``labels`` (the truth) are unchanged.
    """
    out = copy.copy(splits)
    flips = bool(getattr(splits.train, "flip", False))
    out.train = pl.dataset(splits.train, list(range(len(splits.train))), flip=flips)
    pool = sorted(set(splits.labelled) | set(splits.unlabelled))
    out.labelled = [i for i in pool if bool(pl.mask[i])]
    out.unlabelled = [i for i in pool if not bool(pl.mask[i])]
    return out


def pseudo_label_digest(pl: PseudoLabels) -> str:
    """A short hash of which videos have a target, their hard labels and weights (for run keys)."""
    h = hashlib.sha256(torch.stack([pl.mask.long(), pl.hard]).numpy().tobytes())
    h.update(pl.weights.float().numpy().tobytes())
    return h.hexdigest()[:16]


def summary(pl: PseudoLabels, true_labels) -> dict:
    """The few numbers a results table needs: coverage and accuracy of the targets, overall and
    on the unlabelled videos (fractions), and the corrections made (how many were right)."""
    m = pl.metrics(true_labels)
    keep = ("coverage", "accuracy", "pseudo_coverage", "pseudo_accuracy", "corrections", "corrections_right",
            "temperature")
    return {k: m[k] for k in keep}

