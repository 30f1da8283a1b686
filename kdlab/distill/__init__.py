"""Distillation: the objective every method trains with, its schedule, and the teacher cache.

- :mod:`.objective`: :class:`Distillation`, the objective for :func:`kdlab.train.fit` (label,
  logit, substage feature and embedding terms; pairings; the teacher kept frozen and unsaved);
- :mod:`.terms`: the same options grouped per term (:class:`LabelTerm`, :class:`LogitTerm`,
  :class:`FeatureTerm`, :class:`EmbeddingTerm`) and :func:`from_terms`;
- :mod:`.methods`: :func:`make_objective` for ``scratch``, ``kd``, ``dkd``, ``fitnet``, ``at``,
  ``sp``, ``rkd``, ``pkt``, ``nst`` and ``skd`` (:class:`SubstageDistillation`);
- :mod:`.schedule`: :class:`Schedule`, the progressive (shallow-to-deep) and joint schedules;
- :mod:`.teacher_cache`: :class:`CachedViews` and :class:`TeacherCache`.
"""

from .methods import METHODS, SKD_DEFAULTS, SKD_TUNED, SubstageDistillation, make_objective, method_options
from .objective import FEATURE_LOSS_NAMES, LOGIT_LOSS_NAMES, Distillation
from .schedule import SCHEDULES, Phase, Schedule
from .teacher_cache import CachedViews, TeacherCache, describe_dataset, find_cached_views, weights_digest
from .terms import EmbeddingTerm, FeatureTerm, LabelTerm, LogitTerm, from_terms

__all__ = [
    "Distillation", "SubstageDistillation", "make_objective", "method_options", "METHODS", "SKD_DEFAULTS", "SKD_TUNED",
    "FEATURE_LOSS_NAMES", "LOGIT_LOSS_NAMES", "Schedule", "Phase", "SCHEDULES", "CachedViews", "TeacherCache",
    "describe_dataset", "find_cached_views", "weights_digest",
    "LabelTerm", "LogitTerm", "FeatureTerm", "EmbeddingTerm", "from_terms",
]
