"""Errors that several layers raise, in a leaf module (it imports nothing from kdlab).

:class:`UsageError` is raised by :mod:`kdlab.cli` and :mod:`kdlab.bench.cli` alike; keeping it
here, rather than in either command module, is what keeps the two free of an import cycle.
"""

from __future__ import annotations


class UsageError(Exception):
    """A bad command line or configuration: printed as one line, exit status 2."""
