"""The per-epoch record of a training run (:func:`kdlab.train.fit` returns it)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch records of every loss term and metric, e.g.
    ``{"epoch": 3, "train/ce": 0.41, "train/loss": 0.41, "train/acc": 88.1, "val/top1": 80.0,
    "lr": 0.001, "seconds": 12.3}``. Selection is on validation only (``monitor``)."""

    records: list[dict] = field(default_factory=list)
    monitor: str = "val/top1"
    best_state: dict | None = None

    def __len__(self):
        return len(self.records)

    @property
    def last(self) -> dict:
        return self.records[-1]

    @property
    def best_epoch(self) -> int | None:
        """Epoch with the highest ``monitor`` value (the earliest on ties), or None without validation."""
        scored = [r for r in self.records if self.monitor in r]
        if not scored:
            return None
        return max(scored, key=lambda r: (r[self.monitor], -r["epoch"]))["epoch"]

    @property
    def best(self) -> dict | None:
        epoch = self.best_epoch
        return None if epoch is None else next(r for r in self.records if r["epoch"] == epoch)

    def series(self, key: str) -> list[float]:
        return [r.get(key, math.nan) for r in self.records]

    def keys(self) -> list[str]:
        return sorted({k for r in self.records for k in r})

    def summary(self) -> dict:
        """The last epoch and the best-on-validation epoch side by side."""
        return {"last": self.last if self.records else None, "best": self.best, "monitor": self.monitor}

    def to_json(self) -> str:
        return json.dumps({"monitor": self.monitor, "records": self.records}, indent=1)

    @classmethod
    def from_records(cls, records, monitor="val/top1") -> "History":
        return cls(records=[dict(r) for r in records], monitor=monitor)


__all__ = ["History"]
