"""Label budgets: stratified, seeded labelled subsets written as split files.

``label_budget(root, 10)`` writes ``trainlist01_budget10_seed0.txt`` beside the official splits,
in the UCF101 trainlist format ("Class/video.avi <1-based label>"), so a budget is a file that a
person can read and another tool can reuse. Budgets with one seed are nested: the 5% subset is
inside the 10% subset, which is inside the 20% one, because each class is shuffled once per
seed and a budget takes the first ``round(percent% * count)`` of it (at least one per class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kdlab.io import atomic_write_text

from .errors import ErrorLog, VideoError
from .splits import read_split


def per_class_order(labels: Sequence[int], seed: int, salt: int = 0) -> dict[int, list[int]]:
    """For each class, the positions of its samples in a seeded random order."""
    labels = np.asarray(labels, dtype=np.int64)
    order = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng = np.random.default_rng([seed, salt, int(c)])
        order[int(c)] = members[rng.permutation(len(members))].tolist()
    return order


def budget_name(percent: float, seed: int = 0, fold: int = 1) -> str:
    return f"trainlist{fold:02d}_budget{percent:g}_seed{seed}.txt"


def choose_budget(labels: Sequence[int], percent: float, seed: int = 0, fold: int = 1) -> list[int]:
    """Sorted positions of the labelled samples: round(percent% of each class), at least 1."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    chosen = []
    for c, members in per_class_order(labels, seed, salt=fold).items():
        k = max(1, int(round(percent / 100 * len(members))))
        chosen.extend(members[:k])
    return sorted(chosen)


def label_budget(root: str | Path, percent: float, *, seed: int = 0, fold: int = 1,
                 split_dir: str | Path | None = None) -> Path:
    """Path of the budget split file for ``percent``% labels of the training split; created if absent.

    The file lies beside the official split files (``split_dir``). Videos that the training split
    names but that do not exist are left out of the count.
    """
    log = ErrorLog("skip")  # budgets cover the usable lines; VideoFolder reports the rest
    layout, samples = read_split(root, "train", fold, split_dir=split_dir, log=log)
    path = layout.split_dir / budget_name(percent, seed, fold)
    if path.is_file():
        return path
    if not samples:
        raise VideoError(f"{root}: the training split of fold {fold} has no usable videos", root)
    keep = choose_budget([lab for _, lab in samples], percent, seed, fold)
    text = "".join(f"{samples[i][0]} {samples[i][1] + 1}\n" for i in keep)
    return atomic_write_text(path, text)  # a reader never sees half a budget


def read_budget(path: str | Path) -> list[tuple[str, int]]:
    """[(relative path, 0-based label)] of a budget file."""
    path = Path(path)
    out = []
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip():
            continue
        parts = raw.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise VideoError(f"{path}, line {n}: malformed line {raw!r}; expected 'Class/video.avi <label>'", path, n)
        out.append((parts[0], int(parts[1]) - 1))
    return out


def train_val_split(labels: Sequence[int], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Stratified split of positions 0..len(labels)-1 -> (train_idx, val_idx), both sorted.

    Each class gives round(val_fraction * count) samples to validation, at least one when it
    has two or more samples (so every class is validated) and never all of them.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    val = []
    for c, members in per_class_order(labels, seed, salt=7919).items():
        k = int(round(val_fraction * len(members)))
        if val_fraction > 0 and len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        val.extend(members[:k])
    val_set = set(val)
    train = [i for i in range(len(labels)) if i not in val_set]
    return train, sorted(val)
