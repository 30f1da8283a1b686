"""Distillation losses, functional like torch.nn.functional: tensors in, a scalar out.

Each loss follows the conventions of its method's original public implementation (reduction,
T^2 scaling, normalisation; see each docstring) and treats the teacher as a constant: teacher
tensors are detached inside, so gradients reach the student (and its adapter) only.

Shapes: video features (B, C, T, H, W), image features (B, C, H, W), embeddings (B, D),
logits (B, K). Where student and teacher features differ in C, T, H or W, a
:class:`StageAdapter` maps the student's; the losses raise a ValueError naming both shapes
when what they need does not match.
"""

from .adapter import StageAdapter
from .attention import at_loss, attention_map
from .distribution import (
    DEFAULT_FD_KIND,
    FD_KINDS,
    channel_moments,
    fd_channel_softmax_loss,
    fd_gaussian_loss,
    fd_loss,
    fd_mmd_loss,
)
from .hint import feature_mse_loss, fitnet_loss
from .logits import dkd_loss, kd_loss
from .nst import nst_loss
from .registry import CHANNEL_FREE_LOSSES, EMBEDDING_LOSSES, FEATURE_LOSSES, LOGIT_LOSSES, get_loss, logit_loss_options
from .relational import pkt_loss, rkd_loss, sp_loss

__all__ = [
    "StageAdapter",
    "at_loss",
    "attention_map",
    "sp_loss",
    "rkd_loss",
    "pkt_loss",
    "nst_loss",
    "feature_mse_loss",
    "fitnet_loss",
    "kd_loss",
    "dkd_loss",
    "fd_loss",
    "fd_channel_softmax_loss",
    "fd_gaussian_loss",
    "fd_mmd_loss",
    "channel_moments",
    "FD_KINDS",
    "DEFAULT_FD_KIND",
    "FEATURE_LOSSES",
    "EMBEDDING_LOSSES",
    "LOGIT_LOSSES",
    "CHANNEL_FREE_LOSSES",
    "get_loss",
    "logit_loss_options",
]
