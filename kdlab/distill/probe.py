"""The correlation probe: a fixed set of clips on which the substage correlation R is measured.

R[i, j] is the linear CKA (:func:`kdlab.correlation.cka_from_grams`) between the mean-pooled
features (N, C) of student stage i and teacher stage j over the N probe clips. The clips are drawn
once with a fixed seed, so R is comparable from epoch to epoch (and identical on every DDP rank),
and the teacher's Gram matrices are computed once: the teacher never changes, only the student is
run again each time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from kdlab.correlation import cka_from_grams, gram
from kdlab.hooks import SubstageTap
from kdlab.modes import eval_mode


def device_of(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (the CPU if it has none)."""
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def pooled_features(model: nn.Module, names: list[str], clips: torch.Tensor, chunk: int = 32) -> list[torch.Tensor]:
    """Mean-pooled features (N, C) of the named modules on clips (N, 3, T, H, W), in eval mode
    (no BatchNorm update); every module's train/eval flag is restored afterwards."""
    device, out = device_of(model), {n: [] for n in names}
    with eval_mode(model), SubstageTap(model, names, detach=True) as tap:
        for part in clips.split(chunk):
            model(part.to(device))
            for n in names:
                f = tap[n].float()
                out[n].append((f.flatten(2).mean(2) if f.dim() > 2 else f).cpu())
    return [torch.cat(out[n]) for n in names]


def draw_clips(source: Dataset | DataLoader, size: int, seed: int) -> torch.Tensor:
    """``size`` clips (N, 3, T, H, W) from a Dataset (videos picked with ``seed``) or a DataLoader
    (its first clips); the same on every call, and the global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(source, DataLoader):
            clips, count = [], 0
            for batch in source:
                clips.append(batch[0] if isinstance(batch, (list, tuple)) else batch)
                count += len(clips[-1])
                if count >= size:
                    break
            return torch.cat(clips)[:size].cpu()
        picks = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))[:size].tolist()
        return torch.stack([torch.as_tensor(source[i][0]) for i in picks])


class CorrelationProbe:
    """R between a student's and a fixed teacher's stages on fixed clips.

    Args:
        teacher, teacher_stages: the teacher and the stages along R's columns.
        source: a Dataset or DataLoader to draw ``size`` clips from (with ``seed``).
    """

    def __init__(self, teacher: nn.Module, teacher_stages: list[str], source: Dataset | DataLoader,
                 size: int = 64, seed: int = 0):
        self.clips = draw_clips(source, size, seed)
        if len(self.clips) < 2:
            raise ValueError(f"the correlation probe has {len(self.clips)} clip(s); CKA needs at least 2")
        self.teacher_grams = [gram(f, "mean") for f in pooled_features(teacher, teacher_stages, self.clips)]

    def correlation(self, student: nn.Module, student_stages: list[str]) -> torch.Tensor:
        """R (S_student, S_teacher), float64."""
        grams = [gram(f, "mean") for f in pooled_features(student, student_stages, self.clips)]
        return torch.stack([torch.stack([cka_from_grams(K, L) for L in self.teacher_grams]) for K in grams])
