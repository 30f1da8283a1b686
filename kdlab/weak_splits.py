"""The weak-supervision splits every notebook, the CLI and the benchmark share.

:class:`DataConfig` says which videos, how clips are cut and how many labels there are;
:class:`Splits` holds the datasets of one such configuration. (:mod:`kdlab.data.splits` reads a
dataset's official split files; this module divides its training split further.)

Splits of the training videos (indices into the full train split, fixed by seeds):

- ``labelled``: the label budget (e.g. 10 %, stratified, from the budget file);
- ``val``: a stratified validation split carved from the *other* training videos, used only to
  pick epochs and tune; it is never trained on. (A simplification: with 10 % labels a validation
  split from the labelled videos alone would hold one video per class.)
- ``unlabelled``: the remaining training videos, whose labels are hidden (``-1``).

With ``DataConfig(pool=N)`` the *training pool* (labelled + unlabelled) is N videos per class:
validation is carved first (stratified, ``val_fraction`` of the training split, so it is the same
for every pool size), then N videos per class are drawn (seeded) from the rest, and the budget is
``budget`` percent of the pool (at least one video per class). A small pool is one knob of the
discriminative benchmark regime (README, "Benchmark"): with fewer videos a student can no longer
learn the task from the teacher's labels alone.

The test split is only for reporting.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset, Subset

from kdlab import environment
from kdlab.data import VideoFolder, default_dataset, label_budget, read_budget, train_val_split
from kdlab.data.budgets import choose_budget, per_class_order
from kdlab.data.fingerprint import dataset_fingerprint
from kdlab.settings import SettingError

__all__ = ["DataConfig", "MaskedLabels", "Splits"]


@dataclass(frozen=True)
class DataConfig:
    """Which videos, how clips are cut, and how many labels there are.

    ``root=None`` uses the generated default dataset (quick-mode sized under ``KDLAB_QUICK=1``).
    """

    root: str | None = None
    frames: int = 8
    size: int = 32
    budget: float = 10.0
    budget_seed: int = 0
    val_fraction: float = 0.1
    flip: bool = True
    cache: bool = True
    pool: int | None = None  # training-pool videos per class (None: every training video)

    def resolved_root(self) -> Path:
        return Path(self.root) if self.root else default_dataset()

    def key(self) -> dict:
        """The configuration as stored in run keys: what the data *is*, never where it lives.

        ``root`` is replaced by ``dataset``, the content fingerprint of the resolved dataset
        (:func:`kdlab.data.fingerprint.dataset_fingerprint`), so a run cache made in one folder is
        found again in another (``kdlab artifacts pack/unpack``) with the same data at another path.
        """
        key = {**dataclasses.asdict(self), "budget": float(self.budget)}
        del key["root"]
        key["dataset"] = dataset_fingerprint(self.resolved_root())
        if self.pool is None:
            del key["pool"]  # keys of runs without a pool stay what they were before pools existed
        return key


class MaskedLabels(Dataset):
    """A view of a dataset whose labels outside ``keep`` read ``-1`` (unlabelled).

    Items are ``(clip, label_or_-1, index)``; ``index`` stays the base dataset's index, so
    per-video tensors (pseudo-labels, weights, teacher caches) can be indexed by it.
    """

    def __init__(self, base: Dataset, indices, keep):
        self.base, self.indices, self.keep = base, list(indices), set(int(i) for i in keep)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        clip, label, index, *rest = self.base[self.indices[i]]
        return (clip, label if index in self.keep else -1, index, *rest)


class Splits:
    """Datasets for one :class:`DataConfig`.

    Attributes: ``train`` (the full train split with training augmentation: random windows and
    label-mapped flips), ``train_eval`` (the same videos, uniform clips, no augmentation),
    ``test``; index lists ``labelled``, ``val``, ``unlabelled``; ``labels`` (true labels of the
    train split, for measuring pseudo-labels only).
    """

    def __init__(self, cfg: DataConfig = DataConfig(), progress: bool = True):
        self.cfg = cfg
        root = cfg.resolved_root()
        common = dict(frames=cfg.frames, size=cfg.size, cache=cfg.cache, progress=progress)
        self.train = VideoFolder(root, "train", sampling="random", flip=cfg.flip, **common)
        self.train_eval = VideoFolder(root, "train", sampling="uniform", **common)
        self.test = VideoFolder(root, "test", sampling="uniform", **common)
        self.root, self.classes, self.num_classes = root, self.train.classes, self.train.num_classes
        self.labels = list(self.train.labels)
        if cfg.pool is None:
            self._split_whole(root)
        else:
            self._split_pool(int(cfg.pool))

    def _split_whole(self, root: Path) -> None:
        cfg = self.cfg
        position = {rel: i for i, (rel, _) in enumerate(self.train.samples)}
        budget_file = label_budget(root, cfg.budget, seed=cfg.budget_seed)
        self.labelled = sorted(position[rel] for rel, _ in read_budget(budget_file) if rel in position)
        others = [i for i in range(len(self.labels)) if i not in set(self.labelled)]
        fraction = min(0.9, cfg.val_fraction * len(self.labels) / max(len(others), 1))
        _, val_pos = train_val_split([self.labels[i] for i in others], fraction, seed=cfg.budget_seed)
        self.val = [others[p] for p in val_pos]
        self.unlabelled = sorted(set(others) - set(self.val))

    def _split_pool(self, per_class: int) -> None:
        cfg = self.cfg
        rest, self.val = train_val_split(self.labels, cfg.val_fraction, seed=cfg.budget_seed)
        counts = Counter(self.labels[i] for i in rest)
        if per_class < 1 or per_class > min(counts.values()):
            raise SettingError(f"pool={per_class} videos per class, but the training split has {min(counts.values())} "
                             f"per class outside validation (smallest class); choose 1..{min(counts.values())}")
        order = per_class_order([self.labels[i] for i in rest], cfg.budget_seed, salt=104729)
        pool = sorted(rest[p] for members in order.values() for p in members[:per_class])
        chosen = choose_budget([self.labels[i] for i in pool], cfg.budget, seed=cfg.budget_seed)
        self.labelled = sorted(pool[p] for p in chosen)
        self.unlabelled = sorted(set(pool) - set(self.labelled))

    # -- datasets ---------------------------------------------------------------------------
    def labelled_set(self) -> Dataset:
        """The labelled videos only (training augmentation)."""
        return Subset(self.train, self.labelled)

    def all_labels_set(self) -> Dataset:
        """Every training video outside validation, with its label: the upper-bound setting."""
        return Subset(self.train, self.labelled + self.unlabelled)

    def weak_set(self) -> Dataset:
        """Labelled + unlabelled videos; unlabelled ones carry label -1 (training augmentation)."""
        return MaskedLabels(self.train, self.labelled + self.unlabelled, self.labelled)

    def val_set(self) -> Dataset:
        return Subset(self.train_eval, self.val)

    # -- other label settings over the same pool ----------------------------------------------
    def with_all_labels(self) -> "Splits":
        """A copy in which every pool video is labelled: the student's upper bound (its capacity)."""
        out = copy.copy(self)
        out.labelled, out.unlabelled = sorted(self.labelled + self.unlabelled), []
        return out

    def labelled_only(self, repeat: int = 1) -> "Splits":
        """A copy whose weak set is the labelled budget alone, each video listed ``repeat`` times
        (so that an epoch can take as many optimiser steps as an epoch over the whole pool)."""
        out = copy.copy(self)
        out.labelled, out.unlabelled = [i for i in self.labelled for _ in range(repeat)], []
        return out

    def summary(self) -> dict:
        return {"root": environment.display_path(self.root), "classes": self.num_classes, "train": len(self.labels),
                "labelled": len(self.labelled), "unlabelled": len(self.unlabelled), "val": len(self.val),
                "test": len(self.test), "budget": self.cfg.budget, "pool": self.cfg.pool}
