"""Which labels a teacher has seen, and a guard against distilling from a teacher that saw the
labels of the videos it is asked to label.

Weak supervision means the student has the labels of a small budget and nothing else. A teacher
trained on *every* training label (protocol ``"all"``) has memorised the videos that the student
treats as unlabelled: its outputs on them are partly memory, its pseudo-labels look nearly perfect,
and every method that learns from them is flattered (a *label leak*). kdlab therefore records the
videos whose labels trained a model (:func:`labels_seen`, stored in the run info as
``labels_seen``) and checks them before a teacher teaches (:func:`check_teacher`):

    teacher, info = get_teacher("all", splits)
    distill_student("kd", splits, teacher)          # LabelLeakWarning: ... protocol 'all' ...

Pass ``allow_label_leak=True`` where the leak is the point (a notebook that demonstrates it).
A teacher kdlab did not train (a user's own model) carries no record and is not checked.
"""

from __future__ import annotations

import warnings
from typing import Sequence

from torch import nn

__all__ = ["LabelLeakWarning", "labels_seen", "mark_teacher", "leaked_videos", "check_teacher"]

#: The attribute of a model that holds its record (a dict, see :func:`labels_seen`).
ATTRIBUTE = "kdlab_labels_seen"


class LabelLeakWarning(UserWarning):
    """A teacher saw the labels of videos that a student treats as unlabelled."""


def labels_seen(dataset_name: str, videos: Sequence[str], protocol: str | None = None,
                fingerprint: str | None = None) -> dict:
    """The record of a model's training labels: the dataset's folder name, the relative paths of
    the videos whose labels it trained on (sorted, unique), the teacher protocol if any, and the
    dataset's content fingerprint (:func:`kdlab.data.fingerprint.dataset_fingerprint`) when known,
    which identifies the dataset wherever it lives (a run cache unpacked into another checkout)."""
    record = {"dataset": dataset_name, "videos": sorted(set(videos)), "protocol": protocol}
    if fingerprint is not None:
        record["fingerprint"] = fingerprint
    return record


def _same_dataset(record: dict, splits) -> bool:
    """Whether ``record`` was made on the dataset of ``splits``: the same folder name, or (a record
    with a fingerprint) the same content under another name or path. A guard errs on warning."""
    if record.get("dataset") == splits.root.name:
        return True
    if record.get("fingerprint"):
        from kdlab.data.fingerprint import dataset_fingerprint

        return record["fingerprint"] == dataset_fingerprint(splits.root)
    return False


def mark_teacher(model: nn.Module, record: dict | None) -> nn.Module:
    """Attach ``record`` (from :func:`labels_seen`, e.g. ``info["labels_seen"]``) to ``model``."""
    if record is not None:
        setattr(model, ATTRIBUTE, record)
    return model


def leaked_videos(teacher: nn.Module, splits) -> list[str]:
    """Relative paths of the videos in ``splits.unlabelled`` whose labels ``teacher`` trained on
    ([] when there are none, or when the teacher carries no record)."""
    record = getattr(teacher, ATTRIBUTE, None)
    if not record or not _same_dataset(record, splits):
        return []
    seen = set(record["videos"])
    return sorted({splits.train.samples[i][0] for i in splits.unlabelled} & seen)


def check_teacher(teacher: nn.Module | None, splits, *, allow_label_leak: bool = False, what: str = "distillation"
                  ) -> list[str]:
    """Warn (:class:`LabelLeakWarning`) when ``teacher`` saw labels of ``splits.unlabelled``.

    Returns the leaked videos. With ``allow_label_leak=True`` nothing is said (the caller
    demonstrates the leak on purpose).
    """
    if teacher is None:
        return []
    leaked = leaked_videos(teacher, splits)
    if leaked and not allow_label_leak:
        record = getattr(teacher, ATTRIBUTE)
        protocol = record.get("protocol") or "unknown"
        warnings.warn(
            f"label leak: the teacher (protocol {protocol!r}) was trained on the labels of {len(leaked)} of the "
            f"{len(splits.unlabelled)} videos that this {what} treats as unlabelled, so its outputs on them are "
            "partly memory and every method that learns from them is flattered. Use the 'pretrained' or "
            "'labelled' protocol, or pass allow_label_leak=True to demonstrate the leak.",
            LabelLeakWarning, stacklevel=3)
    return leaked
