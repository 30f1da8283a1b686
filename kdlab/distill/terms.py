"""The options of :class:`~kdlab.distill.objective.Distillation`, grouped per term.

``Distillation`` takes flat keywords (``label_weight=``, ``logit_loss=``, ``feature_loss=``, ...):
that is its public interface, which the presets, the command line's ``--option KEY=VALUE`` and
the notebooks use. The groups below are the same options by term, for code that builds an
objective term by term; :func:`from_terms` turns them back into the flat keywords::

    objective = from_terms(teacher, student,
                           LogitTerm(loss="kd", weight=0.9, kd_temperature=4.0),
                           FeatureTerm(loss="fd", weight=0.1, pairing="cka_softmax"),
                           label=LabelTerm(weight=0.1), epochs=10)

A group's defaults are ``Distillation``'s own: a field left unset is not passed, so no default
is restated here (an unset field reads ``UNSET``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from .objective import Distillation

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


class _Term:
    #: field name -> Distillation keyword (where they differ)
    KEYWORDS: dict[str, str] = {}

    def keywords(self) -> dict:
        """The flat :class:`Distillation` keywords of the fields that are set."""
        return {self.KEYWORDS.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not UNSET}


@dataclass(frozen=True)
class LabelTerm(_Term):
    """The (pseudo-)label term: ``weight``, ``soft_targets`` (N, K), ``sample_weights`` (N,), ``smoothing``."""

    weight: float = UNSET
    soft_targets: Any = UNSET
    sample_weights: Any = UNSET
    smoothing: float = UNSET
    KEYWORDS = {"weight": "label_weight", "smoothing": "label_smoothing"}


@dataclass(frozen=True)
class LogitTerm(_Term):
    """The logit term: ``loss`` (a name of :data:`kdlab.losses.LOGIT_LOSSES` or None), ``weight``,
    ``kd_temperature``, ``dkd_alpha``, ``dkd_beta``, ``options`` (further settings of the loss)."""

    loss: str | None = UNSET
    weight: float = UNSET
    kd_temperature: float = UNSET
    dkd_alpha: float = UNSET
    dkd_beta: float = UNSET
    options: dict | None = UNSET
    KEYWORDS = {"loss": "logit_loss", "weight": "logit_weight", "options": "logit_options"}


@dataclass(frozen=True)
class FeatureTerm(_Term):
    """The substage feature terms: ``loss`` (D), ``weight``, ``fd_kind``, ``fd_temperature``, the
    stages, the ``pairing`` and its ``tau`` / ``min_pair_weight``, ``grid``, ``max_positions``."""

    loss: Any = UNSET
    weight: float = UNSET
    fd_kind: str = UNSET
    fd_temperature: float = UNSET
    student_stages: Any = UNSET
    teacher_stages: Any = UNSET
    pairing: Any = UNSET
    tau: float = UNSET
    min_pair_weight: float = UNSET
    grid: str = UNSET
    max_positions: int | None = UNSET
    KEYWORDS = {"loss": "feature_loss", "weight": "feature_weight"}


@dataclass(frozen=True)
class EmbeddingTerm(_Term):
    """The relational term on ``head.embed``: ``loss`` ("rkd", "pkt" or None) and ``weight``."""

    loss: str | None = UNSET
    weight: float = UNSET
    KEYWORDS = {"loss": "embedding_loss", "weight": "embedding_weight"}


def from_terms(teacher: nn.Module | None, student: nn.Module, *terms: _Term, **rest) -> Distillation:
    """``Distillation(teacher, student, **flat)`` with the flat keywords of ``terms`` (at most one
    of each kind) and ``rest`` (the schedule, probe, cache, ``clip_shape``, ... keywords; a label
    term may also come as ``label=LabelTerm(...)``)."""
    if isinstance(rest.get("label"), LabelTerm):
        terms = (*terms, rest.pop("label"))
    kinds = [type(t).__name__ for t in terms]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"one term of each kind, got {kinds}")
    flat: dict = {}
    for term in terms:
        flat.update(term.keywords())
    clash = sorted(set(flat) & set(rest))
    if clash:
        raise ValueError(f"{clash} set both in a term and as a keyword")
    return Distillation(teacher, student, **flat, **rest)
