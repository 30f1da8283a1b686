"""The old home of the weak-supervision splits and the teachers, kept so that existing scripts and
notebooks still import from it. New code imports from where each name lives now:

- :mod:`kdlab.weak_splits`: :class:`DataConfig`, :class:`Splits`, :class:`MaskedLabels`;
- :mod:`kdlab.teachers`: :func:`get_teacher`, :func:`train_scratch`, :func:`train_classifier`,
  :func:`default_epochs`, ``PROTOCOLS``.
"""

from kdlab.teachers import PROTOCOLS, default_epochs, get_teacher, train_classifier, train_scratch
from kdlab.weak_splits import DataConfig, MaskedLabels, Splits

__all__ = ["PROTOCOLS", "DataConfig", "MaskedLabels", "Splits", "default_epochs", "get_teacher", "train_classifier",
           "train_scratch"]
