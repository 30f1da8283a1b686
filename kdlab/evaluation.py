"""Scoring a classifier on a dataset: top-1/top-5, loss, per-class accuracy, confusion matrix.

:func:`evaluate` is what :func:`kdlab.train.fit` runs on validation after every epoch and what every
report runs on the test split (:func:`kdlab.trained.train_and_report`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from kdlab.hooks import unwrap
from kdlab.modes import eval_mode
from kdlab.progress import tqdm
from kdlab.runtime import autocast


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset | DataLoader, *, batch_size: int = 32, device=None,
             num_classes: int | None = None, progress: bool = False, amp: bool = False) -> dict:
    """Top-1/top-5 accuracy (percent), mean loss, per-class accuracy and the confusion matrix.

    Batches are ``(clips, labels, ...)`` (a Dataset's items or a DataLoader's batches). Clips
    ``(B, 3, T, H, W)`` are scored directly; multi-clip batches ``(B, K, 3, T, H, W)`` average the
    K clips' softmax (test-time averaging). The number of classes is ``num_classes``, else the
    model's ``num_classes`` attribute, else the width of its output. The model's train/eval mode
    is restored afterwards. Samples labelled ``-1`` are skipped. ``amp``: bf16 autocast.
    """
    device = device or next(model.parameters()).device
    device = torch.device(device)
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size)
    num_classes = num_classes or getattr(unwrap(model), "num_classes", None)
    # Sums stay on the device and are read once at the end (float64: the numbers a Python float sum gives).
    confusion = None
    top5_hits = torch.zeros((), dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    with eval_mode(model):
        for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
            clips, labels = batch[0].to(device), batch[1].to(device)
            with autocast(device, amp):
                if clips.dim() == 6:  # (B, K, 3, T, H, W): average the K views
                    b, k = clips.shape[:2]
                    probs = model(clips.flatten(0, 1)).float().softmax(1).view(b, k, -1).mean(1)
                else:
                    probs = model(clips).float().softmax(1)
            if confusion is None:
                num_classes = num_classes or probs.shape[1]
                confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
            keep = labels >= 0
            probs, labels = probs[keep], labels[keep]
            loss_sum += F.nll_loss(probs.clamp_min(1e-12).log(), labels, reduction="sum").double()
            top = probs.topk(min(5, num_classes), dim=1).indices
            top5_hits += (top == labels[:, None]).any(1).sum()
            confusion += torch.bincount(labels * num_classes + top[:, 0], minlength=num_classes**2)
    if confusion is None:  # no batch at all
        confusion = torch.zeros(num_classes or 0, num_classes or 0, dtype=torch.long)
    else:
        confusion = confusion.view(num_classes, num_classes).cpu()
    top5_hits, loss_sum = top5_hits.item(), loss_sum.item()
    n = int(confusion.sum())
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float() * 100).tolist()
    return {
        "top1": 100.0 * confusion.diag().sum().item() / max(n, 1),
        "top5": 100.0 * top5_hits / max(n, 1),
        "loss": loss_sum / max(n, 1),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "n": n,
    }


__all__ = ["evaluate"]
