"""``kdlab data check``: every problem of a dataset folder in one list, nothing raised midway.

:func:`check_dataset` reads the split files of both splits (missing videos, malformed lines,
labels out of range, classes without a folder), decodes every video once (the manifest, as
:func:`~kdlab.data.scan.scan_dataset`) and lists undecodable, truncated and too-short videos.
A folder without split files is not a dataset: :class:`VideoError`, and no manifest is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import ErrorLog, VideoError
from .scan import rescan
from .splits import SPLITS, find_split_dir, read_split


@dataclass
class DatasetCheck:
    """What :func:`check_dataset` found: ``problems`` (one line each) and counts for a summary."""

    root: Path
    layout: str
    classes: int = 0
    listed: dict[str, int] = field(default_factory=dict)  # split -> usable split lines
    decoded: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        listed = ", ".join(f"{n} {split}" for split, n in self.listed.items())
        return (f"{self.root}: {self.layout} layout, {self.classes} classes, split lines {listed or 'none usable'}, "
                f"{self.decoded} videos decoded, {len(self.problems)} problem(s)")


def check_dataset(root: str | Path, *, frames: int = 8, fold: int = 1, progress: bool = True) -> DatasetCheck:
    """Check the dataset at ``root`` (fold ``fold``); videos shorter than ``frames`` are problems.

    Raises :class:`VideoError` only when ``root`` is not a dataset (missing, or no split files).
    """
    root = Path(root)
    if not root.is_dir():
        raise VideoError(f"{root}: dataset folder does not exist", root)
    kind, _ = find_split_dir(root)  # raises for a folder that is not a dataset, before anything is written
    report = DatasetCheck(root, kind)
    classes: list[str] = []
    for split in SPLITS:
        log = ErrorLog("skip")
        try:
            layout, samples = read_split(root, split, fold, log=log)
        except VideoError as exc:  # a split that cannot be read at all (missing or malformed index file)
            report.problems.append(str(exc))
            continue
        classes = layout.classes
        report.listed[split] = len(samples)
        report.problems += [str(e) for e in log.errors]
    report.classes = len(classes)
    report.problems += [f"{root / c}: class folder of classInd.txt does not exist" for c in classes
                        if not (root / c).is_dir()]
    manifest = rescan(root, progress)
    report.decoded = len(manifest["videos"])
    report.problems += [e["error"] for e in manifest["errors"].values()]
    report.problems += [f"{root / rel}: too short: {v['frames']} decodable frames, clips need {frames} (--frames)"
                        for rel, v in manifest["videos"].items() if v["frames"] < frames]
    if not manifest["videos"] and not manifest["errors"]:
        report.problems.append(f"{root}: no video files (.avi, .mp4, ...) under the class folders")
    return report
