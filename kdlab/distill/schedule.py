"""The substage-based learning schedule: which distillation terms are on in which epoch.

Training runs in *phases*. With ``kind="progressive"`` and S distilled student stages there are
S phases: phase k (1-based) switches on the feature terms of student stages 1..k, shallow to
deep, and the last phase also switches on the logit term (and the embedding term of RKD/PKT).
``kind="joint"`` is one phase with everything on from the first epoch, for the ablation.
``logits_from="first"`` keeps the staged feature terms but has logit KD on from the start.
The label term is not scheduled: it is on in every phase.

A term that is off is *absent* from the objective's terms (not a 0): in the training history a
missing value reads as "not trained yet", where a 0 would look like a perfectly matched stage.

    >>> s = Schedule("progressive", ["stage1", "stage2", "stage3"], phase_epochs=2)
    >>> [(p.index, p.stages, p.logits) for p in s.table(6)]   # doctest: +NORMALIZE_WHITESPACE
    [(1, ('stage1',), False), (1, ('stage1',), False), (2, ('stage1', 'stage2'), False),
     (2, ('stage1', 'stage2'), False), (3, ('stage1', 'stage2', 'stage3'), True),
     (3, ('stage1', 'stage2', 'stage3'), True)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

SCHEDULES = ("progressive", "joint")
LOGITS_FROM = ("last", "first")


@dataclass(frozen=True)
class Phase:
    """One phase: its 1-based ``index`` of ``count``, the student stages whose feature terms are
    on, and whether the logit (and embedding) terms are on."""

    index: int
    count: int
    stages: tuple[str, ...]
    logits: bool

    @property
    def last(self) -> bool:
        return self.index == self.count


class Schedule:
    """Phases over epochs for the distilled student stages ``stages`` (shallow to deep).

    Args:
        kind: "progressive" or "joint".
        stages: the distilled student stage names, in depth order.
        phase_epochs: progressive only. An int: every phase lasts that many epochs. A sequence:
            the length of each phase in order (S entries, or S - 1: the last phase always runs
            until training ends, so its length may be left out).
        epochs: progressive only, used when ``phase_epochs`` is None: the total number of
            training epochs. The first S - 1 phases share the first half of them equally (at
            least 1 epoch each), the last phase runs the rest: e.g. 4 stages and 15 epochs give
            phases of 2, 2, 2 and 9 epochs.
        logits_from: "last" (the guide's schedule: logit KD joins in the last phase) or "first"
            (logit KD from the first phase on, only the feature terms are staged), a variant
            for the ablation.
    """

    def __init__(self, kind: str, stages: Sequence[str], phase_epochs: int | Sequence[int] | None = None,
                 epochs: int | None = None, logits_from: str = "last"):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
        if logits_from not in LOGITS_FROM:
            raise ValueError(f"unknown logits_from {logits_from!r}; valid: {', '.join(LOGITS_FROM)}")
        self.kind, self.stages, self.logits_from = kind, tuple(stages), logits_from
        if kind == "joint" or len(self.stages) <= 1:
            self.starts = [0]
            return
        count = len(self.stages)
        if phase_epochs is None:
            if epochs is None:
                raise ValueError(
                    "schedule='progressive' needs phase_epochs= (epochs per phase) or epochs= (the total, "
                    f"split evenly over the {count} phases of stages {list(self.stages)})"
                )
            if epochs < count:
                raise ValueError(
                    f"epochs={epochs} is fewer than the {count} phases of the progressive schedule of stages "
                    f"{list(self.stages)}: the last phases would never run. Train longer, distil fewer "
                    "stages, or use schedule='joint'"
                )
            # The last phase (everything on) gets the second half of training, the earlier
            # phases share the first half: KD on unlabelled videos is what teaches most, so
            # it should not wait for long.
            lengths = [max(1, epochs // (2 * (count - 1)))] * (count - 1)
        elif isinstance(phase_epochs, int):
            lengths = [phase_epochs] * (count - 1)
        else:
            lengths = [int(n) for n in phase_epochs]
            if len(lengths) not in (count - 1, count):
                raise ValueError(
                    f"phase_epochs has {len(lengths)} entries but the progressive schedule of stages "
                    f"{list(self.stages)} has {count} phases: give {count} (or {count - 1}) lengths"
                )
            lengths = lengths[: count - 1]
        if any(n < 1 for n in lengths):
            raise ValueError(f"every phase must last at least 1 epoch, got phase_epochs={phase_epochs}")
        self.starts = [0]
        for n in lengths:
            self.starts.append(self.starts[-1] + n)

    @property
    def num_phases(self) -> int:
        return len(self.starts)

    def phase(self, epoch: int) -> Phase:
        """The phase of 0-based ``epoch``."""
        k = sum(1 for start in self.starts if epoch >= start)  # 1-based; epochs < 0 count as phase 1
        k = max(k, 1)
        count = self.num_phases
        stages = self.stages if count == 1 else self.stages[:k]
        return Phase(index=k, count=count, stages=tuple(stages), logits=k == count or self.logits_from == "first")

    def table(self, epochs: int) -> list[Phase]:
        """The phase of every epoch 0..epochs-1 (for printing or plotting the schedule)."""
        return [self.phase(e) for e in range(epochs)]

    def __repr__(self) -> str:
        return f"Schedule({self.kind!r}, stages={list(self.stages)}, phase_starts={self.starts})"
