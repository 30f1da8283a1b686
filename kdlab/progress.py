"""kdlab's progress bars: ``tqdm.auto`` (a widget in Jupyter, text elsewhere), redrawn at most once
a second and silenced everywhere by ``KDLAB_PROGRESS=0`` (see :func:`kdlab.config.progress_allowed`)."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm as _tqdm

from kdlab.config import progress_allowed


def tqdm(iterable: Any = None, *, disable: bool = False, mininterval: float = 1.0, **kwargs: Any) -> _tqdm:
    """``tqdm.auto.tqdm`` with kdlab's defaults; same arguments."""
    return _tqdm(iterable, disable=disable or not progress_allowed(), mininterval=mininterval, **kwargs)
