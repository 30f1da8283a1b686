"""Weak labels: a few given labels, some of them wrong, with the true ones kept aside for measuring.

Weak supervision in kdlab means two things at once (README, "The method"): only a budget of training videos
carries a label, and a fraction of those labels is wrong. :func:`inject_label_noise` makes the
wrong ones, seeded and exact in number; :class:`WeakLabels` records what the learner is given
(``given``, -1 where unlabelled) next to what is true (``true``), which only metrics may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.utils.data import Dataset

from .views import LabelView

NOISE_MODES = ("symmetric", "mirror", "pairflip")


def _as_long(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.long).flatten().clone()
    if t.numel() and t.min() < 0:
        raise ValueError(f"{name} must be class ids >= 0; got a minimum of {int(t.min())}")
    return t


def inject_label_noise(labels, indices, rate: float, *, mode: str = "symmetric", num_classes: int | None = None,
                       flip_map: Sequence[int] | None = None, seed: int = 0) -> torch.Tensor:
    """A copy of ``labels`` (N,) in which exactly ``round(rate * len(indices))`` of ``labels[indices]`` are wrong.

    Which samples are corrupted is drawn from ``torch.Generator().manual_seed(seed)``, so the same
    arguments corrupt the same samples. Modes:

    - ``"symmetric"``: a wrong label is a uniformly random *other* class;
    - ``"mirror"``: the class of the horizontally mirrored motion, ``flip_map[y]`` (MoveLeft ->
      MoveRight). Only samples whose class has a different mirror partner can be corrupted;
      asking for more than there are raises a ValueError;
    - ``"pairflip"``: class ``(y + 1) % num_classes``, the classic class-dependent noise.

    Returns a LongTensor (N,); labels outside ``indices`` are unchanged.
    """
    labels = _as_long(labels, "labels")
    indices = torch.as_tensor(indices, dtype=torch.long).flatten()
    if indices.unique().numel() != indices.numel():
        raise ValueError("indices must not repeat")
    if indices.numel() and (indices.min() < 0 or indices.max() >= labels.numel()):
        raise IndexError(f"indices must lie in [0, {labels.numel()}); got {int(indices.min())}..{int(indices.max())}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {mode!r}; valid: {', '.join(NOISE_MODES)}")
    K = int(num_classes if num_classes is not None else (int(labels.max()) + 1 if labels.numel() else 0))
    if labels.numel() and labels.max() >= K:
        raise ValueError(f"labels go up to {int(labels.max())} but num_classes={K}")
    if K < 2:
        raise ValueError(f"label noise needs at least 2 classes, got num_classes={K}")

    g = torch.Generator().manual_seed(seed)
    candidates = indices
    if mode == "mirror":
        if flip_map is None or len(flip_map) != K:
            raise ValueError(f"mode='mirror' needs flip_map with one entry per class ({K}); got {flip_map!r}")
        partner = torch.as_tensor(list(flip_map), dtype=torch.long)
        y = labels[indices]
        candidates = indices[(partner[y] >= 0) & (partner[y] != y)]
    n = int(round(rate * indices.numel()))
    if n > candidates.numel():
        raise ValueError(f"mode={mode!r} can corrupt only the {candidates.numel()} of {indices.numel()} samples "
                         f"whose class has a mirror partner, but rate={rate} asks for {n}")
    chosen = candidates[torch.randperm(candidates.numel(), generator=g)[:n]]

    noisy = labels.clone()
    y = labels[chosen]
    if mode == "symmetric":
        # An offset in 1..K-1 always lands on another class, uniformly.
        noisy[chosen] = (y + torch.randint(1, K, (n,), generator=g)) % K
    elif mode == "mirror":
        noisy[chosen] = partner[y]
    else:
        noisy[chosen] = (y + 1) % K
    return noisy


@dataclass
class WeakLabels:
    """What a weakly supervised learner is given, indexed like the base training dataset (N videos).

    given: LongTensor (N,), the (possibly wrong) label of each labelled video, -1 elsewhere.
    true: LongTensor (N,), the true labels: for metrics only, never for training.
    num_classes: K.
    """

    given: torch.Tensor
    true: torch.Tensor
    num_classes: int

    def __post_init__(self):
        if self.given.shape != self.true.shape or self.given.dim() != 1:
            raise ValueError(f"given {tuple(self.given.shape)} and true {tuple(self.true.shape)} must both be (N,)")

    @classmethod
    def make(cls, true_labels, labelled, noise_rate: float = 0.0, *, mode: str = "symmetric",
             num_classes: int | None = None, flip_map: Sequence[int] | None = None, seed: int = 0) -> "WeakLabels":
        """Label the videos at positions ``labelled``, corrupting ``round(noise_rate * len(labelled))`` of them."""
        true = _as_long(true_labels, "true_labels")
        K = int(num_classes if num_classes is not None else int(true.max()) + 1)
        labelled = torch.as_tensor(labelled, dtype=torch.long).flatten()
        noisy = inject_label_noise(true, labelled, noise_rate, mode=mode, num_classes=K, flip_map=flip_map, seed=seed)
        given = torch.full_like(true, -1)
        given[labelled] = noisy[labelled]
        return cls(given, true, K)

    @classmethod
    def from_splits(cls, splits, noise_rate: float = 0.0, *, mode: str = "symmetric", seed: int = 0) -> "WeakLabels":
        """The budget of a :class:`kdlab.weak_splits.Splits` (its ``labelled`` videos), with noise."""
        return cls.make(splits.labels, splits.labelled, noise_rate, mode=mode, num_classes=splits.num_classes,
                        flip_map=splits.train.flip_map, seed=seed)

    @property
    def labelled(self) -> torch.Tensor:
        """BoolTensor (N,): True where a label is given."""
        return self.given >= 0

    @property
    def corrupted(self) -> torch.Tensor:
        """BoolTensor (N,): True where the given label is wrong."""
        return self.labelled & (self.given != self.true)

    def __len__(self) -> int:
        return self.given.numel()

    def summary(self) -> dict:
        n_lab, n_bad = int(self.labelled.sum()), int(self.corrupted.sum())
        return {"videos": len(self), "labelled": n_lab, "corrupted": n_bad,
                "noise_rate": n_bad / max(n_lab, 1), "classes": self.num_classes}

    def dataset(self, base: Dataset, indices=None, *, flip: bool | None = None) -> "LabelView":
        """``base`` seen with the given labels: items ``(clip, given[index], index)`` (-1 if unlabelled).

        ``indices`` picks the videos (default: the labelled ones), e.g. to train a model on the
        noisy budget as a user would. ``flip`` (default: whether ``base`` flips) mirrors clips
        with p=0.5 and maps the *given* label through the dataset's ``flip_map``; ``base``'s own
        flip is switched off, since it would map the true label, not the given one.
        """
        if indices is None:
            indices = torch.nonzero(self.labelled).flatten().tolist()
        return LabelView(base, indices, self.given, flip=flip)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"WeakLabels(videos={s['videos']}, labelled={s['labelled']}, corrupted={s['corrupted']}, "
                f"classes={s['classes']})")
