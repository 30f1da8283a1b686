"""Logit distillation: Hinton KD and decoupled KD (DKD).

Both take logits (B, K) and treat the teacher as a constant target: its logits are detached
inside the loss, so gradients reach the student only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._shapes import require_same_shape


def _check_logits(loss: str, s: torch.Tensor, t: torch.Tensor, temperature: float) -> None:
    if s.dim() != 2:
        raise ValueError(f"{loss}: expected logits (B, K), got student {tuple(s.shape)}")
    require_same_shape(loss, s, t)
    if temperature <= 0:
        raise ValueError(f"{loss}: temperature must be > 0, got {temperature}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """Hinton et al. (2015) knowledge distillation.

    loss = T^2 * (1/B) * sum_b KL(softmax(z_t[b]/T) || softmax(z_s[b]/T))

    ``batchmean`` reduction (sum over classes, mean over the batch) and the T^2 factor keep the
    gradient scale independent of T, as in the original recipe.

    Args:
        student_logits, teacher_logits: (B, K).
        temperature: T > 0.
    """
    _check_logits("kd_loss", student_logits, teacher_logits, temperature)
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature**2


def dkd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor | None,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Decoupled knowledge distillation (Zhao et al., CVPR 2022), as its authors' code computes it.

    With p = softmax(z / T) and g = target class:
      TCKD = sum over {g, not g} of KL between the binary distributions (p_g, 1 - p_g);
      NCKD = KL between the distributions over the non-target classes, computed as a softmax of
             z / T - 1000 * onehot(g) (the target logit pushed out of the softmax);
      loss = T^2 / B * (alpha * sum_b TCKD_b + beta * sum_b NCKD_b).

    The student's binary log-probabilities are computed with log-sum-exp, which equals the
    authors' ``log`` of summed probabilities but stays finite when a probability underflows.

    Args:
        student_logits, teacher_logits: (B, K), K >= 2.
        target: (B,) class indices. ``None`` uses the teacher's argmax, for unlabelled videos.
        alpha, beta: weights of TCKD and NCKD.
        temperature: T > 0.
    """
    _check_logits("dkd_loss", student_logits, teacher_logits, temperature)
    batch, num_classes = student_logits.shape
    if num_classes < 2:
        raise ValueError(f"dkd_loss: needs at least 2 classes, got logits {tuple(student_logits.shape)}")
    teacher_logits = teacher_logits.detach()
    if target is None:
        target = teacher_logits.argmax(dim=1)
    target = target.reshape(-1).long()
    if target.numel() != batch:
        raise ValueError(f"dkd_loss: target {tuple(target.shape)} must hold one class per sample (B={batch})")
    if target.min() < 0 or target.max() >= num_classes:
        raise ValueError(f"dkd_loss: target classes must lie in [0, {num_classes}), got {target.tolist()}")

    gt = F.one_hot(target, num_classes).bool()
    z_s, z_t = student_logits / temperature, teacher_logits / temperature

    # TCKD: binary distributions (target, all others).
    log_p_s = F.log_softmax(z_s, dim=1)
    log_s_gt = log_p_s.masked_fill(~gt, float("-inf")).logsumexp(dim=1)
    log_s_other = log_p_s.masked_fill(gt, float("-inf")).logsumexp(dim=1)
    p_t = F.softmax(z_t, dim=1)
    t_gt = (p_t * gt).sum(dim=1)
    t_other = (p_t * ~gt).sum(dim=1)
    tckd = F.kl_div(
        torch.stack([log_s_gt, log_s_other], dim=1), torch.stack([t_gt, t_other], dim=1), reduction="sum"
    )

    # NCKD: distributions over the non-target classes (authors' -1000 masking).
    mask = 1000.0 * gt.to(z_s.dtype)
    nckd = F.kl_div(F.log_softmax(z_s - mask, dim=1), F.softmax(z_t - mask, dim=1), reduction="sum")

    return (alpha * tckd + beta * nckd) * temperature**2 / batch
