"""The multi-view ensemble: a model's averaged class probabilities over K clips x label-preserving views.

For every video the model sees K clips (evenly spaced phases) in each view. The "flip" view
mirrors the clip, which turns MoveLeft into MoveRight, so its class probabilities are mapped back
before averaging: ``p_orig[c] = p_flipped[flip_map[c]]``. ``blind_flip=True`` averages without
the mapping, to show the trap: on mirrored motions the two views then cancel out.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from kdlab.progress import tqdm

from kdlab.data import hflip
from kdlab.hooks import SubstageTap
from kdlab.modes import eval_mode

from .views import find_flip_map, with_clips

VIEWS = ("identity", "flip")


@dataclass
class Predictions:
    """A model's ensemble predictions; row r describes base-dataset video ``index[r]``.

    probs: (n, C) mean over views and clips of the softmax probabilities (flipped views mapped
        back through ``flip_map`` unless ``blind_flip``).
    members: (n, V, K, C) every view x clip's probabilities, after that mapping.
    embeddings: (n, D) pooled embeddings of the identity views, averaged over clips (None when
        not asked for). Flipped views are left out: a mirrored MoveLeft embeds like a MoveRight.
    index: LongTensor (n,).
    """

    probs: torch.Tensor
    members: torch.Tensor
    embeddings: torch.Tensor | None
    index: torch.Tensor
    views: tuple[str, ...]
    clips: int
    blind_flip: bool = False

    def __len__(self) -> int:
        return self.probs.shape[0]

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]

    def view_probs(self, view: str) -> torch.Tensor:
        """(n, C) mean over clips of one view's probabilities."""
        if view not in self.views:
            raise KeyError(f"no view {view!r} in these predictions; views: {self.views}")
        return self.members[:, self.views.index(view)].mean(1)

    def single(self) -> torch.Tensor:
        """(n, C) the first clip of the first view alone: what one plain forward pass would say."""
        return self.members[:, 0, 0]


def _check_views(views: tuple[str, ...], embed: str | None) -> None:
    bad = [v for v in views if v not in VIEWS]
    if bad or not views or len(set(views)) != len(views):
        raise ValueError(f"views={views!r}: give distinct views from {VIEWS}")
    if embed and "identity" not in views:
        raise ValueError("embeddings come from the identity view: add 'identity' to views or pass embed=None")


def _check_flip_map(flip_map, num_classes: int) -> torch.Tensor:
    """``flip_map`` as a LongTensor (C,), or a ValueError saying why a flip would not preserve labels."""
    if flip_map is None:
        raise ValueError("the 'flip' view needs flip_map (label -> label of the mirrored video); the dataset has "
                         "none, so pass flip_map=... or views=('identity',)")
    fm = torch.as_tensor(list(flip_map), dtype=torch.long)
    if fm.numel() != num_classes:
        raise ValueError(f"flip_map has {fm.numel()} entries for a model with {num_classes} classes")
    if (fm < 0).any():
        missing = torch.nonzero(fm < 0).flatten().tolist()
        raise ValueError(f"classes {missing} have no mirrored class in this dataset (flip_map -1), so a flip does "
                         "not preserve their label: use views=('identity',)")
    if not torch.equal(fm[fm], torch.arange(num_classes)):
        raise ValueError(f"flip_map {fm.tolist()} is not an involution (mirroring twice must give the class back)")
    return fm


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, *, clips: int = 1, views: Sequence[str] = ("identity", "flip"),
            flip_map: Sequence[int] | None = None, blind_flip: bool = False, embed: str | None = "head.embed",
            batch_size: int = 32, device=None, progress: bool = False) -> Predictions:
    """Run ``model`` over every video of ``dataset`` with ``clips`` clips x ``views``; see :class:`Predictions`.

    ``dataset`` items are ``(clip, label, index, ...)``; labels are ignored. A VideoFolder (or a
    Subset of one) is read with ``sampling="multi"`` and no random flip, so results are
    deterministic. ``flip_map`` defaults to the dataset's. ``embed`` names the module whose
    output (B, D) is the embedding for kNN smoothing (None: no embeddings).
    The model runs in eval mode; its mode is restored afterwards.
    """
    views = tuple(views)
    _check_views(views, embed)
    flip_map = find_flip_map(dataset) if flip_map is None else flip_map
    fm, num_classes = None, getattr(model, "num_classes", None)
    if "flip" in views and not blind_flip and (flip_map is None or num_classes is not None):
        fm = _check_flip_map(flip_map, num_classes)  # fail before any forward pass
    data = with_clips(dataset, clips)
    if len(data) == 0:
        raise ValueError("the dataset is empty: nothing to predict")
    params = next(model.parameters(), None)
    if device is None:
        device = params.device if params is not None else torch.device("cpu")
    device = torch.device(device)
    tap = SubstageTap(model, [embed], detach=True) if embed else None
    members, embeddings, indices = [], [], []
    with eval_mode(model), contextlib.ExitStack() as stack:
        if tap:
            tap.attach()
            stack.callback(tap.remove)
        for batch in tqdm(DataLoader(data, batch_size=batch_size), desc="ensemble", leave=False, disable=not progress):
            x, index = batch[0].to(device), batch[2]
            x = x[:, None] if x.dim() == 5 else x  # (B, K, 3, T, H, W)
            b, k = x.shape[:2]
            if k != clips:
                raise ValueError(f"{type(dataset).__name__} gave {k} clip(s) per video, expected clips={clips}: pass "
                                 "a VideoFolder (or a Subset of one), which kdlab can sample K clips from, or "
                                 "a dataset that yields (clips, 3, T, H, W)")
            x = x.flatten(0, 1)
            per_view = []
            for view in views:
                p = model(hflip(x) if view == "flip" else x).float().softmax(1)  # (B*K, C)
                if view == "flip" and not blind_flip:
                    fm = _check_flip_map(flip_map, p.shape[1]) if fm is None else fm
                    p = p[:, fm.to(p.device)]  # p_orig[c] = p_flipped[flip_map[c]]
                if view == "identity" and tap:
                    embeddings.append(tap[embed].float().flatten(1).view(b, k, -1).mean(1).cpu())
                per_view.append(p.view(b, k, -1).cpu())
            members.append(torch.stack(per_view, 1))  # (B, V, K, C)
            indices.append(torch.as_tensor(index, dtype=torch.long))
    members = torch.cat(members)
    return Predictions(members.mean((1, 2)), members, torch.cat(embeddings) if embeddings else None,
                       torch.cat(indices), views, int(clips), bool(blind_flip))
