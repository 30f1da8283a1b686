"""The glue every notebook, the CLI and the benchmark share: data splits for weak supervision,
classifier training through the run cache, and the three teacher protocols.

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

import torch
from torch.utils.data import Dataset, Subset

from kdlab import config
from kdlab.data import VideoFolder, default_dataset, label_budget, read_budget, train_val_split
from kdlab.data.budgets import per_class_order, choose_budget
from kdlab.data.fingerprint import dataset_fingerprint
from kdlab.models import build_model, count_flops
from kdlab.protocol import labels_seen, mark_teacher
from kdlab.settings import SettingError
from kdlab.runs import load_or_train
from kdlab.trained import train_and_report

PROTOCOLS = ("all", "labelled", "pretrained")


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
        return {"root": config.display_path(self.root), "classes": self.num_classes, "train": len(self.labels),
                "labelled": len(self.labelled), "unlabelled": len(self.unlabelled), "val": len(self.val),
                "test": len(self.test), "budget": self.cfg.budget, "pool": self.cfg.pool}


# ------------------------------------------------------------------------------------ training

def default_epochs(kind: str) -> int:
    """Epochs per model role in the default and quick modes."""
    table = {"teacher": (20, 4), "student": (15, 4), "pretrain": (10, 3)}
    default, quick = table[kind]
    return config.pick(default, quick)


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
