"""uint8 frames <-> normalised float clips, and the label-aware horizontal flip."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

# Fixed per-channel statistics (those of Kinetics-400, used by torchvision's video models), so
# clips from every dataset share one scale and pretrained video nets see what they expect.
MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)


def to_clip(frames: np.ndarray | torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) -> float32 (..., 3, T, H, W), normalised with MEAN/STD (or in [0, 1])."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (..., T, H, W, 3), got {tuple(x.shape)} {x.dtype}")
    x = x.movedim(-1, -3).float().div_(255)  # (..., T, 3, H, W): channels where v2 expects them
    if normalize:
        x = F.normalize(x, list(MEAN), list(STD))
    return x.movedim(-3, -4).contiguous()  # (..., 3, T, H, W)


def denormalize(clip: torch.Tensor, normalized: bool = True) -> np.ndarray:
    """Inverse of :func:`to_clip` for viewing: (..., 3, T, H, W) float -> uint8 (..., T, H, W, 3)."""
    x = clip.detach().cpu().float()
    if x.ndim < 4 or x.shape[-4] != 3:
        raise ValueError(f"expected a clip (..., 3, T, H, W), got shape {tuple(x.shape)}")
    if normalized:
        shape = (3, 1, 1, 1)
        x = x * torch.tensor(STD).view(shape) + torch.tensor(MEAN).view(shape)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return x.movedim(-4, -1).numpy()


def hflip(clip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right: flips the last (width) axis of (..., H, W)."""
    return F.horizontal_flip(clip)


def flip_clip(clip: torch.Tensor, label: int, flip_map: Sequence[int]) -> tuple[torch.Tensor, int]:
    """Mirror a clip *and* map its label: MoveLeft mirrored is MoveRight.

    ``flip_map[label] == -1`` means no class describes the mirrored clip; then the clip is
    returned unflipped (a blind flip would teach a wrong label).
    """
    new = int(flip_map[label])
    if new < 0:
        return clip, label
    return hflip(clip), new
