"""A dataset's content fingerprint: what the dataset *is*, never where it lives.

Run keys (:meth:`kdlab.weak_splits.DataConfig.key`) hold the fingerprint instead of the dataset's
folder, so models trained in one checkout are found again in another (``kdlab artifacts``) as long
as the dataset there has the same content. The fingerprint is a SHA-256 over

- the split files (``classInd.txt``, ``trainlistNN.txt``, ``testlistNN.txt``, or HMDB51's
  ``<class>_test_splitN.txt``): which videos, which labels; budget files that kdlab writes beside
  them are left out (they follow from the seeds, which run keys hold anyway);
- ``kdlab.json`` of a generated dataset (generator, version, arguments, flip map);
- the relative path and size in bytes of every video file.

It reads a few small files and stats the videos (milliseconds for thousands), and is remembered
per folder for the life of the process, keyed by the split files' sizes and modification times.
Content that keeps every video's size (a file rewritten with other bytes of the same length) is
not seen; regenerate such a dataset under another folder or clear the run cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .scan import find_videos
from .splits import find_split_dir

__all__ = ["dataset_fingerprint", "find_dataset"]

#: The split files that define a dataset (not the budget files kdlab derives from them).
_SPLIT_FILE = re.compile(r"^(classInd\.txt|(train|test)list\d+\.txt|.+_test_split\d+\.txt)$")
_META_FILES = ("kdlab.json",)

_memo: dict[tuple, str] = {}


def _defining_files(root: Path) -> list[Path]:
    _, split_dir = find_split_dir(root)
    files = sorted(p for p in split_dir.iterdir() if p.is_file() and _SPLIT_FILE.match(p.name))
    return files + [root / name for name in _META_FILES if (root / name).is_file()]


def dataset_fingerprint(root: str | Path) -> str:
    """A short hex digest of the dataset in ``root`` (see the module docstring)."""
    root = Path(root).resolve()
    files = _defining_files(root)
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo_key = (str(root), stamp)
    if memo_key in _memo:
        return _memo[memo_key]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"file {path.relative_to(root).as_posix()}\n".encode())
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
    for rel in find_videos(root):
        digest.update(f"video {rel} {os.stat(root / rel).st_size}\n".encode())
    _memo[memo_key] = value = digest.hexdigest()[:16]
    return value


def find_dataset(fingerprint: str, folder: str | Path) -> Path | None:
    """The dataset directly under ``folder`` whose :func:`dataset_fingerprint` is ``fingerprint`` (None if none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.iterdir()):
        if candidate.is_dir() and not candidate.name.startswith("."):
            try:
                if dataset_fingerprint(candidate) == fingerprint:
                    return candidate
            except (OSError, ValueError):  # not a dataset (no split files), or unreadable
                continue
    return None
