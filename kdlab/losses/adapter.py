"""The stage adapter: maps a student stage's features to a teacher stage's shape."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _as_shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(
            f"StageAdapter: {name} shape {shape} must be (C, T, H, W) for video or (C, H, W) for "
            "images, without the batch dimension, all sizes >= 1"
        )
    return shape


class StageAdapter(nn.Module):
    """Student features (B, C_s, T_s, H_s, W_s) -> (B, C_t, T_t, H_t, W_t), the teacher's shape.

    Steps, each only where needed:
      1. adaptive average pooling of every axis the teacher has smaller (cheap, and it averages
         rather than drops positions);
      2. a 1x1x1 convolution + BatchNorm from C_s to C_t channels (the learned regressor of
         FitNets; applied whenever ``project`` is true, even for equal channel counts);
      3. trilinear interpolation of every axis the teacher has larger.
    Pooling before and upsampling after the convolution keeps it at the smaller resolution; the
    two commute with a pointwise convolution, so the order changes cost, not capacity.
    2D shapes (C, H, W) use Conv2d, BatchNorm2d and bilinear interpolation instead.

    Args:
        student_shape, teacher_shape: (C, T, H, W) or (C, H, W), without the batch dimension.
        project: use the conv + BN; ``False`` only resamples and requires C_s == C_t.
    """

    def __init__(self, student_shape: Sequence[int], teacher_shape: Sequence[int], project: bool = True):
        super().__init__()
        self.student_shape = _as_shape("student", student_shape)
        self.teacher_shape = _as_shape("teacher", teacher_shape)
        if len(self.student_shape) != len(self.teacher_shape):
            raise ValueError(
                f"StageAdapter: student shape {self.student_shape} and teacher shape "
                f"{self.teacher_shape} must both be (C, T, H, W) or both (C, H, W)"
            )
        c_s, *size_s = self.student_shape
        c_t, *size_t = self.teacher_shape
        self.video = len(size_s) == 3
        self.pooled_size = tuple(min(a, b) for a, b in zip(size_s, size_t))
        self.teacher_size = tuple(size_t)
        self.pool = self.pooled_size != tuple(size_s)
        self.upsample = self.pooled_size != self.teacher_size
        if project:
            conv, norm = (nn.Conv3d, nn.BatchNorm3d) if self.video else (nn.Conv2d, nn.BatchNorm2d)
            # No conv bias: BatchNorm's shift replaces it.
            self.proj = nn.Sequential(conv(c_s, c_t, kernel_size=1, bias=False), norm(c_t))
        elif c_s != c_t:
            raise ValueError(
                f"StageAdapter: project=False cannot change channels: student shape "
                f"{self.student_shape}, teacher shape {self.teacher_shape}"
            )
        else:
            self.proj = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.student_shape:
            raise ValueError(
                f"StageAdapter: expected student features (B, *{self.student_shape}), got {tuple(x.shape)}"
            )
        if self.pool:
            pool = F.adaptive_avg_pool3d if self.video else F.adaptive_avg_pool2d
            x = pool(x, self.pooled_size)
        x = self.proj(x)
        if self.upsample:
            mode = "trilinear" if self.video else "bilinear"
            x = F.interpolate(x, size=self.teacher_size, mode=mode, align_corners=False)
        return x

    def extra_repr(self) -> str:
        return f"student_shape={self.student_shape}, teacher_shape={self.teacher_shape}"
