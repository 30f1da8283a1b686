"""The progressive cascade (README, "The method"): teacher -> assistant(s) -> student over a capacity ladder.

A large capacity gap between teacher and student costs accuracy; a cascade closes it in steps.

- :mod:`.ladder`: :func:`capacity_ladder` interpolates :class:`~kdlab.models.VideoNetSpec` s
  between a teacher and a student (widths geometrically, depths linearly, so parameter counts
  fall roughly geometrically); :func:`ladder_table` gives params and FLOPs per rung.
- :mod:`.run`: :func:`cascade` trains rung k = 1 .. n-1 of the ladder (rung 0 is the given, trained
  teacher) with one distillation method of :mod:`kdlab.distill`, in a mode of :data:`MODES`:

  * ``"chain"`` (TAKD-style): rung k learns from rung k-1 only;
  * ``"dense"`` (DGKD-style): rung k learns from *every* earlier rung, through
    :class:`~kdlab.distill.dense.DenseDistillation` (one objective per earlier rung, their
    distillation terms averaged, the label term once).

  With ``pseudo=True`` the label term trains on refined pseudo-labels
  (:class:`~kdlab.pseudo.PseudoLabeler`): the teacher labels the unlabelled videos before rung 1,
  and after every rung the newest model is folded into the running ensemble (an EMA of the
  probabilities) and the labels are refined again (``refine_pseudo=True``). Pseudo-labels enter as
  hard labels with per-video weights; a random flip maps them through the dataset's ``flip_map``.
  Run again on the same folder, :func:`cascade` loads every finished rung and resumes the next one
  from its last finished epoch, so a killed run ends with the same weights as an uninterrupted one.
- :mod:`.rung`: one rung's training data (:class:`PseudoView`) and training (:func:`train_rung`).
- :mod:`.result`: :class:`CascadeResult`.
"""

from kdlab.distill.dense import DenseDistillation

from .ladder import capacity_ladder, ladder_markdown, ladder_table, rung_names
from .result import CascadeResult
from .rung import PseudoView, train_rung, training_set
from .run import CONFIG, MODES, Mode, PseudoRounds, cascade

__all__ = ["capacity_ladder", "ladder_table", "ladder_markdown", "rung_names", "cascade", "CascadeResult",
           "DenseDistillation", "PseudoView", "MODES", "Mode", "PseudoRounds", "CONFIG", "train_rung",
           "training_set"]
