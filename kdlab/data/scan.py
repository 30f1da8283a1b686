"""The manifest: every video's true frame count, found by decoding it once.

Container metadata lies (OpenCV's CAP_PROP_FRAME_COUNT is an estimate from the header), so
clip sampling uses the counts written here. The manifest ``<root>/kdlab_manifest.json`` maps each
video's path relative to ``root`` to its counts and size, and lists the files that failed::

    {"version": 1,
     "videos": {"MoveLeft/v_MoveLeft_g01_c01.avi": {"frames": 16, "reported_frames": 16,
                "height": 64, "width": 64, "fps": 12.0, "bytes": 40211, "mtime_ns": ...}},
     "errors": {"Bad/v_x.avi": {"error": "...", "bytes": 0, "mtime_ns": ...}}}

A rescan only decodes files whose size or modification time changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from kdlab.progress import tqdm
from kdlab.io import atomic_write_text

from .decode import VIDEO_EXTENSIONS, probe
from .errors import ErrorLog, VideoError

MANIFEST_FILE = "kdlab_manifest.json"
MANIFEST_VERSION = 1

# A video that decodes to fewer frames than its header promises, by more than one frame or 5%,
# is called truncated (or corrupt). Headers of healthy files can be off by a frame.
TRUNCATION_SLACK = 0.05


def find_videos(root: Path) -> list[str]:
    """Relative paths (posix) of the video files under ``root``, skipping hidden folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.lower().endswith(VIDEO_EXTENSIONS):
                found.append(Path(dirpath, f).relative_to(root).as_posix())
    return found


def _stat(path: Path) -> dict:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def probe_entry(root: Path, rel: str) -> dict:
    """Manifest entry for one video; raises VideoError (naming the file) when unusable."""
    path = root / rel
    info = probe(path)
    reported, n = info["reported_frames"], info["frames"]
    if reported > 0 and reported - n > max(1, TRUNCATION_SLACK * reported):
        raise VideoError(f"{path}: truncated or corrupt: only {n} of the {reported} frames its header lists decode", path)
    return {**info, **_stat(path)}


def read_manifest(root: str | Path) -> dict | None:
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a broken manifest is rebuilt, not trusted
    return data if data.get("version") == MANIFEST_VERSION else None


def write_manifest(root: Path, manifest: dict) -> None:
    # Write-then-rename so a reader never sees half a file.
    atomic_write_text(root / MANIFEST_FILE, json.dumps(manifest, indent=0, sort_keys=True) + "\n")


def update_manifest(root: Path, rels: Iterable[str], manifest: dict | None = None,
                    progress: bool = False) -> tuple[dict, bool]:
    """Probe the ``rels`` whose manifest entry is missing or stale; returns (manifest, changed)."""
    manifest = manifest or {"version": MANIFEST_VERSION, "videos": {}, "errors": {}}
    videos, errors = manifest["videos"], manifest["errors"]
    todo = []
    for rel in rels:
        path = root / rel
        if not path.is_file():
            continue  # the split parser reports missing files with their split line
        now = _stat(path)
        old = videos.get(rel) or errors.get(rel)
        if old is None or (old["bytes"], old["mtime_ns"]) != (now["bytes"], now["mtime_ns"]):
            todo.append(rel)
    for rel in tqdm(todo, desc=f"scanning {root.name}", unit="video", disable=not progress or not todo):
        videos.pop(rel, None)
        errors.pop(rel, None)
        try:
            videos[rel] = probe_entry(root, rel)
        except VideoError as e:
            errors[rel] = {"error": str(e), **_stat(root / rel)}
    return manifest, bool(todo)


def rescan(root: Path, progress: bool = False) -> dict:
    """Bring ``root``'s manifest up to date with every video under it (decoding new or changed
    files, dropping vanished ones) and write it; returns it."""
    rels = find_videos(root)
    manifest, _ = update_manifest(root, rels, read_manifest(root), progress=progress)
    keep = set(rels)
    manifest["videos"] = {k: v for k, v in manifest["videos"].items() if k in keep}
    manifest["errors"] = {k: v for k, v in manifest["errors"].items() if k in keep}
    write_manifest(root, manifest)
    return manifest


def scan_dataset(root: str | Path, *, on_error: str = "raise", progress: bool = True) -> dict:
    """Decode every video under ``root`` once and write ``<root>/kdlab_manifest.json``.

    Returns the manifest dict (see the module docstring). Files that cannot be decoded are
    listed under ``"errors"``; then ``on_error="raise"`` raises :class:`VideoError` naming them
    (after writing the manifest), ``"skip"`` warns once with the list. Entries for files that
    disappeared are dropped.
    """
    root = Path(root)
    if not root.is_dir():
        raise VideoError(f"{root}: dataset folder does not exist", root)
    log = ErrorLog(on_error)
    manifest = rescan(root, progress)
    if manifest["errors"]:
        if on_error == "raise":
            listed = "\n".join(f"  - {e['error']}" for e in manifest["errors"].values())
            raise VideoError(f"{root}: {len(manifest['errors'])} video(s) cannot be used:\n{listed}", root)
        for rel, e in manifest["errors"].items():
            log.add(VideoError(e["error"], root / rel))
        log.report(f"scan of {root}")
    return manifest
