"""``VideoFolder``: a map-style torch Dataset over a UCF101- or HMDB51-layout folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

from kdlab.environment import display_path

from .budgets import label_budget, read_budget
from .cache import ClipCache
from .decode import read_frames
from .errors import ErrorLog, VideoError
from .sampling import SAMPLINGS, clip_indices
from .scan import MANIFEST_FILE, find_videos, read_manifest, update_manifest, write_manifest
from .splits import read_split
from .synthetic import read_meta
from .transforms import flip_clip, to_clip


class VideoFolder(Dataset):
    """Clips of the videos of one split: ``ds[i] -> (clip, label, i)``.

    clip: float32 (3, frames, size, size), or (clips, 3, frames, size, size) with
    ``sampling="multi"``; each frame is resized (short side = size), centre-cropped and
    normalised with :data:`transforms.MEAN`/``STD`` (or left in [0, 1] with normalize=False).
    label: int, 0-based in classInd order (HMDB51: sorted class names).

    Args:
        root: the folder with the class folders (and usually the split files).
        split: "train" or "test"; fold: the official split number (1-3).
        sampling: "uniform" (evaluation), "random" (training), "multi" (``clips`` clips).
        budget: keep only the labelled subset ``label_budget(root, budget, seed=budget_seed)``.
        flip: random horizontal flip with p=0.5 that maps the label through ``flip_map``.
        cache: True (under ``<root>/.cache``) or a folder: serve frames from a clip cache.
        on_error: "raise" a VideoError at the first bad split line or video, or "skip" them,
            listing them in ``skipped`` and warning once.
        min_frames: videos with fewer decodable frames are errors (default: ``frames``).
        split_dir: where the split files are (default: searched under ``root``).
        transform: called on each clip (3, frames, size, size) after normalisation and the
            flip (with ``sampling="multi"`` on each of the clips), e.g. a torchvision transform;
            its result is the item's clip. target_transform: called on the label.

    Frame counts come from the manifest (``scan_dataset``), created or updated on first use, so
    files known to be broken or too short are found when the dataset is built (and skipped in
    skip mode). A file that breaks later still raises in ``ds[i]``: a map-style dataset cannot
    drop an item after its length is fixed, and a silent substitute would hide the problem.
    """

    def __init__(self, root: str | Path, split: str = "train", fold: int = 1, frames: int = 8, size: int = 32,
                 sampling: str = "uniform", clips: int = 1, budget: float | None = None, budget_seed: int = 0,
                 flip: bool = False, cache: bool | str | Path = False, on_error: str = "raise",
                 normalize: bool = True, min_frames: int | None = None, split_dir: str | Path | None = None,
                 progress: bool = True, transform=None, target_transform=None):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling={sampling!r}: choose one of {SAMPLINGS}")
        if sampling != "multi" and clips != 1:
            raise ValueError(f"clips={clips} needs sampling='multi' (got sampling={sampling!r})")
        if budget is not None and split != "train":
            raise ValueError(f"a label budget selects training videos; got split={split!r}")
        self.root = Path(root)
        self.split, self.fold, self.frames, self.size = split, fold, int(frames), int(size)
        self.sampling, self.clips, self.flip, self.normalize = sampling, int(clips), bool(flip), bool(normalize)
        self.min_frames = self.frames if min_frames is None else int(min_frames)
        self.split_dir = split_dir
        self.transform, self.target_transform = transform, target_transform
        log = ErrorLog(on_error)

        layout, samples = read_split(self.root, split, fold, split_dir=split_dir, log=log)
        self.layout, self.classes = layout.kind, layout.classes
        self.num_classes = len(self.classes)
        self.flip_map = self._read_flip_map()
        if budget is not None:
            keep = {rel for rel, _ in read_budget(label_budget(self.root, budget, seed=budget_seed, fold=fold,
                                                               split_dir=split_dir))}
            samples = [s for s in samples if s[0] in keep]

        manifest = self._manifest([rel for rel, _ in samples], progress)
        self.samples, self.counts, stats = [], [], []
        for rel, label in samples:
            bad = manifest["errors"].get(rel)
            if bad is not None:
                log.add(VideoError(bad["error"], self.root / rel))
                continue
            entry = manifest["videos"][rel]
            if entry["frames"] < self.min_frames:
                log.add(VideoError(f"{self.root / rel}: too short: {entry['frames']} decodable frames, needs at "
                                   f"least {self.min_frames} (min_frames)", self.root / rel))
                continue
            self.samples.append((rel, label))
            self.counts.append(entry["frames"])
            stats.append((rel, entry["frames"], entry["bytes"], entry["mtime_ns"]))
        self.labels = [label for _, label in self.samples]
        self.skipped = log.errors
        log.report(f"VideoFolder({self.root}, split={split!r}, fold={fold})")
        if not self.samples:
            raise VideoError(f"{self.root}: split {split!r} (fold {fold}) has no usable videos", self.root)

        self.cache = None
        if cache:
            folder = self.root / ".cache" if cache is True else Path(cache)
            self.cache = ClipCache(self.root, folder, stats, self.size, progress=progress)

    def _read_flip_map(self) -> list[int]:
        # Datasets made by kdlab declare how a mirror maps labels; real ones get the identity,
        # which is right for UCF101/HMDB51 actions (a mirrored golf swing is still a golf swing).
        meta = read_meta(self.root)
        if meta and meta.get("classes") == self.classes and "flip_map" in meta:
            return [int(v) for v in meta["flip_map"]]
        return list(range(self.num_classes))

    def _manifest(self, rels: list[str], progress: bool) -> dict:
        manifest = read_manifest(self.root)
        # First use: scan every video once, not only this split's. Later: only new or changed files.
        to_scan = find_videos(self.root) if manifest is None else rels
        manifest, changed = update_manifest(self.root, to_scan, manifest, progress=progress)
        if changed or not (self.root / MANIFEST_FILE).is_file():
            try:
                write_manifest(self.root, manifest)
            except OSError as e:  # read-only datasets still load; they just rescan next time
                warnings.warn(f"could not write the manifest in {self.root}: {e}", stacklevel=3)
        return manifest

    def __len__(self) -> int:
        return len(self.samples)

    def frame_indices(self, i: int) -> torch.Tensor:
        """The frame indices ``ds[i]`` would read: LongTensor (clips, frames). Uses torch's RNG for "random"."""
        return clip_indices(self.counts[i], self.frames, self.sampling, self.clips)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self.samples):
            raise IndexError(f"index {i} out of range for a dataset of {len(self.samples)} videos")
        rel, label = self.samples[i]
        idx = self.frame_indices(i)
        flat = idx.flatten().tolist()
        if self.cache is not None:
            frames = self.cache.frames(i, flat)
        else:
            frames = read_frames(self.root / rel, flat, self.size)
        clip = to_clip(frames.reshape(idx.shape + frames.shape[1:]), self.normalize)  # (K, 3, T, S, S)
        if self.flip and torch.rand(()) < 0.5:
            clip, label = flip_clip(clip, label, self.flip_map)
        if self.transform is not None:
            clip = torch.stack([self.transform(c) for c in clip])
        if self.target_transform is not None:
            label = self.target_transform(label)
        if self.sampling != "multi":
            clip = clip[0]
        return clip, label, i

    def labelled_mask(self, percent: float, seed: int = 0) -> torch.Tensor:
        """BoolTensor (len(self),): True for the videos in the ``percent``% label budget."""
        if self.split != "train":
            raise ValueError(f"label budgets cover the training split; this dataset is split={self.split!r}")
        path = label_budget(self.root, percent, seed=seed, fold=self.fold, split_dir=self.split_dir)
        keep = {rel for rel, _ in read_budget(path)}
        return torch.tensor([rel in keep for rel, _ in self.samples], dtype=torch.bool)

    def class_counts(self) -> list[int]:
        return torch.bincount(torch.tensor(self.labels), minlength=self.num_classes).tolist()

    def __repr__(self) -> str:
        return (f"VideoFolder({display_path(self.root)!r}, split={self.split!r}, fold={self.fold}, videos={len(self)}, "
                f"classes={self.num_classes}, frames={self.frames}, size={self.size}, sampling={self.sampling!r}"
                f"{f', clips={self.clips}' if self.sampling == 'multi' else ''}, flip={self.flip}, "
                f"cache={self.cache is not None})")
