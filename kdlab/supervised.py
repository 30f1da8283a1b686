"""Plain cross-entropy as an objective of :func:`kdlab.train.fit`, and the label term every objective shares.

An *objective* is a module called as ``objective(model, batch)`` that returns ``(terms, logits)``:
a dict of named scalar loss terms and the student's logits. :class:`Supervised` is the simplest one;
the distillation objectives (:mod:`kdlab.distill`) add their terms to the same :func:`label_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Supervised(nn.Module):
    """Cross-entropy on labelled samples: ``(model, (clips, labels[, index, ...])) -> ({"ce": loss}, logits)``.

    Labels ``-1`` mark unlabelled samples and are ignored. With ``soft_targets`` (N, classes) and
    optional ``sample_weights`` (N,), indexed by the batch's sample index, it trains on (pseudo-)
    label distributions instead: loss = sum_i w_i * CE(p_i, logits_i) / sum_i w_i over the batch.
    """

    def __init__(self, soft_targets: torch.Tensor | None = None, sample_weights: torch.Tensor | None = None,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("soft_targets", soft_targets, persistent=False)
        self.register_buffer("sample_weights", sample_weights, persistent=False)

    def forward(self, model: nn.Module, batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        clips, labels, index = batch[0], batch[1], batch[2] if len(batch) > 2 else None
        logits = model(clips)
        return {"ce": label_loss(logits, labels, index, self.soft_targets, self.sample_weights,
                                 self.label_smoothing)}, logits


def label_loss(logits, labels, index, soft_targets=None, sample_weights=None, label_smoothing=0.0):
    """The label term shared by every objective (see :class:`Supervised`); 0 when a batch has no label.

    ``index`` (B,) may be None (batches of ``(x, y)``) unless soft targets or sample weights are given.
    """
    if index is None and (soft_targets is not None or sample_weights is not None):
        raise ValueError("soft targets and sample weights are looked up by each sample's dataset index: the "
                         "training items must be (clip, label, index)")
    if soft_targets is None:
        mask = labels >= 0
        if sample_weights is None:
            if not mask.any():
                return logits.sum() * 0.0
            return F.cross_entropy(logits[mask], labels[mask], label_smoothing=label_smoothing)
        weights = sample_weights[index] * mask
        per_sample = F.cross_entropy(logits, labels.clamp(min=0), reduction="none",
                                     label_smoothing=label_smoothing)
    else:
        targets = soft_targets[index]
        weights = sample_weights[index] if sample_weights is not None else torch.ones_like(targets[:, 0])
        per_sample = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    return (weights * per_sample).sum() / weights.sum().clamp(min=1e-8)


__all__ = ["Supervised", "label_loss"]
