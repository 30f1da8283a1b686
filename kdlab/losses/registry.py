"""Losses by name, for the distillation objective and the command line.

Every entry of one family has the same call form:
  FEATURE_LOSSES[name](f_s, f_t)        stage features (B, C, T, H, W) or (B, C, H, W)
  EMBEDDING_LOSSES[name](e_s, e_t)      embeddings (B, D)
  LOGIT_LOSSES[name](z_s, z_t, target)  logits (B, K), target (B,) or None (used by "dkd" only)
Entries use each loss's default settings; wrap a loss with functools.partial for others.
FitNets is the "mse" feature loss applied after the objective's StageAdapter (the regressor).
"""

from __future__ import annotations

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


def _kd(z_s: torch.Tensor, z_t: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    return kd_loss(z_s, z_t)


def _dkd(z_s: torch.Tensor, z_t: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    return dkd_loss(z_s, z_t, target)


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


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    """The loss registered as ``name`` in any of the three families."""
    for family in (FEATURE_LOSSES, EMBEDDING_LOSSES, LOGIT_LOSSES):
        if name in family:
            return family[name]
    raise ValueError(
        f"unknown loss {name!r}; valid names: feature {sorted(FEATURE_LOSSES)}, "
        f"embedding {sorted(EMBEDDING_LOSSES)}, logit {sorted(LOGIT_LOSSES)}"
    )
