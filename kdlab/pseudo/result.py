"""The output of refinement: per-video training targets, what each one is, and its metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from .metrics import expected_calibration_error
from .views import LabelView

#: ``PseudoLabels.kind`` codes: what each video's target is.
KINDS = ("none", "given", "corrected", "pseudo", "dropped")


@dataclass
class PseudoLabels:
    """Training targets for the N videos of the base training dataset (indexed like it).

    soft: (N, C) target distributions; hard: (N,) class or -1; mask: (N,) bool, True where the
    video has a target; weights: (N,) (0 outside the mask); given: (N,) the given labels after
    correction (-1: unlabelled or dropped); original: (N,) the given labels before;
    kind: (N,) codes into :data:`KINDS`; confidence: (N,) max of S (NaN where not predicted);
    thresholds: (C,) the class-adaptive thresholds.
    index: (n,) the predicted videos; ensemble, probs, smoothed: (n, C) the ensemble's
    probabilities as predicted, calibrated (P) and smoothed (S); settings: the refinement
    settings, with the temperature used.
    """

    soft: torch.Tensor
    hard: torch.Tensor
    mask: torch.Tensor
    weights: torch.Tensor
    given: torch.Tensor
    original: torch.Tensor
    kind: torch.Tensor
    confidence: torch.Tensor
    thresholds: torch.Tensor
    index: torch.Tensor
    ensemble: torch.Tensor
    probs: torch.Tensor
    smoothed: torch.Tensor
    settings: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.soft.shape[1]

    def where(self, kind: str) -> torch.Tensor:
        """BoolTensor (N,): the videos of one kind ("given", "corrected", "pseudo", "dropped", "none")."""
        if kind not in KINDS:
            raise KeyError(f"unknown kind {kind!r}; valid: {KINDS}")
        return self.kind == KINDS.index(kind)

    @property
    def best_guess(self) -> torch.Tensor:
        """(n,) a label for every predicted video: the given label (after correction) where there
        is one, else argmax S. The refined labels at full coverage."""
        guess = self.smoothed.argmax(1)
        given = self.given[self.index]
        return torch.where(given >= 0, given, guess)

    def targets(self) -> dict[str, torch.Tensor]:
        """``{"soft_targets", "sample_weights"}`` for ``kdlab.train.Supervised(**pl.targets())``.

        Rows are looked up by each item's base-dataset index. The targets describe the *unflipped*
        video: train on a dataset without random flips (``pl.dataset(base)``, or ``flip=False``),
        or a mirrored MoveLeft clip would be trained towards MoveLeft.
        """
        return {"soft_targets": self.soft, "sample_weights": self.weights}

    def dataset(self, base: Dataset, indices=None, *, flip: bool = False) -> LabelView:
        """The videos with a target (or ``indices``) of ``base``, labelled with ``hard``: items
        ``(clip, hard[index], index)``. ``flip=True`` mirrors with label mapping (hard labels only)."""
        if indices is None:
            indices = torch.nonzero(self.mask).flatten().tolist()
        return LabelView(base, indices, self.hard, flip=flip)

    def metrics(self, true_labels) -> dict:
        """Quality against the hidden true labels (N,). Accuracies and coverages are fractions in [0, 1].

        - coverage / accuracy: share of the predicted videos with a target, and the accuracy of
          those targets (what the student trains on);
        - pseudo_coverage / pseudo_accuracy: the same over the unlabelled videos only;
        - given_accuracy_before / given_accuracy_after: the given labels before and after correction;
        - corrections, corrections_right, dropped, noisy_given, noisy_fixed (wrong given labels
          that were corrected to the truth or dropped);
        - raw_accuracy (argmax P), smoothed_accuracy (argmax S), full_accuracy (best_guess),
          all at full coverage over the predicted videos;
        - ece_ensemble, ece_calibrated, ece: expected calibration error before calibration, after it
          (P) and after smoothing (S); temperature; thresholds: per class.
        """
        true = torch.as_tensor(true_labels, dtype=torch.long)
        if true.shape != self.hard.shape:
            raise ValueError(f"true_labels {tuple(true.shape)} must be (N,) = {tuple(self.hard.shape)}")
        idx, true_r = self.index, true[self.index]
        rows = torch.zeros_like(self.mask)
        rows[idx] = True

        def frac(num, den) -> float:
            den = int(den)
            return float(num) / den if den else float("nan")

        used = self.mask & rows
        unl = rows & (self.original < 0)
        pseudo = self.where("pseudo")
        labelled = rows & (self.original >= 0)
        kept = labelled & (self.given >= 0)
        corrected, dropped = self.where("corrected"), self.where("dropped")
        noisy = labelled & (self.original != true)
        return {
            "videos": int(rows.sum()),
            "coverage": frac(used.sum(), rows.sum()),
            "accuracy": frac((self.hard[used] == true[used]).sum(), used.sum()),
            "pseudo_coverage": frac(pseudo.sum(), unl.sum()),
            "pseudo_accuracy": frac((self.hard[pseudo] == true[pseudo]).sum(), pseudo.sum()),
            "labelled": int(labelled.sum()),
            "given_accuracy_before": frac((self.original[labelled] == true[labelled]).sum(), labelled.sum()),
            "given_accuracy_after": frac((self.given[kept] == true[kept]).sum(), kept.sum()),
            "corrections": int(corrected.sum()),
            "corrections_right": int((self.given[corrected] == true[corrected]).sum()),
            "dropped": int(dropped.sum()),
            "dropped_were_wrong": int((self.original[dropped] != true[dropped]).sum()),
            "noisy_given": int(noisy.sum()),
            "noisy_fixed": int((noisy & (dropped | (corrected & (self.given == true)))).sum()),
            "raw_accuracy": frac((self.probs.argmax(1) == true_r).sum(), len(idx)),
            "smoothed_accuracy": frac((self.smoothed.argmax(1) == true_r).sum(), len(idx)),
            "full_accuracy": frac((self.best_guess == true_r).sum(), len(idx)),
            "ece_ensemble": expected_calibration_error(self.ensemble, true_r),
            "ece_calibrated": expected_calibration_error(self.probs, true_r),
            "ece": expected_calibration_error(self.smoothed, true_r),
            "temperature": self.settings.get("temperature", 1.0),
            "thresholds": self.thresholds.tolist(),
            "pseudo_per_class": torch.bincount(self.hard[pseudo], minlength=self.num_classes).tolist(),
        }

    def __repr__(self) -> str:
        counts = {k: int(self.where(k).sum()) for k in KINDS if self.where(k).any()}
        return f"PseudoLabels(videos={self.hard.numel()}, classes={self.num_classes}, {counts})"
