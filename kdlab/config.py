"""The old name of :mod:`kdlab.environment` (quick mode, the data and runs folders, threads).

Kept so that ``from kdlab import config`` and ``config.pick(...)`` in existing scripts and notebooks
still work: importing it gives the :mod:`kdlab.environment` module itself (so a test that patches
one patches both). New code imports :mod:`kdlab.environment`.
"""

import sys

from kdlab import environment

sys.modules[__name__] = environment
