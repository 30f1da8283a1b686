"""One place for kdlab's global settings: quick mode, the data and runs folders, threads.

Threads: kdlab lets torch use every CPU this process may run on; ``KDLAB_THREADS=N`` sets another
number (:func:`threads`). Notebooks apply it with :func:`kdlab.setup_notebook`; the benchmark and
the tests set their own counts where a measurement depends on them.

Quick mode (``KDLAB_QUICK=1``, set by CI and ``make test``) shrinks datasets and epochs so the
whole notebook series runs in a few minutes. Code never copies sizes into notebooks: it asks
:func:`pick` for the value of the current mode.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def quick() -> bool:
    """True when ``KDLAB_QUICK`` is set to a true value (1, true, yes, on)."""
    return os.environ.get("KDLAB_QUICK", "").strip().lower() in _TRUE


def pick(default: T, quick_value: T) -> T:
    """Return ``quick_value`` in quick mode, else ``default``."""
    return quick_value if quick() else default


def project_root(start: Path | None = None) -> Path:
    """The kdlab checkout that contains ``start`` (default: the working directory).

    Notebooks run with ``notebooks/`` as their working directory and scripts from the top, so
    both must find the same ``data/`` and ``runs/``. Falls back to ``start`` outside a checkout.
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "kdlab").is_dir():
            return folder
    return start


def data_dir() -> Path:
    """Where datasets are generated: ``$KDLAB_DATA`` or ``<project>/data``."""
    return Path(os.environ.get("KDLAB_DATA") or project_root() / "data")


def display_path(path: str | Path) -> str:
    """``path`` for messages and notebook outputs: relative to the project (``data/simmotion``,
    ``runs/teacher-all-...``) when it lies inside it, so outputs never show this machine's
    folders; otherwise as given."""
    try:
        return Path(path).resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def runs_dir() -> Path:
    """Where trained models and run folders are kept: ``$KDLAB_RUNS`` or ``<project>/runs``."""
    return Path(os.environ.get("KDLAB_RUNS") or project_root() / "runs")


def progress_allowed() -> bool:
    """False when ``KDLAB_PROGRESS`` is 0/false/no/off: every kdlab progress bar stays silent.

    ``make test`` sets it for nbval, which reads a kernel's messages only after a cell finishes:
    a long cell's widget-bar updates overflow the kernel's message queue meanwhile, the cell's
    final "idle" message is dropped, and nbval reports "Timeout ... waiting for output".
    """
    return os.environ.get("KDLAB_PROGRESS", "").strip().lower() not in {"0", "false", "no", "off"}


def threads() -> int:
    """Threads for torch: ``$KDLAB_THREADS`` if set (an integer >= 1), else every CPU this process
    may use (its CPU affinity, which a container or ``taskset`` may limit)."""
    value = os.environ.get("KDLAB_THREADS", "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"KDLAB_THREADS={value!r}: expected an integer >= 1 (threads for torch)")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity API
        return max(1, os.cpu_count() or 1)


def apply_threads() -> int:
    """Set torch's intra-op threads to :func:`threads`; returns the number."""
    import torch

    n = threads()
    torch.set_num_threads(n)
    return n
