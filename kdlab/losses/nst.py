"""Neuron selectivity transfer (Huang & Wang, 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._shapes import flatten_positions, require_same_positions
from .kernels import mmd2, poly_kernel


def nst_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """NST with the polynomial kernel k(x, y) = (x . y)^2 (degree 2, c = 0).

    Each channel's activation, flattened over the N = T*H*W positions, is L2-normalised, so a
    feature map is a set of C unit vectors in R^N. Per sample,
    MMD^2 = mean_ij k(t_i, t_j) + mean_ij k(s_i, s_j) - 2 mean_ij k(s_i, t_j),
    and the loss is its mean over the batch.

    Args:
        f_s: (B, C_s, T, H, W) or (B, C_s, H, W).
        f_t: (B, C_t, T, H, W) or (B, C_t, H, W): channel counts may differ, positions must match.
            Detached: gradients reach the student only.
    """
    require_same_positions("nst_loss", f_s, f_t)
    s = F.normalize(flatten_positions(f_s), dim=2)
    t = F.normalize(flatten_positions(f_t.detach()), dim=2)
    return mmd2(poly_kernel(s, s), poly_kernel(t, t), poly_kernel(s, t))
