"""Where and how a run executes: the device, the seeds, the torchrun process group, bf16 autocast.

Shared by the training engine (:func:`kdlab.train.fit`), :func:`kdlab.evaluation.evaluate` and the
commands that run under torchrun (rank 0 alone writes).
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch
import torch.distributed as dist

# cuBLAS reads this when it creates its first handle, so it is set when kdlab is imported, before
# any CUDA work: with it, CUDA matrix products are reproducible (see :func:`deterministic`). A value
# the user set is kept; on the CPU it does nothing.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def default_device() -> torch.device:
    """CUDA when present (the local rank's GPU under torchrun), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def deterministic(device: torch.device | str) -> None:
    """Make training on ``device`` reproducible, so a killed and resumed run (or a rerun) ends with
    the same weights: on CUDA, deterministic cuDNN convolutions without autotuning and
    ``torch.use_deterministic_algorithms`` (``warn_only``: an operation that has no deterministic
    CUDA kernel warns instead of stopping the run). The CPU kernels kdlab uses are already
    deterministic: nothing changes there. ``KDLAB_DETERMINISTIC=0`` leaves CUDA's fast defaults.
    """
    if torch.device(device).type != "cuda" or os.environ.get("KDLAB_DETERMINISTIC", "1") == "0":
        return
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch: everything random in epoch ``epoch`` derives from it."""
    return seed * 100_003 + epoch


def distributed() -> tuple[int, int]:
    """``(rank, world_size)``; initialises the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def to_device(batch, device):
    """Move every tensor of a batch (tuple/list/dict) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on ``device`` when ``amp`` (no gradient scaler is needed for bf16), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()



__all__ = ["autocast", "default_device", "deterministic", "distributed", "epoch_seed", "seed_everything", "to_device"]
