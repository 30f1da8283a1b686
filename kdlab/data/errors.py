"""The one exception the data layer raises for bad input, and the skip/raise policy."""

from __future__ import annotations

import warnings
from pathlib import Path

ON_ERROR = ("raise", "skip")


class VideoError(ValueError):
    """A video or split file that kdlab cannot use.

    The message always names the offending file, and the split file and line number when the
    problem comes from a split line. ``path`` and ``line`` keep them for code that wants them.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.line = line


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error={on_error!r}: choose one of {ON_ERROR}")
    return on_error


class ErrorLog:
    """Collects problems in skip mode; raises the first one in raise mode.

    ``report(what)`` then warns once with the whole list, so a dataset with many broken files
    gives one readable warning instead of one per file.
    """

    def __init__(self, on_error: str):
        self.on_error = check_on_error(on_error)
        self.errors: list[VideoError] = []

    def add(self, error: VideoError) -> None:
        if self.on_error == "raise":
            raise error
        self.errors.append(error)

    def report(self, what: str, limit: int = 20) -> None:
        if not self.errors:
            return
        lines = [f"  - {e}" for e in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"  ... and {len(self.errors) - limit} more")
        warnings.warn(
            f"{what}: skipped {len(self.errors)} bad item(s) (on_error='skip'):\n" + "\n".join(lines),
            stacklevel=3,
        )
