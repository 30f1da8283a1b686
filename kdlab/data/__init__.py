"""kdlab's video data: the simulated motion dataset, the UCF101/HMDB51 loader, budgets, cache, scan.

Modules, one concern each: ``render`` (draw a simulated video), ``synthetic`` (write a dataset),
``splits`` (read split files), ``decode`` (OpenCV decoding and resizing), ``sampling`` (which
frames make a clip), ``transforms`` (normalise, flip), ``scan`` (manifest of frame counts),
``cache`` (memory-mapped clip cache), ``budgets`` (labelled subsets), ``folder`` (VideoFolder).
"""

from .budgets import label_budget, read_budget, train_val_split
from .decode import read_frames
from .errors import VideoError
from .folder import VideoFolder
from .sampling import clip_indices
from .scan import scan_dataset
from .synthetic import DEFAULTS, MOTION_CLASSES, QUICK_DEFAULTS, default_dataset, flip_map_for, generate_dataset
from .transforms import MEAN, STD, denormalize, flip_clip, hflip, to_clip

__all__ = [
    "MOTION_CLASSES", "DEFAULTS", "QUICK_DEFAULTS", "generate_dataset", "default_dataset", "flip_map_for",
    "VideoFolder", "label_budget", "read_budget", "train_val_split", "scan_dataset", "VideoError",
    "read_frames", "clip_indices", "MEAN", "STD", "to_clip", "denormalize", "hflip", "flip_clip",
]
