"""The type and range of every run setting, checked before anything is trained or written.

:func:`check_settings` is shared by ``kdlab train``, ``kdlab distill/cascade/skd``
(:func:`kdlab.pipeline.make_config`) and the CLI, which checks a config file's values and the
flags' values apart so that a message names where a bad value came from::

    bad.toml: lr = "fast": expected a finite number > 0
    --lr nan: expected a finite number > 0
"""

from __future__ import annotations

import math
from pathlib import Path


class SettingError(ValueError):
    """A setting of the wrong type or out of range; the message names it and what is valid."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(v) -> bool:
    return isinstance(v, str) and v != ""


#: setting -> (what is valid, test). Settings not listed here are checked by their own code.
RULES: dict[str, tuple[str, object]] = {
    "lr": ("a finite number > 0", lambda v: _number(v) and v > 0),
    "budget": ("a percentage in (0, 100]", lambda v: _number(v) and 0 < v <= 100),
    "noise_rate": ("a number in [0, 1]", lambda v: _number(v) and 0 <= v <= 1),
    "epochs": ("an integer >= 1", lambda v: _integer(v) and v >= 1),
    "teacher_epochs": ("an integer >= 1", lambda v: _integer(v) and v >= 1),
    "batch_size": ("an integer >= 1", lambda v: _integer(v) and v >= 1),
    "frames": ("an integer >= 1 (frames per clip)", lambda v: _integer(v) and v >= 1),
    "size": ("an integer >= 8 (pixels)", lambda v: _integer(v) and v >= 8),
    "clips": ("an integer >= 1", lambda v: _integer(v) and v >= 1),
    "seed": ("an integer >= 0", lambda v: _integer(v) and v >= 0),
    "budget_seed": ("an integer >= 0", lambda v: _integer(v) and v >= 0),
    "pool": ("an integer >= 1 (videos per class)", lambda v: _integer(v) and v >= 1),
    "num_workers": ("an integer >= 0", lambda v: _integer(v) and v >= 0),
    "views": ("an integer >= 0 (0: fresh clips)", lambda v: _integer(v) and v >= 0),
    "steps": ("an integer >= 0", lambda v: _integer(v) and v >= 0),
    "cache": ("true or false", lambda v: isinstance(v, bool)),
    "pseudo": ("true or false", lambda v: isinstance(v, bool)),
    "refine_pseudo": ("true or false", lambda v: isinstance(v, bool)),
    "amp": ("true or false", lambda v: isinstance(v, bool)),
    "options": ("a table of objective options", lambda v: isinstance(v, dict)),
    **{key: ("a non-empty string", _text) for key in (
        "model", "method", "teacher", "mode", "teacher_model", "student_model", "noise_mode", "labels", "data",
        "out", "log_dir")},
}
#: Settings whose value may be absent (None: a default chosen later).
OPTIONAL = {"epochs", "teacher_epochs", "data", "log_dir", "out", "pool"}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value)


def describe(key: str, value, source: str | Path | None = None) -> str:
    """``--key value``, ``file: key = value`` or ``key = value``: where a value came from."""
    if source == "flag":
        return f"--{key.replace('_', '-')} {value}"
    prefix = f"{source}: " if source else ""
    return f"{prefix}{key} = {_toml(value)}"


def check_settings(values: dict, source: str | Path | None = None) -> None:
    """Raise :class:`SettingError` for the first value of ``values`` of the wrong type or range.

    ``source``: ``"flag"`` (the value came from a command-line flag), a config file's path, or
    None (a library call); it only shapes the message.
    """
    for key, value in values.items():
        if key not in RULES or (value is None and key in OPTIONAL):
            continue
        valid, test = RULES[key]
        if not test(value):
            raise SettingError(f"{describe(key, value, source)}: expected {valid}")


def check_clip(model: str, frames: int, source: str | Path | None = None) -> None:
    """A clip of ``frames`` frames must be long enough for ``model`` (:func:`kdlab.models.min_frames`)."""
    from kdlab.models import min_frames

    need = min_frames(model)
    if frames < need:
        raise SettingError(f"{describe('frames', frames, source)}: a clip of {frames} frame(s) is too short for model "
                           f"{model!r}, which convolves over time: it needs frames >= {need}")
