"""TensorBoard logs of :func:`kdlab.train.fit` (``fit(log_dir=...)``, ``kdlab ... --log-dir DIR``).

Every number of an epoch's record becomes a scalar under its own name at step = epoch: the
loss terms (``train/ce``, ``train/kd``, ``train/feat/stage2``, ``train/loss``), the metrics
(``train/acc``, ``val/top1``, ``val/loss``, ``teacher/val_top1``), the learning rate (``lr``),
the seconds, and for substage distillation every entry of the correlation R and the pairing W
(``R/stage1-stage2``, ``W/stage1-stage2``; a dense cascade's teachers under ``t1/W/...``). Each
R and W is also written as an image (S_student x S_teacher, values in [0, 1]) so its change over
the epochs shows at a glance. In a notebook: ``%load_ext tensorboard`` then
``%tensorboard --logdir DIR``; outside: ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

MATRICES = ("R", "W")


def matrices(record: dict) -> dict[str, torch.Tensor]:
    """``{"W": (S_student, S_teacher) tensor, "t1/W": ...}`` from a record's ``<group>/<s>-<t>`` entries,
    rows and columns in the order the stages first appear (missing entries are NaN)."""
    groups: dict[str, dict[tuple[str, str], float]] = {}
    for key, value in record.items():
        group, _, pair = key.rpartition("/")
        if group.rpartition("/")[2] in MATRICES and "-" in pair:
            s, t = pair.split("-", 1)
            groups.setdefault(group, {})[(s, t)] = float(value)
    out = {}
    for group, entries in groups.items():
        rows = list(dict.fromkeys(s for s, _ in entries))
        cols = list(dict.fromkeys(t for _, t in entries))
        m = torch.full((len(rows), len(cols)), math.nan)
        for (s, t), v in entries.items():
            m[rows.index(s), cols.index(t)] = v
        out[group] = m
    return out


class EpochLog:
    """One run's TensorBoard writer: ``write(record)`` after each epoch, ``close()`` at the end.

    ``start_epoch``: a resumed run purges any events at or after it (left by the interrupted
    run), so each epoch appears once.
    """

    def __init__(self, log_dir: str | Path, start_epoch: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # the writer needs the tensorboard package
            raise ImportError(f"log_dir= needs the tensorboard package: pip install tensorboard ({exc})") from None
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(log_dir), purge_step=start_epoch if start_epoch else None)

    def write(self, record: dict) -> None:
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, epoch)
        for group, m in matrices(record).items():
            image = m.nan_to_num(0.0).clamp(0, 1)[None]  # (1, S_student, S_teacher): grey levels
            self.writer.add_image(f"{group}/matrix", image, epoch, dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
