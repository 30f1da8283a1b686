"""Fixed training views kept as one tensor on the training device, batches drawn by index.

A student trained on V fixed views per video (:class:`kdlab.distill.CachedViews`, wrapped in
:class:`kdlab.weak_splits.MaskedLabels` by :func:`kdlab.students.weak_training_set`) sees the same
N x V clips every epoch. Read item by item (open, crop, flip, normalise, collate), the loader
feeds a CPU-trained student comfortably (about 10 x its speed on 2 cores) but starves a GPU.
:class:`ResidentViews` reads every view once into ``(N, V, 3, T, H, W)`` on the device;
:class:`ResidentLoader` then draws each batch by index there.

The batches are the DataLoader's, bit for bit: the shuffled order and each item's view choice
come from the same DataLoader machinery over a dataset of positions whose ``__getitem__`` draws
the view exactly as ``CachedViews.__getitem__`` does (one ``torch.randint`` from the global RNG,
in item order), so the random streams, and the trained weights, are unchanged.

:func:`resident_loader` is what :func:`kdlab.train.fit` calls: a ResidentLoader when the data are
fixed views, training runs in one process, and the views fit the budget (``KDLAB_RESIDENT_MB``,
default 4096 MiB; ``0`` turns the path off), else None (the item-by-item DataLoader).
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset

from kdlab.distill.teacher_cache import CachedViews
from kdlab.weak_splits import MaskedLabels

BUDGET_VARIABLE = "KDLAB_RESIDENT_MB"


def _views_of(data: Dataset) -> tuple[CachedViews, list[int], set[int] | None] | None:
    """``(views, base indices, labelled set or None)`` of fixed-view data, else None."""
    if isinstance(data, MaskedLabels) and isinstance(data.base, CachedViews):
        return data.base, data.indices, data.keep
    if isinstance(data, CachedViews):
        return data, list(range(len(data))), None
    return None


class ResidentViews:
    """Every view of fixed-view data on ``device``.

    Attributes: ``clips`` (N, V, 3, T, H, W) as the dataset gives them, ``labels`` (N, V) int64
    (a label-mapped flip can change a view's label; -1 outside MaskedLabels' labelled set) and
    ``index`` (N,) int64, the base dataset's video index of each position.
    """

    def __init__(self, data: Dataset, device: torch.device | str = "cpu"):
        found = _views_of(data)
        if found is None:
            raise TypeError(f"ResidentViews needs CachedViews (optionally in MaskedLabels), got {type(data).__name__}")
        views, indices, keep = found
        self.views = views.views
        clips, labels = [], []
        for i in indices:
            items = [views.view(i, v) for v in range(self.views)]
            clips.append(torch.stack([torch.as_tensor(item[0]) for item in items]))
            labels.append([int(item[1]) if keep is None or i in keep else -1 for item in items])
        self.clips = torch.stack(clips).to(device)
        self.labels = torch.tensor(labels, dtype=torch.long, device=device)
        self.index = torch.tensor(indices, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, positions: torch.Tensor, views: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(clips (B, 3, T, H, W), labels (B,), index (B,), view (B,))`` for positions and views (B,)."""
        positions = positions.to(self.clips.device, non_blocking=True)
        views = views.to(self.clips.device, non_blocking=True)
        return self.clips[positions, views], self.labels[positions, views], self.index[positions], views


class _Positions(Dataset):
    """Position p -> ``(p, view)``, the view drawn as :meth:`CachedViews.__getitem__` draws it."""

    def __init__(self, n: int, views: int):
        self.n, self.views = n, views

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, p: int):
        return p, int(torch.randint(self.views, ()))


class ResidentLoader(DataLoader):
    """The DataLoader ``DataLoader(data, batch_size, shuffle=True, drop_last=..., generator=Generator().manual_seed(seed))``
    (its ``dataset``, ``sampler``, ``generator`` and length are that loader's: ``fit`` reseeds the
    generator every epoch, objectives read ``dataset``), whose batches come from a
    :class:`ResidentViews` on ``device``: the same batches, in the same order and with the same
    views. The views are read on the first iteration (a finished run that only resumes reads none)."""

    def __init__(self, data: Dataset, batch_size: int, seed: int, drop_last: bool, device: torch.device | str = "cpu"):
        super().__init__(data, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                         generator=torch.Generator().manual_seed(seed))
        self.device, self.bank = torch.device(device), None
        views = _views_of(data)[0].views
        # Positions and views are drawn by the DataLoader machinery itself, from the same generator.
        self._order = DataLoader(_Positions(len(data), views), batch_size=batch_size, shuffle=True,
                                 drop_last=drop_last, generator=self.generator)

    def __iter__(self):
        if self.bank is None:
            self.bank = ResidentViews(self.dataset, self.device)
        # The inner iterator is made now, not on the first batch: making one draws from the generator,
        # and callers that call iter() twice (tqdm's asyncio variant does) must draw as a DataLoader does.
        order = iter(self._order)
        return (self.bank.batch(positions, views) for positions, views in order)


def _budget_bytes() -> int:
    raw = os.environ.get(BUDGET_VARIABLE, "").strip()
    try:
        return int(float(raw) * 2**20) if raw else 4096 * 2**20
    except ValueError:
        raise ValueError(f"{BUDGET_VARIABLE} must be a number of MiB (0 turns resident views off), got {raw!r}") from None


def resident_loader(data: Dataset, batch_size: int, seed: int, drop_last: bool, device: torch.device,
                    world: int = 1) -> ResidentLoader | None:
    """A :class:`ResidentLoader` for ``data`` on ``device`` when it applies (module docstring), else None."""
    found = _views_of(data)
    if found is None or world > 1 or len(data) == 0:
        return None
    views, indices, _ = found
    first = torch.as_tensor(views.view(indices[0], 0)[0])
    if len(indices) * views.views * first.numel() * first.element_size() > _budget_bytes():
        return None
    return ResidentLoader(data, batch_size, seed, drop_last, device)


__all__ = ["ResidentLoader", "ResidentViews", "resident_loader", "BUDGET_VARIABLE"]
