"""Shareable run caches: an instructor trains the models once, students unpack them and train nothing.

``kdlab artifacts pack FILE`` writes the finished runs of ``runs/`` (:func:`kdlab.environment.runs_dir`)
into one ``.tar.gz``; ``kdlab artifacts unpack FILE`` puts them into another checkout's ``runs/``.
Run keys hold a dataset's content fingerprint, not its path
(:func:`kdlab.data.fingerprint.dataset_fingerprint`), so the unpacked models are found by every
notebook and script that asks for the same configuration on the same data, wherever it lives.

What is packed: each finished run folder (``<kind>-<key>/`` with ``model.pt``; a cascade folder
with ``cascade.json``), without the engine's resume state (``fit/``: checkpoints of an unfinished
training) and without lock and temporary files. ``--series`` packs only the runs that the last
``make notebooks`` used (``scripts/run_notebooks.py`` records them in ``runs/series-runs.txt``
through ``KDLAB_RUN_LOG``); ``--teacher-cache`` adds the teachers' cached outputs (large).
The archive holds ``kdlab-artifacts.json``: the entries, and the fingerprint and folder name of
each dataset they were trained on, so ``unpack`` can say whether this checkout has the same data.

Writes are atomic (a temporary file renamed; unpacked entries moved into place whole), an entry
already present is kept, and ``unpack`` refuses an archive with absolute paths, ``..``, links or
anything but plain files and folders.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from kdlab.environment import data_dir, display_path as _relative, runs_dir
from kdlab.io import atomic_write
from kdlab.runfolder import LOCK_FILE, FolderError

__all__ = ["ArtifactError", "pack", "unpack", "note_run", "SERIES_LOG", "MANIFEST"]

MANIFEST = "kdlab-artifacts.json"
FORMAT = 1
#: The log of run folders the notebook series used (one name a line), under ``runs/``.
SERIES_LOG = "series-runs.txt"
TEACHER_CACHE = "teacher-cache"
_SKIP_DIRS = {"fit"}


class ArtifactError(FolderError):
    """An artifact file kdlab cannot write or read (a one-line message)."""


def note_run(folder: str | Path) -> None:
    """Append ``folder``'s name to the file named by ``$KDLAB_RUN_LOG`` (if set): the runs a series used."""
    log = os.environ.get("KDLAB_RUN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(Path(folder).name + "\n")


def _finished(entry: Path) -> bool:
    return (entry / "model.pt").is_file() or (entry / "cascade.json").is_file()


def _files(entry: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(entry):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name == LOCK_FILE or name.startswith(".") or path.is_symlink():
                continue
            out.append(path)
    return out


def _datasets(entry: Path) -> set[str]:
    """Dataset fingerprints named in an entry's configuration (run keys: ``data.dataset``)."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            if isinstance(value.get("dataset"), str):
                found.add(value["dataset"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for name in ("config.json", "cascade.json"):
        if (entry / name).is_file():
            try:
                walk(json.loads((entry / name).read_text()))
            except ValueError:
                pass
    return found


def pack(file: str | Path, *, runs: str | Path | None = None, series: bool = False, teacher_cache: bool = False,
         verbose: bool = True) -> dict:
    """Write the finished runs of ``runs`` (default ``runs/``) to the ``.tar.gz`` ``file``; returns the manifest."""
    runs = Path(runs or runs_dir())
    file = Path(file)
    if not runs.is_dir():
        raise ArtifactError(f"no run folder {_relative(runs)}: train something first (e.g. make notebooks)")
    if file.is_dir():
        raise ArtifactError(f"{file} is a folder: give the artifact file's name, e.g. kdlab-runs.tar.gz")
    names = sorted(p.name for p in runs.iterdir() if p.is_dir() and _finished(p))
    if series:
        log = runs / SERIES_LOG
        if not log.is_file():
            raise ArtifactError(f"--series: {_relative(log)} does not exist; run `make notebooks` first, which "
                                "records the runs the notebook series uses")
        used = {line.strip() for line in log.read_text().splitlines() if line.strip()}
        names = [n for n in names if n in used]
    if teacher_cache and (runs / TEACHER_CACHE).is_dir():
        names.append(TEACHER_CACHE)
    if not names:
        raise ArtifactError(f"{_relative(runs)} holds no finished run to pack")
    fingerprints = set().union(*(_datasets(runs / n) for n in names))
    from kdlab.data.fingerprint import find_dataset

    datasets = {}
    for fp in sorted(fingerprints):
        local = find_dataset(fp, data_dir())
        datasets[fp] = None if local is None else local.name
    manifest = {"format": FORMAT, "entries": names, "datasets": datasets}

    def write(f):
        with tarfile.open(fileobj=f, mode="w:gz") as tar:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
            for name in names:
                for path in _files(runs / name):
                    tar.add(path, arcname=path.relative_to(runs).as_posix(), recursive=False)

    atomic_write(file, write)
    if verbose:
        size = file.stat().st_size / 2**20
        print(f"packed {len(names)} runs from {_relative(runs)} into {_relative(file)} ({size:.1f} MiB)")
    return manifest


def _check_member(member: tarfile.TarInfo, file: Path) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or member.name.startswith(("/", "\\")) or "\\" in member.name:
        raise ArtifactError(f"{file}: refusing an archive member that points outside the run folder: {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise ArtifactError(f"{file}: refusing {member.name!r}: only plain files and folders are unpacked "
                            "(no links or devices)")
    return path


def unpack(file: str | Path, *, runs: str | Path | None = None, verbose: bool = True) -> dict:
    """Put the runs of the artifact ``file`` into ``runs`` (default ``runs/``); returns a summary.

    Entries already in ``runs`` are kept. Says, per dataset the runs were trained on, whether this
    checkout's data folder has it (same content fingerprint): runs on a missing or different
    dataset are not found (they would train again).
    """
    file = Path(file)
    runs = Path(runs or runs_dir())
    if not file.is_file():
        raise ArtifactError(f"no artifact file {file}")
    try:
        tar = tarfile.open(file, "r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"{file} is not a kdlab artifact file (a .tar.gz from `kdlab artifacts pack`): {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArtifactError(f"{file} is damaged or truncated: {exc}") from None
        if not members or members[0].name != MANIFEST:
            raise ArtifactError(f"{file} is not a kdlab artifact file: it does not start with {MANIFEST}")
        try:
            manifest = json.loads(tar.extractfile(members[0]).read())
        except ValueError as exc:
            raise ArtifactError(f"{file}: unreadable {MANIFEST}: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArtifactError(f"{file}: not an artifact file of format {FORMAT}, which this kdlab reads")
        entries = set(manifest.get("entries") or [])
        for name in entries:
            if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", "..") or name.startswith("."):
                raise ArtifactError(f"{file}: refusing the entry name {name!r}: an entry is one folder of the run cache")
        for member in members[1:]:
            path = _check_member(member, file)
            if path.parts[0] not in entries:
                raise ArtifactError(f"{file}: member {member.name!r} is in no entry the manifest lists")
        runs.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".unpack.partial-{os.getpid()}-", dir=runs))
        try:
            for member in members[1:]:
                target = staging.joinpath(*PurePosixPath(member.name).parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            added, kept = [], []
            for name in manifest["entries"]:
                if not (staging / name).is_dir():
                    continue
                if (runs / name).exists():
                    if name == TEACHER_CACHE:  # merge: caches are keyed subfolders
                        for sub in sorted((staging / name).iterdir()):
                            if not (runs / name / sub.name).exists():
                                os.replace(sub, runs / name / sub.name)
                    kept.append(name)
                    continue
                os.replace(staging / name, runs / name)
                added.append(name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    from kdlab.data.fingerprint import find_dataset

    datasets = {}
    for fp, name in manifest.get("datasets", {}).items():
        local = find_dataset(fp, data_dir())
        datasets[fp] = {"packed_as": name, "here": None if local is None else _relative(local)}
    summary = {"added": added, "kept": kept, "datasets": datasets}
    if verbose:
        print(f"unpacked {len(added)} runs into {_relative(runs)}" + (f" ({len(kept)} already there, kept)" if kept else ""))
        for fp, d in datasets.items():
            if d["here"]:
                print(f"  dataset {d['packed_as'] or fp}: found here as {d['here']} (same content)")
            else:
                print(f"  dataset {d['packed_as'] or fp}: not found with the same content under {_relative(data_dir())}; "
                      f"runs on it will train again. Generate it first (`make data` makes both corpora; or `kdlab data`, "
                      "`kdlab data --domain source`, with KDLAB_QUICK=1 for the quick variants) with the same kdlab "
                      "and OpenCV versions as the instructor.")
    return summary
