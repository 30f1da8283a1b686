"""Small test data: a tiny in-memory clip dataset for engine mechanics (resume, guards, DDP), and
tiny generated video splits with a tiny teacher for the distillation recipes and the cascade.
Learning claims are tested on real generated video files elsewhere."""

import torch
from torch.utils.data import Dataset

from kdlab.data import generate_dataset
from kdlab.weak_splits import DataConfig, Splits
from kdlab.models import build_model

TINY_CLASSES = ["MoveLeft", "MoveRight", "Grow"]


def tiny_videos(folder, train_per_class: int = 12, test_per_class: int = 2, classes=TINY_CLASSES):
    """Generated videos (8 frames of 32 x 32) in ``folder/sim``, in the UCF101 layout; returns the root."""
    return generate_dataset(folder / "sim", classes=list(classes), train_per_class=train_per_class,
                            test_per_class=test_per_class, frames=8, size=32, progress=False)


def tiny_splits(folder) -> Splits:
    """Generated videos of 3 classes (12 train + 2 test each, 8 frames of 32 x 32), 20 % labelled."""
    return Splits(DataConfig(root=str(tiny_videos(folder)), budget=20), progress=False)


def tiny_teacher(num_classes: int, seed: int = 0) -> torch.nn.Module:
    """A narrow teacher-shaped model (widths 8, 8, 16, 16), seeded."""
    torch.manual_seed(seed)
    return build_model("teacher", num_classes, widths=(8, 8, 16, 16), stem_width=8)


def tiny_student(num_classes: int = 2, seed: int = 0) -> torch.nn.Module:
    """A narrow student-shaped model (widths 4, 8, 8, 12), seeded."""
    torch.manual_seed(seed)
    return build_model("student", num_classes, widths=(4, 8, 8, 12), stem_width=4)


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
