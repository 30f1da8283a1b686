"""Small test data: a tiny in-memory clip dataset for engine mechanics (resume, guards, DDP), and
tiny generated video splits with a tiny teacher for the distillation recipes and the cascade.
Learning claims are tested on real generated video files elsewhere."""

import torch
from torch.utils.data import Dataset

from kdlab.data import generate_dataset
from kdlab.experiment import DataConfig, Splits
from kdlab.models import build_model

TINY_CLASSES = ["MoveLeft", "MoveRight", "Grow"]


def tiny_splits(folder) -> Splits:
    """Generated videos of 3 classes (12 train + 2 test each, 8 frames of 32 x 32), 20 % labelled."""
    root = generate_dataset(folder / "sim", classes=TINY_CLASSES, train_per_class=12, test_per_class=2, frames=8,
                            size=32, progress=False)
    return Splits(DataConfig(root=str(root), budget=20), progress=False)


def tiny_teacher(num_classes: int, seed: int = 0) -> torch.nn.Module:
    """A narrow teacher-shaped model (widths 8, 8, 16, 16), seeded."""
    torch.manual_seed(seed)
    return build_model("teacher", num_classes, widths=(8, 8, 16, 16), stem_width=8)


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
