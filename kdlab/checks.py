"""Checks that teach instead of stopping: :func:`check` states a claim a notebook makes and says
whether it holds.

In class a notebook must never stop half-way because one claim failed on other hardware, so
:func:`check` prints a visible line and carries on::

    check("the teacher is far better than chance", acc > chance + 15)
    # ✓ the teacher is far better than chance

    # ✗ the teacher is far better than chance (test top-1 41.0 %)   <- a failed claim, the run goes on

Under tests the same call is an assertion, so CI keeps every protection it has: in *strict mode*
a failed check raises :class:`AssertionError` (after printing its line). Strict mode is on when

- ``KDLAB_STRICT`` is 1/true/yes/on (``make test`` sets it, and so does the project's
  ``conftest.py`` for every pytest and nbval run, which the notebooks' kernels inherit), or
- ``CI`` is true (``CI=true`` is set by GitHub Actions, GitLab CI and most other CI services).

``KDLAB_STRICT=0`` turns it off even under CI.
"""

from __future__ import annotations

import os

__all__ = ["check", "strict", "CheckFailed"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

PASS, FAIL = "✓", "✗"


class CheckFailed(AssertionError):
    """A claim that :func:`check` found false in strict mode."""


def strict() -> bool:
    """True when a failed :func:`check` raises (``KDLAB_STRICT``, else ``CI``; see the module docstring)."""
    value = os.environ.get("KDLAB_STRICT", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return os.environ.get("CI", "").strip().lower() in _TRUE


def check(claim: str, ok, detail=None) -> bool:
    """Print ``✓ claim`` when ``ok`` is true, else ``✗ claim (detail)``; return ``bool(ok)``.

    ``ok``: anything with a truth value (a bool, a 0-d tensor, a numpy bool).
    ``detail``: what to show next to a failed claim (a measured number, say); ignored when it holds.
    In strict mode (:func:`strict`) a failed claim raises :class:`CheckFailed`, an
    :class:`AssertionError`, so ``make test`` and CI fail on it.
    """
    passed = bool(ok)
    line = f"{PASS if passed else FAIL} {claim}"
    if not passed and detail is not None:
        line += f" ({detail})"
    print(line, flush=True)
    if not passed and strict():
        raise CheckFailed(f"check failed: {claim}" + (f" ({detail})" if detail is not None else ""))
    return passed
