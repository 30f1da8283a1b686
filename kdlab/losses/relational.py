"""Relational distillation: SP on features, RKD and PKT on embeddings.

These compare relations between the samples of a batch, so student and teacher may differ in
every dimension but the batch. The teacher side is detached inside each loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._shapes import require_same_batch


def sp_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving KD (Tung & Mori, ICCV 2019).

    G = F F^T for F the features flattened to (B, C*T*H*W), each row of G L2-normalised;
    loss = ||G_t - G_s||_F^2 / B^2.

    Args:
        f_s, f_t: (B, ...) with the same B; the other dimensions may differ.
    """
    require_same_batch("sp_loss", f_s, f_t)

    def gram(f: torch.Tensor) -> torch.Tensor:
        flat = f.reshape(f.shape[0], -1)
        return F.normalize(flat @ flat.t(), dim=1)

    batch = f_s.shape[0]
    return (gram(f_t.detach()) - gram(f_s)).pow(2).sum() / batch**2


def _pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances (B, B) with a zero diagonal; clamped before sqrt to keep gradients finite."""
    sq = e.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp(min=eps)
    off_diag = ~torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
    return d2.sqrt() * off_diag


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    d = _pairwise_distances(e)
    n = e.shape[0]
    mean = d.sum() / (n * (n - 1))  # mean over distinct pairs i != j
    return d / mean


def _triplet_cosines(e: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j in triplet (i, j, k): (B, B, B), zero where i == j or k == j."""
    diff = F.normalize(e[None, :, :] - e[:, None, :], dim=2)  # diff[j, i] = unit(e_i - e_j)
    return diff @ diff.transpose(1, 2)


def rkd_loss(
    e_s: torch.Tensor, e_t: torch.Tensor, distance_weight: float = 25.0, angle_weight: float = 50.0
) -> torch.Tensor:
    """Relational KD (Park et al., CVPR 2019), as its authors' code computes it.

    distance term: smooth-L1 (beta=1) between d_s / mean(d_s) and d_t / mean(d_t), where d is the
        (B, B) matrix of Euclidean distances (zero diagonal), its mean taken over the pairs i != j,
        and the smooth-L1 averaged over all B^2 entries;
    angle term: smooth-L1 between the (B, B, B) cosines <unit(e_i - e_j), unit(e_k - e_j)>,
        averaged over all B^3 entries (degenerate triplets contribute 0 on both sides);
    loss = distance_weight * distance + angle_weight * angle.

    Needs B >= 2; a batch of one has no relations and returns 0 (still connected to the graph).

    Args:
        e_s, e_t: embeddings (B, D_s), (B, D_t); other shapes are flattened to (B, -1).
    """
    require_same_batch("rkd_loss", e_s, e_t)
    e_s = e_s.reshape(e_s.shape[0], -1)
    e_t = e_t.reshape(e_t.shape[0], -1).detach()
    if e_s.shape[0] < 2:
        return e_s.sum() * 0.0
    loss = e_s.new_zeros(())
    if distance_weight:
        loss = loss + distance_weight * F.smooth_l1_loss(_normalised_distances(e_s), _normalised_distances(e_t))
    if angle_weight:
        loss = loss + angle_weight * F.smooth_l1_loss(_triplet_cosines(e_s), _triplet_cosines(e_t))
    return loss


def pkt_loss(e_s: torch.Tensor, e_t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018), as its authors' code computes it.

    With x_i = e_i / (||e_i|| + eps) and s_ij = (x_i . x_j + 1) / 2 (cosine similarity in [0, 1]),
    p_ij = s_ij / sum_k s_ik (rows as conditional probabilities);
    loss = mean over all B^2 entries of p_t * log((p_t + eps) / (p_s + eps)).

    Args:
        e_s, e_t: embeddings (B, D_s), (B, D_t); other shapes are flattened to (B, -1).
    """
    require_same_batch("pkt_loss", e_s, e_t)

    def conditional(e: torch.Tensor) -> torch.Tensor:
        e = e.reshape(e.shape[0], -1)
        x = e / (e.norm(dim=1, keepdim=True) + eps)
        s = (x @ x.t() + 1.0) / 2.0
        return s / s.sum(dim=1, keepdim=True)

    p_s, p_t = conditional(e_s), conditional(e_t.detach())
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()
