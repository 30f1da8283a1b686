"""An output folder written by one process at a time: checks, the lock, leftovers, starting over.

- :func:`check_writable`: before anything runs, an output folder that is a file, or lies under a
  file or a folder kdlab cannot write, is a :class:`FolderError` (one line).
- :func:`locked`: the folder's lock (``<folder>/.kdlab.lock``, an ``flock`` that the operating
  system releases when the holder dies, so a killed run never leaves a folder locked). A second
  process gets a :class:`FolderLockedError` naming the holder's pid.
- :func:`remove_stale`: temporary files (``.*.tmp``) and partial folders (``.*.partial-<pid>``)
  that a killed writer left. One whose pid is alive is kept; in a folder this process has
  locked, every one is a leftover (only the lock holder writes there).
- :func:`clear_run`: ``--restart``: empty a kdlab run folder, refusing folders holding files
  kdlab does not write.
- :func:`claim_folder`: one folder holds one configuration (its ``config.json``).
- :func:`open_run`: all of the above in the order every command that trains uses them.

**kdlab's one run-folder convention.** Every folder a training writes holds ``config.json``
(written first; a rerun with another configuration is refused) and ``fit/`` (the engine's
per-epoch checkpoints, :func:`kdlab.train.fit`: a rerun resumes there), and ends with what the run
produced, written last: ``model.pt`` + ``info.json`` for a run of the run cache (:mod:`kdlab.runs`,
``<runs>/<kind>-<key>/``, and each cascade rung, ``rung-<k>/``), ``report.json`` (+ ``report.md``)
for the folder a command was given (``kdlab train``, ``distill``, ``cascade``, ``skd``), whose
``fit/`` or ``cascade/`` holds the training. A folder without its last file is unfinished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against a second writer
    fcntl = None

LOCK_FILE = ".kdlab.lock"
#: What kdlab writes into its output folders (train, distill, cascade, skd, export), and
#: ``tensorboard``, the suggested ``--log-dir`` inside one.
RUN_ENTRIES = {"config.json", "checkpoint.pt", "best.pt", "history.json", "report.json", "report.md", "fit",
               "cascade", "export", "tensorboard", LOCK_FILE}

# .<name>.<pid>.<8 random>.tmp (kdlab.io), .<name>.<pid>.tmp (manifests, budgets, clip caches),
# .<name>.partial-<pid> (teacher caches, generated datasets).
_PID_PATTERNS = (re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$"), re.compile(r"^\..+\.(\d+)\.tmp$"),
                 re.compile(r"^\..+\.partial-(\d+)$"))


class FolderError(RuntimeError):
    """An output folder kdlab cannot use (a file, read-only, or not a kdlab run folder)."""


class FolderLockedError(FolderError):
    """Another live process is writing the folder."""


def check_writable(folder: str | Path, what: str = "output folder") -> Path:
    """``folder`` as a Path if kdlab can create or write it; else a one-line :class:`FolderError`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{what} {folder} is a file, not a folder: choose another path")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FolderError(f"{what} {folder} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FolderError(f"{what} {folder} cannot be written: {existing} is read-only for this user")
    return folder


@contextlib.contextmanager
def locked(folder: str | Path):
    """Hold ``folder``'s lock for the ``with`` block (creating the folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield folder
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise FolderLockedError(f"{folder} is being written by kdlab process {holder}: wait for it to finish "
                                    "or use another output folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _pid_of(name: str) -> int | None:
    for pattern in _PID_PATTERNS:
        m = pattern.match(name)
        if m:
            return int(m[1])
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _leftover(name: str, owned: bool) -> bool:
    if not name.startswith(".") or not (name.endswith(".tmp") or ".partial-" in name):
        return False
    pid = _pid_of(name)
    if pid is None:
        return owned  # an older name without a pid: only the folder's lock holder may judge it
    return pid != os.getpid() and not _alive(pid)


def remove_stale(folder: str | Path, *, owned: bool = False) -> list[Path]:
    """Remove the leftovers of killed writers under ``folder`` (recursively); returns them.

    ``owned``: this process holds ``folder``'s lock, so leftovers without a pid in their name
    are stale too.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in list(dirnames):
            if _leftover(name, owned):
                shutil.rmtree(Path(dirpath, name), ignore_errors=True)
                dirnames.remove(name)
                removed.append(Path(dirpath, name))
        for name in filenames:
            if _leftover(name, owned):
                Path(dirpath, name).unlink(missing_ok=True)
                removed.append(Path(dirpath, name))
    return removed


def clear_run(folder: str | Path) -> None:
    """Empty a kdlab run folder (``--restart``), keeping its lock file.

    A folder holding anything kdlab does not write there is refused with a :class:`FolderError`,
    so a mistyped ``--out`` never deletes someone's files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    entries = list(folder.iterdir())
    foreign = sorted(p.name for p in entries if p.name not in RUN_ENTRIES and not _leftover(p.name, True))
    if foreign:
        raise FolderError(f"--restart refuses to empty {folder}: it holds files kdlab did not write "
                          f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); remove them yourself")
    for p in entries:
        if p.name == LOCK_FILE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def claim_folder(config_file: Path, config: dict, *, write: bool = True) -> None:
    """One output folder holds one configuration: write ``config_file`` (when ``write``, i.e. on
    rank 0) the first time; on a rerun raise :class:`~kdlab.train.ResumeMismatchError` listing
    every key whose stored value differs from ``config`` (a JSON-able dict)."""
    from kdlab.io import atomic_write_text
    from kdlab.train import ResumeMismatchError  # here: kdlab --help must not import torch

    config_file = Path(config_file)
    if not config_file.is_file():
        if write:
            atomic_write_text(config_file, json.dumps(config, indent=1, sort_keys=True))
        return
    old = json.loads(config_file.read_text())
    if old != config:
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise ResumeMismatchError(
            f"{config_file.parent} holds a run with another configuration ("
            + "; ".join(f"{k}: stored {old.get(k)!r}, asked {config.get(k)!r}" for k in diff)
            + "); use another output folder or delete it")


@contextlib.contextmanager
def open_run(out: str | Path, config: dict, *, rank: int = 0, restart: bool = False, shared=()):
    """Lock ``out`` (rank 0), remove killed writers' leftovers (there, and in each folder of
    ``shared`` such as the run cache or a dataset's clip cache: dead writers' files only), empty it
    on ``restart``, then claim it for ``config`` (:func:`claim_folder`, ``out/config.json``). Under
    torchrun the other ranks wait for rank 0 before they read ``config.json``."""
    out = Path(out)
    with locked(out) if rank == 0 else contextlib.nullcontext():
        if rank == 0:
            remove_stale(out, owned=True)
            for folder in shared:
                remove_stale(folder)
            if restart:
                clear_run(out)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # the other ranks read config.json after rank 0 has emptied the folder
        claim_folder(out / "config.json", config, write=rank == 0)
        yield out
