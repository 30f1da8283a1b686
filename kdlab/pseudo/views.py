"""Dataset views that carry other labels than the files' own: given (noisy) or pseudo-labels.

A random horizontal flip must map the label through ``flip_map`` (MoveLeft mirrored is
MoveRight). ``VideoFolder(flip=True)`` maps its *true* label; a view that replaces the label
must flip by itself and map *its* label, so it switches the base dataset's flip off.
"""

from __future__ import annotations

import copy

import torch
from torch.utils.data import Dataset

from kdlab.data import flip_clip, hflip

__all__ = ["LabelView", "find_flip_map", "with_clips", "without_flip"]


def find_flip_map(dataset: Dataset) -> list[int] | None:
    """The ``flip_map`` of ``dataset`` or of the dataset it wraps (``Subset.dataset``, ``.base``)."""
    while dataset is not None:
        if hasattr(dataset, "flip_map"):
            return list(dataset.flip_map)
        inner = getattr(dataset, "dataset", None)
        dataset = inner if inner is not None else getattr(dataset, "base", None)
    return None


def without_flip(dataset: Dataset) -> tuple[Dataset, bool]:
    """``(copy of dataset with its random flip off, whether it flipped)``; shallow copies share the data.

    Looks through ``Subset.dataset`` and ``.base`` wrappers (e.g. ``MaskedLabels``).
    """
    if getattr(dataset, "flip", False) is True:
        plain = copy.copy(dataset)
        plain.flip = False
        return plain, True
    for attr in ("dataset", "base"):
        inner = getattr(dataset, attr, None)
        if isinstance(inner, Dataset):
            plain_inner, flipped = without_flip(inner)
            if flipped:
                outer = copy.copy(dataset)
                setattr(outer, attr, plain_inner)
                return outer, True
    return dataset, False


class LabelView(Dataset):
    """Videos ``indices`` of ``base`` labelled by ``labels[index]``: items ``(clip, label, index)``.

    ``index`` stays the base dataset's index, so per-video tensors (soft targets, weights) line up.
    ``flip``: mirror each clip with p=0.5 and map its label through ``flip_map`` (labels -1 stay
    -1; a class whose mirror is not in the dataset, ``flip_map[y] == -1``, is never flipped).
    Default: flip exactly when ``base`` did.
    """

    def __init__(self, base: Dataset, indices, labels: torch.Tensor, *, flip: bool | None = None):
        plain, base_flipped = without_flip(base)
        self.base, self.indices = plain, [int(i) for i in indices]
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.flip = base_flipped if flip is None else bool(flip)
        self.flip_map = find_flip_map(base)
        if self.flip and self.flip_map is None:
            raise ValueError("flip=True needs a base dataset with a flip_map (label -> label of the mirrored video)")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        clip, _, index, *rest = self.base[self.indices[i]]
        label = int(self.labels[index])
        if self.flip and torch.rand(()) < 0.5:
            if label >= 0:
                clip, label = flip_clip(clip, label, self.flip_map)
            else:
                clip = hflip(clip)  # unlabelled: nothing to map
        return (clip, label, index, *rest)

    def __repr__(self) -> str:
        return f"LabelView(videos={len(self)}, flip={self.flip}, base={type(self.base).__name__})"


def with_clips(dataset: Dataset, clips: int) -> Dataset:
    """A copy of ``dataset`` that yields ``clips`` deterministic, unflipped clips per video.

    The first dataset in the wrapper chain (``Subset.dataset``, ``.base``) with a ``sampling``
    attribute (a :class:`kdlab.data.VideoFolder`) is switched to ``sampling="multi"``; items
    then hold clips (clips, 3, T, H, W). Any other dataset is returned with its random flip
    off; it must yield its clips itself ((3, T, H, W) for clips=1, else (clips, 3, T, H, W)).
    """
    if hasattr(dataset, "sampling"):
        view = copy.copy(dataset)
        view.sampling, view.clips, view.flip = "multi", int(clips), False
        return view
    for attr in ("dataset", "base"):
        inner = getattr(dataset, attr, None)
        if isinstance(inner, Dataset):
            outer = copy.copy(dataset)
            setattr(outer, attr, with_clips(inner, clips))
            return outer
    plain, _ = without_flip(dataset)
    return plain
