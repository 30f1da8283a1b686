"""The old name of :mod:`kdlab.students` (distilled students through the run cache), kept so that
existing scripts and notebooks still import from it. New code imports :mod:`kdlab.students`."""

from kdlab.students import distill_student, key_of, matrices_from_history, teacher_cache, weak_training_set

__all__ = ["distill_student", "weak_training_set", "teacher_cache", "key_of", "matrices_from_history"]
