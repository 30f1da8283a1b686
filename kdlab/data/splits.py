"""Read the official split files of the UCF101 and HMDB51 layouts.

UCF101: ``classInd.txt`` ("1 ApplyEyeMakeup"), ``trainlistNN.txt`` ("Class/v_x.avi 1") and
``testlistNN.txt`` ("Class/v_x.avi"). HMDB51: one ``<class>_test_split<N>.txt`` per class with
lines "video.avi F", F = 1 train, 2 test, 0 unused; classes in sorted order. The layout is
detected from which files exist. Every problem becomes a :class:`VideoError` that names the
split file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ErrorLog, VideoError

SPLITS = ("train", "test")
# Where the official distributions keep their split files, relative to the video root.
SPLIT_DIRS = (".", "ucfTrainTestlist", "testTrainMulti_7030_splits", "splits")
_HMDB_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<fold>\d+)\.txt$")


@dataclass
class Layout:
    kind: str  # "ucf101" or "hmdb51"
    split_dir: Path
    classes: list[str]


def find_split_dir(root: Path, split_dir: str | Path | None = None) -> tuple[str, Path]:
    """(layout kind, folder with the split files); VideoError if neither layout is found."""
    candidates = [Path(split_dir)] if split_dir is not None else [root / d for d in SPLIT_DIRS]
    for d in candidates:
        if (d / "classInd.txt").is_file():
            return "ucf101", d
        if d.is_dir() and any(_HMDB_RE.match(p.name) for p in d.iterdir()):
            return "hmdb51", d
    looked = ", ".join(str(d) for d in candidates)
    raise VideoError(
        f"{root}: no split files found (looked in {looked}) for classInd.txt (UCF101 layout) "
        "or <class>_test_split<N>.txt (HMDB51 layout)", root)


def _lines(path: Path):
    """(line number, stripped text) of the non-blank lines of a split file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, start=1):
            text = raw.strip()
            if text:
                yield n, text


def read_class_index(path: Path) -> list[str]:
    """Classes of a classInd.txt in label order. Always raises on problems: labels depend on it."""
    entries = {}
    for n, text in _lines(path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise VideoError(f"{path}, line {n}: malformed line {text!r}; expected '<index> <ClassName>'", path, n)
        idx = int(parts[0])
        if idx in entries or parts[1] in entries.values():
            raise VideoError(f"{path}, line {n}: duplicate class index or name in {text!r}", path, n)
        entries[idx] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise VideoError(f"{path}: class indices must run 1..{len(entries)}, got {sorted(entries)}", path)
    if not entries:
        raise VideoError(f"{path}: no classes listed", path)
    return [entries[i] for i in range(1, len(entries) + 1)]


def _ucf_split(root: Path, split_dir: Path, split: str, fold: int, log: ErrorLog):
    classes = read_class_index(split_dir / "classInd.txt")
    by_name = {c: i for i, c in enumerate(classes)}
    by_lower = {c.lower(): i for i, c in enumerate(classes)}
    path = split_dir / f"{split}list{fold:02d}.txt"
    if not path.is_file():
        have = sorted(p.name for p in split_dir.glob("*list*.txt"))
        raise VideoError(f"{path}: split file does not exist; found {have}", path)
    samples = []
    for n, text in _lines(path):
        parts = text.split()
        where = f"{path}, line {n}"
        if len(parts) not in (1, 2) or (len(parts) == 2 and not parts[1].lstrip("-").isdigit()):
            log.add(VideoError(f"{where}: malformed line {text!r}; expected 'Class/video.avi [label]'", path, n))
            continue
        rel = parts[0].replace("\\", "/")
        cls = rel.split("/")[0] if "/" in rel else None
        label = by_name.get(cls, by_lower.get((cls or "").lower()))
        if label is None:
            log.add(VideoError(f"{where}: class {cls!r} of {rel!r} is not in classInd.txt "
                               f"(known: {', '.join(classes)})", path, n))
            continue
        if len(parts) == 2:
            given = int(parts[1])
            if not 1 <= given <= len(classes):
                log.add(VideoError(f"{where}: unknown label {given} (valid 1..{len(classes)})", path, n))
                continue
            if given - 1 != label:
                log.add(VideoError(f"{where}: label {given} ({classes[given - 1]}) contradicts the folder "
                                   f"{cls!r} of {rel!r}", path, n))
                continue
        if not (root / rel).is_file():
            log.add(VideoError(f"{where}: points to {root / rel}, which does not exist", path, n))
            continue
        samples.append((rel, label))
    return classes, samples


def _hmdb_split(root: Path, split_dir: Path, split: str, fold: int, log: ErrorLog):
    files = {}
    for p in split_dir.iterdir():
        m = _HMDB_RE.match(p.name)
        if m and int(m["fold"]) == fold:
            files[m["cls"]] = p
    if not files:
        raise VideoError(f"{split_dir}: no <class>_test_split{fold}.txt files for fold {fold}", split_dir)
    classes = sorted(files)
    want = "1" if split == "train" else "2"
    samples = []
    for label, cls in enumerate(classes):
        path = files[cls]
        if not (root / cls).is_dir():
            raise VideoError(f"{path}: names class {cls!r}, but the folder {root / cls} does not exist", path)
        for n, text in _lines(path):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                log.add(VideoError(f"{path}, line {n}: malformed line {text!r}; expected 'video.avi 0|1|2'", path, n))
                continue
            if parts[1] != want:
                continue
            rel = f"{cls}/{parts[0]}"
            if not (root / rel).is_file():
                log.add(VideoError(f"{path}, line {n}: points to {root / rel}, which does not exist", path, n))
                continue
            samples.append((rel, label))
    return classes, samples


def read_split(root: str | Path, split: str = "train", fold: int = 1, *, split_dir: str | Path | None = None,
               log: ErrorLog | None = None) -> tuple[Layout, list[tuple[str, int]]]:
    """Parse one split -> (layout, [(path relative to root, 0-based label), ...]) in file order."""
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {SPLITS}")
    if not root.is_dir():
        raise VideoError(f"{root}: dataset folder does not exist", root)
    log = log or ErrorLog("raise")
    kind, sdir = find_split_dir(root, split_dir)
    reader = _ucf_split if kind == "ucf101" else _hmdb_split
    classes, samples = reader(root, sdir, split, fold, log)
    return Layout(kind, sdir, classes), samples
