"""The dense objective (DGKD-style): one student distilled from several teachers at once.

kdlab's choice: :class:`DenseDistillation` keeps one :class:`~kdlab.distill.Distillation` per
teacher (own adapters, own pairing, own teacher cache) and **averages their distillation terms**
(the label term counts once). For logit KD this has the same gradient as KD towards the mean of
the teachers' softened distributions; the student runs forward only once per batch.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from kdlab.hooks import SubstageTap


class _Replay(nn.Module):
    """Stands in for the student inside :class:`DenseDistillation`: returns logits recorded from one
    real forward pass, and runs each recorded feature through an identity module of the same name
    so that a :class:`~kdlab.hooks.SubstageTap` on it sees the student's features (with their
    autograd graph)."""

    def __init__(self, names: Sequence[str]):
        super().__init__()
        self.names = list(names)
        for name in self.names:
            parent = self
            for part in name.split("."):
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Identity())
                parent = getattr(parent, part)
        self.logits: torch.Tensor | None = None
        self.features: dict[str, torch.Tensor] = {}

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        modules = dict(self.named_modules())
        for name in self.names:
            modules[name](self.features[name])
        return self.logits


class DenseDistillation(nn.Module):
    """Distil from several teachers at once (DGKD-style dense cascade).

    ``parts`` holds one :class:`~kdlab.distill.Distillation` per teacher (each with its own
    adapters, pairing and cache). The student runs forward once per batch; each part computes its
    terms on those outputs. Terms: ``"label"`` from the first part (the others are built with
    ``label_weight=0``), and every other term of part k as ``"t<k>/<term>"``, divided by the
    number of teachers: the loss is label + the *mean* over teachers of their distillation losses.
    History records from part k are prefixed ``"t<k>/"`` too (e.g. ``"t1/R/stage1-stage2"``).
    """

    def __init__(self, parts: Sequence[nn.Module]):
        super().__init__()
        if len(parts) < 2:
            raise ValueError("DenseDistillation needs at least two teachers; use the objective itself for one")
        self.parts = nn.ModuleList(parts)
        taps: list[str] = []
        for part in parts:
            for name in [*part.student_stages, *part.embed_taps]:
                taps += [name] if name not in taps else []
        self.taps = taps
        self._replay = [_Replay(taps)]  # a list: not a submodule (no state to save)

    @property
    def teachers(self) -> list[nn.Module]:
        return [part.teacher for part in self.parts]

    def on_epoch_start(self, epoch: int, model: nn.Module, loader=None) -> None:
        for part in self.parts:
            part.on_epoch_start(epoch=epoch, model=model, loader=loader)

    def epoch_record(self) -> dict[str, float]:
        record = {}
        for k, part in enumerate(self.parts):
            for name, value in part.epoch_record().items():
                if name == "phase":
                    record["phase"] = value
                else:
                    record[f"t{k}/{name}"] = value
        return record

    def forward(self, model: nn.Module, batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        clips = batch[0]
        replay = self._replay[0]
        if self.taps:
            with SubstageTap(model, self.taps) as tap:
                logits = model(clips)
            replay.features = tap.features
        else:
            logits = model(clips)
        replay.logits = logits
        terms: dict[str, torch.Tensor] = {}
        count = len(self.parts)
        try:
            for k, part in enumerate(self.parts):
                part_terms, _ = part(replay, batch)
                for name, value in part_terms.items():
                    if name == "label":
                        terms["label"] = value
                    else:
                        terms[f"t{k}/{name}"] = value / count
        finally:
            replay.features, replay.logits = {}, None
        return terms, logits
