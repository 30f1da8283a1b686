"""Atomic file writes and safe checkpoint loading.

Every file kdlab writes goes to a temporary file in the same folder first and is renamed into
place, so an interrupted run never leaves a half-written checkpoint, manifest or report behind.
Checkpoints are loaded with ``weights_only=True``: they hold tensors and plain Python values only.

Temporary files are named ``.<name>.<pid>.<random>.tmp``, so :mod:`kdlab.runfolder` can tell the
leftovers of a killed writer (a dead pid) from the files of a live one. Written files get the
permissions the umask allows (``0o666 & ~umask``), like any ``open(path, "w")``; a full disk is a
:class:`DiskFullError` naming the file.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser from PyPI (a dependency there)
    import tomli as tomllib
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a kdlab checkpoint."""


class DiskFullError(OSError):
    """No space was left on the device while writing a file; the message names it."""


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write(path, write) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temporary binary file beside it, which is
    then renamed over ``path`` (mode from the umask; a full disk raises :class:`DiskFullError`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; kdlab's files follow the umask
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(path.parent).free
            raise DiskFullError(f"no space left on the device to write {path} ({free / 2**20:.0f} MiB free): "
                                "free some space or write elsewhere") from exc
        raise
    return path


def atomic_save(obj, path) -> Path:
    """``torch.save(obj, path)`` through a temporary file and a rename."""
    # Serialised in memory first: torch's zip writer reports a full disk as "unexpected pos", a
    # plain write() reports ENOSPC (checkpoints here are megabytes, so the copy is cheap).
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a clear :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {exc}). It is corrupt or not a kdlab "
            f"checkpoint; delete it to start that run again."
        ) from exc


def read_toml(path, error: type[Exception] = ValueError) -> dict:
    """The TOML file at ``path`` as a dict; a missing or malformed file raises ``error`` with a
    one-line message naming the file (callers pass their own usage-error class)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise error(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"config file {path} is not valid TOML: {exc}") from None
