"""Shape checks shared by the losses: one clear ValueError that names both shapes."""

from __future__ import annotations

import torch


def _fmt(x: torch.Tensor) -> str:
    return str(tuple(x.shape))


def require_same_shape(loss: str, f_s: torch.Tensor, f_t: torch.Tensor, hint: str = "") -> None:
    """Raise unless student and teacher tensors have identical shapes."""
    if f_s.shape != f_t.shape:
        raise ValueError(
            f"{loss}: student {_fmt(f_s)} and teacher {_fmt(f_t)} must have the same shape"
            + (f"; {hint}" if hint else "")
        )


def require_same_batch(loss: str, f_s: torch.Tensor, f_t: torch.Tensor) -> None:
    """Raise unless both tensors have the same batch size (dim 0) and at least 2 dims."""
    if f_s.dim() < 2 or f_t.dim() < 2:
        raise ValueError(
            f"{loss}: expected batched tensors (B, ...), got student {_fmt(f_s)} and teacher {_fmt(f_t)}"
        )
    if f_s.shape[0] != f_t.shape[0]:
        raise ValueError(
            f"{loss}: student {_fmt(f_s)} and teacher {_fmt(f_t)} must have the same batch size"
        )


def require_same_positions(loss: str, f_s: torch.Tensor, f_t: torch.Tensor) -> None:
    """Raise unless both are feature maps (B, C, [T,] H, W) with equal B and equal (T, H, W).

    Channel counts may differ: the methods that call this compare maps over positions only.
    """
    if f_s.dim() < 3 or f_t.dim() < 3:
        raise ValueError(
            f"{loss}: expected feature maps (B, C, T, H, W) or (B, C, H, W), "
            f"got student {_fmt(f_s)} and teacher {_fmt(f_t)}"
        )
    if f_s.shape[0] != f_t.shape[0] or f_s.shape[2:] != f_t.shape[2:]:
        raise ValueError(
            f"{loss}: student {_fmt(f_s)} and teacher {_fmt(f_t)} must share the batch size and "
            "the spatio-temporal size (T, H, W); channels may differ. "
            "Resample the student with kdlab.losses.StageAdapter first"
        )


def flatten_positions(f: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) or (B, C, H, W) -> (B, C, N) with N = T*H*W (or H*W)."""
    return f.reshape(f.shape[0], f.shape[1], -1)
