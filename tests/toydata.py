"""A tiny in-memory clip dataset for engine mechanics (resume, guards, DDP). Learning claims are
tested on real generated video files elsewhere."""

import torch
from torch.utils.data import Dataset


class MovingBar(Dataset):
    """Clips (3, 8, 16, 16) of a bright bar moving left (label 0) or right (label 1) in noise."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.clips = torch.randn(n, 3, 8, 16, 16, generator=g) * 0.5
        for i, label in enumerate(self.labels.tolist()):
            for t in range(8):
                x = 2 + t if label == 1 else 13 - t
                self.clips[i, :, t, 4:12, x] += 2.0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.clips[i], int(self.labels[i]), i
