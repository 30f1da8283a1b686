"""Kernels and the (biased) MMD^2 estimate shared by NST and the feature-distribution loss."""

from __future__ import annotations

import torch


def poly_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 2, c: float = 0.0) -> torch.Tensor:
    """k(x, y) = (x . y + c)^degree for batched sample sets x (B, M, D), y (B, L, D) -> (B, M, L)."""
    return (x @ y.transpose(1, 2) + c).pow(degree)


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_m - y_l||^2 for x (B, M, D), y (B, L, D) -> (B, M, L), clamped at 0 against round-off."""
    sq_x = x.pow(2).sum(-1)
    sq_y = y.pow(2).sum(-1)
    return (sq_x[:, :, None] + sq_y[:, None, :] - 2 * x @ y.transpose(1, 2)).clamp(min=0)


def median_bandwidth(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Median heuristic: sigma^2 = median of the squared distances between distinct points of the
    joint set [x; y], per batch element (B,), detached (a bandwidth is a setting, not a target)."""
    with torch.no_grad():
        z = torch.cat([x, y], dim=1)
        d2 = squared_distances(z, z)
        n = z.shape[1]
        off = ~torch.eye(n, dtype=torch.bool, device=z.device)
        med = d2[:, off].median(dim=1).values if n > 1 else d2.reshape(d2.shape[0], -1)[:, 0]
        return med.clamp(min=eps)


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """k(x, y) = exp(-||x - y||^2 / (2 sigma^2)); sigma2 is (B,) or a scalar."""
    sigma2 = torch.as_tensor(sigma2, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    return torch.exp(-squared_distances(x, y) / (2 * sigma2))


def mmd2(k_ss: torch.Tensor, k_tt: torch.Tensor, k_st: torch.Tensor) -> torch.Tensor:
    """Biased (V-statistic) MMD^2 from kernel matrices (B, M, M), (B, L, L), (B, M, L),
    averaged over the batch: mean k(t, t) + mean k(s, s) - 2 mean k(s, t). Zero when s == t."""
    return k_tt.mean() + k_ss.mean() - 2 * k_st.mean()
