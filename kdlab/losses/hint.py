"""Point-wise feature matching: plain feature MSE and FitNets hints (Romero et al., ICLR 2015)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ._shapes import require_same_shape


def feature_mse_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """mean over all elements of (f_s - f_t)^2; equal shapes required; the teacher is detached."""
    require_same_shape("feature_mse_loss", f_s, f_t, "map the student with kdlab.losses.StageAdapter first")
    return F.mse_loss(f_s, f_t.detach())


def fitnet_loss(
    f_s: torch.Tensor, f_t: torch.Tensor, regressor: Callable[[torch.Tensor], torch.Tensor] | None
) -> torch.Tensor:
    """FitNets hint loss: mean squared error between regressor(f_s) and f_t (mean reduction).

    Args:
        f_s: student features, e.g. (B, C_s, T_s, H_s, W_s).
        f_t: teacher features (B, C_t, T_t, H_t, W_t); detached.
        regressor: the learned map from student to teacher shape, typically a
            :class:`kdlab.losses.StageAdapter` (train its parameters with the student's).
            ``None`` means identity (shapes must then already match).
    """
    mapped = f_s if regressor is None else regressor(f_s)
    require_same_shape("fitnet_loss", mapped, f_t, "the regressor must map the student to the teacher's shape")
    return F.mse_loss(mapped, f_t.detach())
