"""What :func:`kdlab.cascade.cascade` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from kdlab.pseudo import PseudoLabels

from .ladder import ladder_markdown


@dataclass
class CascadeResult:
    """What :func:`cascade` returns.

    models: the teacher and every trained rung, in ladder order (eval mode).
    rungs: one info dict per rung, the teacher's first (``trained: False``). Each holds ``name``,
        ``rung``, ``spec``, ``params``, ``flops``, ``test_top1`` (last epoch), and for trained rungs
        ``teachers`` (names of the rungs it learned from), ``teacher_digests``, ``val_top1``,
        ``best_epoch``, ``best_val_top1``, ``best_epoch_test_top1``, ``train_seconds``,
        ``history``, ``R`` / ``R_teacher`` (substage CKA against its nearest teacher and against
        the original teacher: ``{"matrix", "student", "teacher"}``), ``W`` (the last epoch's
        pairing when the method has one), ``pseudo_in`` (metrics of the pseudo-labels it trained
        on) and, for every rung, ``pseudo_out`` (after re-refinement with it).
    pseudo: the pseudo-labels after each rung (index 0: the teacher's), or [] without them.
    out_dir: the run folder.
    """

    models: list[nn.Module]
    rungs: list[dict]
    pseudo: list[PseudoLabels] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def final(self) -> nn.Module:
        return self.models[-1]

    @property
    def final_info(self) -> dict:
        return self.rungs[-1]

    def table(self) -> str:
        """Markdown: every rung's size, cost and test accuracy."""
        return ladder_markdown(self.rungs)
