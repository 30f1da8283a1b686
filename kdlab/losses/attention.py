"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._shapes import flatten_positions, require_same_positions


def attention_map(f: torch.Tensor, p: float = 2) -> torch.Tensor:
    """Spatio-temporal attention map: (B, C, T, H, W) -> (B, T*H*W).

    a = mean over channels of |f|^p, flattened and L2-normalised per sample.
    """
    return F.normalize(flatten_positions(f).abs().pow(p).mean(dim=1), dim=1)


def at_loss(f_s: torch.Tensor, f_t: torch.Tensor, p: float = 2) -> torch.Tensor:
    """Attention transfer as in its authors' code: mean over (B, N) of (a_s - a_t)^2.

    Args:
        f_s: student features (B, C_s, T, H, W) or (B, C_s, H, W).
        f_t: teacher features (B, C_t, T, H, W) or (B, C_t, H, W); the channel counts may differ,
            the batch and spatio-temporal sizes must match. Detached: gradients reach the student only.
        p: exponent of the activation magnitudes.
    """
    require_same_positions("at_loss", f_s, f_t)
    return (attention_map(f_s, p) - attention_map(f_t.detach(), p)).pow(2).mean()
