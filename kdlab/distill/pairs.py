"""The pieces :class:`~kdlab.distill.Distillation` builds its terms from, checked when it is made.

- which stages are distilled (:func:`check_stages`) and their output shapes (:func:`stage_shapes`);
- for one (student stage, teacher stage) pair: the grid it is compared on (:func:`pair_grid`), the
  adapter that maps the student's features there (:func:`pair_adapter`) and the teacher's features
  pooled onto it (:func:`teacher_on_grid`);
- the feature loss D by name or callable (:func:`feature_fn`) and the keyword settings of the
  logit loss (:func:`logit_settings`);
- that a teacher cache belongs to this teacher (:func:`check_cache_teacher`) and to the training
  data (:func:`check_cache_data`).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdlab.hooks import SubstageTap, default_stage_names, unwrap
from kdlab.losses import CHANNEL_FREE_LOSSES, FEATURE_LOSSES, StageAdapter, fd_loss, logit_loss_options
from kdlab.modes import eval_mode

from .probe import device_of
from .teacher_cache import TeacherCache, find_cached_views, weights_digest


def check_stages(kind: str, requested, student: nn.Module, teacher: nn.Module | None) -> list[str]:
    """Validate stage names of the student (``kind="student"``) or the teacher."""
    model = student if kind == "student" else teacher
    names = default_stage_names(model) if requested is None else list(requested)
    modules = dict(unwrap(model).named_modules())
    bad = [n for n in names if n not in modules or n == ""]
    if bad or not names:
        both = f"student stages: {default_stage_names(student)}"
        if teacher is not None:
            both += f"; teacher stages: {default_stage_names(teacher)}"
        raise ValueError(f"unknown {kind} stage(s) {bad or names!r}; {both} "
                         f"(any name from {kind}.named_modules() also works)")
    return names


@torch.no_grad()
def stage_shapes(model: nn.Module, names: list[str], clip_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Output shapes (without batch) of the named modules for clips of ``clip_shape`` (eval mode)."""
    with eval_mode(model), SubstageTap(model, names, detach=True) as tap:
        model(torch.zeros(2, *clip_shape, device=device_of(model)))
    return {n: tuple(v.shape[1:]) for n, v in tap.features.items()}


def logit_settings(loss: str | None, extra: dict | None, **named) -> dict:
    """The keyword settings passed to ``LOGIT_LOSSES[loss]``: those of ``named`` (the flat
    options) its signature takes, updated with ``extra``; an unknown extra is refused."""
    if loss is None:
        return {}
    valid = logit_loss_options(loss)
    bad = sorted(set(extra or {}) - set(valid))
    if bad:
        raise ValueError(f"logit_options {bad} are not settings of logit loss {loss!r}; valid: {', '.join(valid)}")
    return {**{k: v for k, v in named.items() if k in valid}, **(extra or {})}


def feature_fn(loss, fd_kind: str, fd_temperature: float) -> tuple[Callable | None, str | None]:
    """``(D, its name)`` for a feature loss given by name, callable or None."""
    if loss is None:
        return None, None
    if callable(loss):
        return loss, getattr(loss, "__name__", "custom")
    if loss == "fd":
        return (lambda f_s, f_t: fd_loss(f_s, f_t, kind=fd_kind, temperature=fd_temperature)), f"fd_{fd_kind}"
    return FEATURE_LOSSES[loss], loss


def pair_grid(s_shape: tuple[int, ...], t_shape: tuple[int, ...], grid: str,
              max_positions: int | None) -> tuple[int, ...]:
    """The (T, H, W) grid on which a pair is compared (``grid`` and ``max_positions`` as in
    :class:`~kdlab.distill.Distillation`)."""
    out = list(t_shape[1:] if grid == "teacher" else (min(a, b) for a, b in zip(s_shape[1:], t_shape[1:])))
    # Halve the spatial axes (never below 1) until the grid holds at most max_positions.
    while max_positions and math.prod(out) > max_positions and max(out[-2:]) > 1:
        out[-2:] = [max(1, g // 2) for g in out[-2:]]
    return tuple(out)


def pair_adapter(s_shape: tuple[int, ...], t_shape: tuple[int, ...], loss_name: str | None,
                 grid: tuple[int, ...]) -> nn.Module:
    """The module that maps the student's features of a pair onto ``grid`` (see :func:`pair_grid`)."""
    if loss_name == "sp":  # compares (B, B) similarity matrices: any shapes
        return nn.Identity()
    if loss_name in CHANNEL_FREE_LOSSES:  # AT, NST: positions must match, channels need not
        if s_shape[1:] == grid:
            return nn.Identity()
        return StageAdapter(s_shape, (s_shape[0], *grid), project=False)
    return StageAdapter(s_shape, (t_shape[0], *grid), project=True)


def teacher_on_grid(f_t: torch.Tensor, loss_name: str | None, grid: tuple[int, ...]) -> torch.Tensor:
    """Teacher features average-pooled onto the pair's grid (a no-op when it is their own)."""
    if loss_name == "sp":
        return f_t
    if tuple(f_t.shape[2:]) == grid:
        return f_t
    pool = F.adaptive_avg_pool3d if len(grid) == 3 else F.adaptive_avg_pool2d
    return pool(f_t, grid)


def check_cache_teacher(cache: TeacherCache, teacher: nn.Module, stages: list[str]) -> None:
    """``cache`` holds ``teacher``'s outputs on every one of ``stages``; else a ValueError."""
    if cache.teacher_key != weights_digest(teacher):
        raise ValueError("teacher_cache was computed for another teacher (its weights differ from this "
                         "objective's teacher); open a TeacherCache for this teacher")
    missing = [n for n in stages if n not in cache.stages]
    if missing:
        raise ValueError(f"teacher_cache lacks the stages {missing} this objective distils; cached: {cache.stages}")


def check_cache_data(cache: TeacherCache, loader) -> None:
    """The training data (a loader or dataset) is the cached views ``cache`` was computed on."""
    views = find_cached_views(getattr(loader, "dataset", loader))
    if views is None:
        raise ValueError("teacher_cache is set, but the training data has no CachedViews: wrap the base "
                         "dataset in CachedViews(dataset, views) so each clip is a cached view")
    if views.views != cache.views.views or views.fingerprint() != cache.data_key:
        raise ValueError("the training data differs from the data the teacher cache was computed on (dataset "
                         "settings, augmentation, clip sampling or views): open a TeacherCache for this data")
