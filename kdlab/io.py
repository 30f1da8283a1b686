"""Atomic file writes and safe checkpoint loading.

Every file kdlab writes goes to a temporary file in the same folder first and is renamed into
place, so an interrupted run never leaves a half-written checkpoint, manifest or report behind.
Checkpoints are loaded with ``weights_only=True``: they hold tensors and plain Python values only.
"""

from __future__ import annotations

import os
import tempfile

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser from PyPI (a dependency there)
    import tomli as tomllib
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a kdlab checkpoint."""


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj, path) -> Path:
    """``torch.save(obj, path)`` through a temporary file and a rename."""
    return _atomic(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return _atomic(path, lambda f: f.write(text.encode("utf-8")))


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
