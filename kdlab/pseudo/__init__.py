"""Pseudo-label optimization (README, "The method"): weak labels, the multi-view ensemble, refinement, metrics.

Modules, one concern each: ``weak`` (label budgets with injected noise, true labels kept aside),
``views`` (datasets that carry given or pseudo-labels and flip them correctly), ``ensemble``
(a model's averaged predictions over K clips x label-preserving views), ``refine`` (kNN
smoothing, corrections, class-adaptive thresholds, EMA re-refinement), ``metrics`` (accuracy vs
coverage, calibration), ``result`` (the PseudoLabels record), ``labeler`` (the running state
over cascade steps). Plots are in :mod:`kdlab.viz.pseudo`.

Every per-video tensor is indexed like the base training dataset (``ds[i] -> (clip, label, i)``),
so the outputs plug into ``kdlab.train.Supervised(soft_targets=..., sample_weights=...)``.
"""

from .ensemble import VIEWS, Predictions, predict
from .metrics import accuracy_at_coverage, accuracy_coverage_curve, expected_calibration_error, reliability_bins
from .labeler import PseudoLabeler
from .refine import CORRECTIONS, apply_temperature, class_thresholds, ema, fit_temperature, knn_smooth, refine
from .result import KINDS, PseudoLabels
from .views import LabelView, find_flip_map, with_clips, without_flip
from .weak import NOISE_MODES, WeakLabels, inject_label_noise

__all__ = [
    "NOISE_MODES", "inject_label_noise", "WeakLabels",
    "LabelView", "find_flip_map", "with_clips", "without_flip",
    "VIEWS", "Predictions", "predict",
    "KINDS", "CORRECTIONS", "ema", "apply_temperature", "fit_temperature", "knn_smooth", "class_thresholds",
    "refine", "PseudoLabels", "PseudoLabeler",
    "accuracy_coverage_curve", "accuracy_at_coverage", "reliability_bins", "expected_calibration_error",
]
