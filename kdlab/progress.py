"""kdlab's progress bars: ``tqdm.auto`` (a widget in Jupyter, text elsewhere), redrawn at most once
a second, in one of three modes set by ``KDLAB_PROGRESS`` (:func:`mode`):

- ``bars`` (default): live bars; in a live kernel each epoch's bar closes when the epoch ends
  (``leave=False``) and one bar per training stays;
- ``summary``: no bars, one line per finished training (:func:`summary`), e.g.
  ``fit: 20 epochs in 85 s | train/loss 0.312, val/top1 78.0``. For executions whose outputs are
  kept (``make notebooks``: ``scripts/run_notebooks.py`` sets it), where a bar would be frozen as
  its first "0%" frame in the saved notebook and its HTML;
- ``off`` (``KDLAB_PROGRESS=0``): nothing (nbval under ``make test``, see
  :func:`kdlab.environment.progress_allowed`).
"""

from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm as _tqdm

from kdlab.environment import progress_allowed

MODES = ("bars", "summary", "off")


def mode() -> str:
    """``"bars"``, ``"summary"`` or ``"off"`` (see the module docstring)."""
    if not progress_allowed():
        return "off"
    value = os.environ.get("KDLAB_PROGRESS", "").strip().lower()
    return "summary" if value == "summary" else "bars"


def tqdm(iterable: Any = None, *, disable: bool = False, mininterval: float = 1.0, **kwargs: Any) -> _tqdm:
    """``tqdm.auto.tqdm`` with kdlab's defaults; same arguments. Disabled unless the mode is ``bars``."""
    return _tqdm(iterable, disable=disable or mode() != "bars", mininterval=mininterval, **kwargs)


def summary(text: str, *, show: bool = True) -> None:
    """Print ``text`` as the one line of a finished task in ``summary`` mode (else nothing)."""
    if show and mode() == "summary":
        print(text, flush=True)
