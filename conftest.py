"""Project-wide pytest setup, loaded for ``pytest tests`` and for nbval runs on ``notebooks/``.

Strict checks: a failed :func:`kdlab.check` raises under any pytest run (the notebooks' kernels
inherit this environment), so CI keeps the protection of every claim a notebook states.
``KDLAB_STRICT=0`` on the command line still wins.
"""

import os


def pytest_configure(config):
    os.environ.setdefault("KDLAB_STRICT", "1")
