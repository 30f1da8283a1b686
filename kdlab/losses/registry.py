"""Losses by name, for the distillation objective and the command line.

Every entry of one family has the same call form:
  FEATURE_LOSSES[name](f_s, f_t)        stage features (B, C, T, H, W) or (B, C, H, W)
  EMBEDDING_LOSSES[name](e_s, e_t)      embeddings (B, D)
  LOGIT_LOSSES[name](z_s, z_t, target, **options)
                                        logits (B, K), target (B,) or None (used by "dkd" only)
Feature and embedding entries use each loss's default settings; wrap a loss with
functools.partial for others. FitNets is the "mse" feature loss applied after the objective's
StageAdapter (the regressor).

Logit entries take their settings as keywords named like the options of
:class:`kdlab.distill.Distillation` (``kd_temperature``, ``dkd_alpha``, ``dkd_beta``): the
objective passes each entry the options its signature names, so a new logit loss is one function
here (its own settings as further keywords, set with ``Distillation(logit_options={...})``).
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch

from .attention import at_loss
from .distribution import fd_channel_softmax_loss, fd_gaussian_loss, fd_mmd_loss
from .hint import feature_mse_loss
from .logits import dkd_loss, kd_loss
from .nst import nst_loss
from .relational import pkt_loss, rkd_loss, sp_loss


def _fd_mmd_poly(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    return fd_mmd_loss(f_s, f_t, kernel="poly")


def _kd(z_s: torch.Tensor, z_t: torch.Tensor, target: torch.Tensor | None = None, *,
        kd_temperature: float = 4.0) -> torch.Tensor:
    """:func:`kd_loss` at T = ``kd_temperature``; ``target`` is not used."""
    return kd_loss(z_s, z_t, kd_temperature)


def _dkd(z_s: torch.Tensor, z_t: torch.Tensor, target: torch.Tensor | None = None, *, kd_temperature: float = 4.0,
         dkd_alpha: float = 1.0, dkd_beta: float = 8.0) -> torch.Tensor:
    """:func:`dkd_loss` (alpha, beta, T); ``target`` None uses the teacher's argmax."""
    return dkd_loss(z_s, z_t, target, dkd_alpha, dkd_beta, kd_temperature)


FEATURE_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": feature_mse_loss,
    "at": at_loss,
    "sp": sp_loss,
    "nst": nst_loss,
    "fd_channel_softmax": fd_channel_softmax_loss,
    "fd_gaussian": fd_gaussian_loss,
    "fd_mmd": fd_mmd_loss,
    "fd_mmd_poly": _fd_mmd_poly,
}

# Feature losses that compare student and teacher without equal channel counts, so they need no
# channel adapter ("sp" needs only the same batch; "at" and "nst" also the same T, H, W).
CHANNEL_FREE_LOSSES = frozenset({"at", "sp", "nst"})

EMBEDDING_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "rkd": rkd_loss,
    "pkt": pkt_loss,
}

LOGIT_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "kd": _kd,
    "dkd": _dkd,
}


def logit_loss_options(name: str) -> tuple[str, ...]:
    """The keyword settings of the logit loss ``name`` (e.g. ``("kd_temperature",)`` for "kd")."""
    params = inspect.signature(LOGIT_LOSSES[name]).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    """The loss registered as ``name`` in any of the three families."""
    for family in (FEATURE_LOSSES, EMBEDDING_LOSSES, LOGIT_LOSSES):
        if name in family:
            return family[name]
    raise ValueError(
        f"unknown loss {name!r}; valid names: feature {sorted(FEATURE_LOSSES)}, "
        f"embedding {sorted(EMBEDDING_LOSSES)}, logit {sorted(LOGIT_LOSSES)}"
    )
