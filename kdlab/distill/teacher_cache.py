"""The teacher cache: the teacher's outputs on fixed views of every video, computed once.

A distillation epoch spends most of its time in the teacher's forward pass, yet the teacher never
changes. If the training clips are drawn from a *fixed* set of views per video, the teacher's
outputs on every view can be computed once and read back in later epochs (and by later students).

- :class:`CachedViews` wraps a training dataset so that view v of video i is always the same clip:
  ``dataset[i]`` drawn with torch's RNG seeded from ``(seed, i, v)``, i.e. one fixed draw of the
  dataset's own augmentation (random frame window, label-mapped flip). Each access picks one of
  the V views with torch's RNG and returns ``(clip, label, index, view)``.
- :class:`TeacherCache` runs the teacher over every (video, view), stores its logits and tapped
  stage features as float16 ``.npy`` files, memory-mapped when read, and serves them by
  ``(index, view)``. Its folder name is a fingerprint of the teacher's weights and buffers, the
  data configuration (the dataset's content fingerprint, split, frames, size, sampling, flip, the
  videos, a hash of a few views' pixels), the view recipe, the tapped stages and the cached videos: a changed teacher,
  augmentation or clip sampling gets a new folder and a recompute, never stale outputs.

The folder is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from kdlab.environment import display_path
from kdlab.progress import tqdm

from kdlab.hooks import SubstageTap, default_stage_names, unwrap
from kdlab.modes import eval_mode

CACHE_VERSION = 1
META = "meta.json"
# Attributes of a dataset that decide what its clips look like (VideoFolder's, and any dataset's
# that uses the same names).
_DATA_ATTRS = ("root", "split", "fold", "frames", "size", "sampling", "clips", "flip", "normalize", "flip_map",
               "min_frames")


def _sha1(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def weights_digest(model: nn.Module) -> str:
    """SHA-1 of a model's class, parameter and buffer names, dtypes, shapes and values."""
    h = hashlib.sha1(type(unwrap(model)).__qualname__.encode())
    for name, t in sorted(unwrap(model).state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _where(root) -> str:
    """A dataset folder as part of a cache key: its content fingerprint
    (:func:`kdlab.data.fingerprint.dataset_fingerprint`, so a cache made in one checkout is found in
    another), or its resolved path for a folder without split files."""
    from kdlab.data.fingerprint import dataset_fingerprint

    try:
        return "dataset:" + dataset_fingerprint(root)
    except (OSError, ValueError):
        return str(Path(root).resolve())


def describe_dataset(ds: Dataset) -> dict:
    """What decides a dataset's clips, as a JSON-able dict (a dataset may define ``cache_key()``).

    Looks through ``Subset`` (keeping its indices) and reads the attributes in ``_DATA_ATTRS``,
    hashes of the video list and frame counts. The dataset folder enters as its content
    fingerprint, never its path (a cache unpacked into another checkout is found there).
    """
    if hasattr(ds, "cache_key"):
        return {"type": type(ds).__qualname__, "key": ds.cache_key()}
    d: dict = {"type": type(ds).__qualname__, "len": len(ds)}
    if isinstance(ds, Subset):
        d.update(indices=_sha1(list(map(int, ds.indices))), inner=describe_dataset(ds.dataset))
        return d
    for attr in _DATA_ATTRS:
        if hasattr(ds, attr):
            value = getattr(ds, attr)
            d[attr] = _where(value) if attr == "root" else value
    for attr in ("samples", "counts"):
        if hasattr(ds, attr):
            d[attr] = _sha1(list(getattr(ds, attr)))
    clip_cache = getattr(ds, "cache", None)
    if hasattr(clip_cache, "data_path") and not str(d.get("root", "")).startswith("dataset:"):
        d["clip_cache"] = Path(clip_cache.data_path).name  # a folder without split files: its files' key
    for attr in ("transform", "target_transform"):  # only when set: keys of datasets without one stay as they were
        if getattr(ds, attr, None) is not None:
            d[attr] = repr(getattr(ds, attr))
    return d


class CachedViews(Dataset):
    """V fixed augmented views per video: ``ds[i] -> (clip, label, index, view)``.

    View v of video i is ``dataset[i]`` drawn with torch's RNG seeded from ``(seed, i, v)``, so it
    is the same clip on every call (the dataset's randomness must come from torch's RNG, as
    VideoFolder's does; :meth:`fingerprint` checks it). ``ds[i]`` picks v uniformly with torch's
    RNG, so training still sees varied views, reproducibly under :func:`kdlab.train.fit`'s seeds.

    Wrap the *base* dataset, whose item index equals its position (e.g. ``splits.train``), and
    apply ``Subset`` / label masking outside this wrapper: the cache is keyed by that index.

    Args:
        dataset: map-style dataset of ``(clip (3, T, H, W), label, index, ...)``.
        views: V, the number of fixed views per video.
        seed: picks the V draws.
    """

    def __init__(self, dataset: Dataset, views: int = 4, seed: int = 0):
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.dataset, self.views, self.seed = dataset, int(views), int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def view_seed(self, i: int, v: int) -> int:
        digest = hashlib.sha1(f"{self.seed}:{i}:{v}".encode()).digest()
        return int.from_bytes(digest[:7], "little")

    def view(self, i: int, v: int):
        """``(clip, label, index, ...)`` of view ``v`` of video ``i`` (the global RNG is left untouched)."""
        if not 0 <= v < self.views:
            raise IndexError(f"view {v} out of range: this dataset has {self.views} views per video")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.view_seed(i, v))
            item = self.dataset[i]
        if int(item[2]) != i:
            raise ValueError(
                f"CachedViews: item {i} of {type(self.dataset).__name__} reports video index {int(item[2])}: "
                "wrap the base dataset (whose index equals its position) and apply Subset or label "
                "masking outside CachedViews"
            )
        return item

    def __getitem__(self, i: int):
        v = int(torch.randint(self.views, ()))
        clip, label, index, *_ = self.view(i, v)
        return clip, label, index, v

    def fingerprint(self, sample_videos: int = 2) -> dict:
        """The view recipe, :func:`describe_dataset` of the wrapped dataset, and a hash of the
        pixels of every view of the first ``sample_videos`` videos (which catches changes the
        attributes do not show, e.g. a new normalisation). Raises if a view is not reproducible."""
        h = hashlib.sha1()
        for i in range(min(sample_videos, len(self))):
            for v in range(self.views):
                clip = torch.as_tensor(self.view(i, v)[0]).contiguous()
                h.update(clip.reshape(-1).view(torch.uint8).numpy().tobytes())
        if len(self):
            again = torch.as_tensor(self.view(0, 0)[0])
            if not torch.equal(again, torch.as_tensor(self.view(0, 0)[0])):
                raise ValueError(
                    f"{type(self.dataset).__name__} gives different clips for the same seed: its randomness "
                    "does not come (only) from torch's RNG, so its views cannot be cached"
                )
        return {"views": self.views, "seed": self.seed, "data": describe_dataset(self.dataset),
                "pixels": h.hexdigest()}


def find_cached_views(ds) -> CachedViews | None:
    """The :class:`CachedViews` inside ``ds`` (through Subset ``.dataset`` / ``.base`` wrappers)."""
    for _ in range(16):
        if isinstance(ds, CachedViews):
            return ds
        ds = getattr(ds, "dataset", None) if hasattr(ds, "dataset") else getattr(ds, "base", None)
        if ds is None:
            return None
    return None


class _ViewItems(Dataset):
    """(video, view) pairs of a CachedViews -> (clip, row, view), for building the cache."""

    def __init__(self, views: CachedViews, indices: Sequence[int]):
        self.views, self.indices = views, list(indices)

    def __len__(self):
        return len(self.indices) * self.views.views

    def __getitem__(self, k):
        row, v = divmod(k, self.views.views)
        return self.views.view(self.indices[row], v)[0], row, v


class TeacherCache:
    """The teacher's logits and stage features on every view of a :class:`CachedViews`.

    Opening a cache computes it if its folder does not exist yet (``built_now`` tells), else
    reads the stored one. ``lookup(index, view)`` returns the outputs for a batch.

    Files in ``<folder>/teacher-<key>/``: ``logits.npy`` (N, V, K) and one ``<stage>.npy`` per
    tapped stage (N, V, C, T, H, W), float16, rows in the order of ``indices``; ``meta.json``.

    Args:
        teacher: the teacher (run in eval mode under no_grad; its state is not changed).
        views: the :class:`CachedViews` the student trains on.
        folder: where caches live (one subfolder per key).
        stages: tapped module names (default: the teacher's stages and ``head.embed`` if present).
        indices: the videos to cache (default: all); a lookup of another video is an error.
        batch_size, num_workers: for the one pass over the data.
    """

    def __init__(self, teacher: nn.Module, views: CachedViews, folder: str | Path, *,
                 stages: Iterable[str] | None = None, indices: Sequence[int] | None = None, batch_size: int = 32,
                 num_workers: int = 0, progress: bool = True):
        if not isinstance(views, CachedViews):
            raise TypeError(f"views must be a CachedViews dataset, got {type(views).__name__}")
        self.teacher, self.views = teacher, views
        if stages is None:
            names = dict(unwrap(teacher).named_modules())
            stages = default_stage_names(teacher) + (["head.embed"] if "head.embed" in names else [])
        self.stages = list(stages)
        self.indices = list(range(len(views))) if indices is None else [int(i) for i in indices]
        self.teacher_key = weights_digest(teacher)
        self.data_key = views.fingerprint()
        description = {"version": CACHE_VERSION, "teacher": self.teacher_key, "data": self.data_key,
                       "stages": self.stages, "indices": _sha1(self.indices), "dtype": "float16"}
        self.key = _sha1(description)[:16]
        self.path = Path(folder) / f"teacher-{self.key}"
        self.built_now = False
        if not (self.path / META).is_file():
            self._build(description, batch_size, num_workers, progress)
            self.built_now = True
        self.meta = json.loads((self.path / META).read_text())
        self._row_of = np.full(max(self.indices, default=-1) + 1, -1, dtype=np.int64)
        self._row_of[self.indices] = np.arange(len(self.indices))
        self._arrays: dict[str, np.ndarray] | None = None

    # -- building -----------------------------------------------------------------------------
    @torch.no_grad()
    def _build(self, description: dict, batch_size: int, num_workers: int, progress: bool) -> None:
        teacher = self.teacher
        device = next(teacher.parameters()).device
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.parent / f".{self.path.name}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        n, V = len(self.indices), self.views.views
        loader = DataLoader(_ViewItems(self.views, self.indices), batch_size=batch_size, num_workers=num_workers)
        arrays: dict[str, np.ndarray] = {}
        try:
            with eval_mode(teacher), SubstageTap(teacher, self.stages, detach=True) as tap:
                for clips, rows, vs in tqdm(loader, desc="teacher cache", unit="batch", disable=not progress):
                    logits = teacher(clips.to(device))
                    outputs = {"logits": logits, **tap.features}
                    if not arrays:
                        arrays = self._open_for_writing(tmp, outputs, n, V)
                    for name, value in outputs.items():
                        half = value.float().cpu().half()
                        if not torch.isfinite(half).all():
                            raise ValueError(f"teacher output {name!r} is not finite in float16 (|x| > 65504?); "
                                             "the cache stores float16")
                        arrays[name][rows.numpy(), vs.numpy()] = half.numpy()
            for a in arrays.values():
                a.flush()
            arrays.clear()
            shapes = {name: list(np.load(tmp / f"{name}.npy", mmap_mode="r").shape)
                      for name in ["logits", *self.stages]}
            (tmp / META).write_text(json.dumps({**description, "data": self.data_key, "shapes": shapes,
                                                "indices": self.indices}, indent=1))
            try:
                os.replace(tmp, self.path)
            except OSError:  # another process finished the same cache first: theirs is as good
                if not (self.path / META).is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            arrays.clear()
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _open_for_writing(self, tmp: Path, outputs: dict, n: int, V: int) -> dict[str, np.ndarray]:
        total = sum(n * V * int(np.prod(v.shape[1:])) * 2 for v in outputs.values())
        free = shutil.disk_usage(tmp).free
        if total > free:
            raise OSError(f"the teacher cache needs {total / 2**30:.2f} GiB but {tmp.parent} has "
                          f"{free / 2**30:.2f} GiB free; cache fewer views or stages, or another folder")
        return {name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=np.float16,
                                                shape=(n, V, *value.shape[1:]))
                for name, value in outputs.items()}

    # -- reading ------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return sum((self.path / f"{name}.npy").stat().st_size for name in ["logits", *self.stages])

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:  # opened lazily, once per process
            self._arrays = {name: np.load(self.path / f"{name}.npy", mmap_mode="r")
                            for name in ["logits", *self.stages]}
        return self._arrays

    def lookup(self, index: torch.Tensor, view: torch.Tensor, device=None,
               stages: Iterable[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Teacher outputs for videos ``index`` (B,) seen in views ``view`` (B,):
        ``(logits (B, K), {stage: (B, C, T, H, W)})``, float32 on ``device``."""
        stages = self.stages if stages is None else list(stages)
        missing = [s for s in stages if s not in self.stages]
        if missing:
            raise KeyError(f"stages {missing} are not in the teacher cache; cached: {self.stages}")
        idx = torch.as_tensor(index).cpu().numpy().astype(np.int64)
        vs = torch.as_tensor(view).cpu().numpy().astype(np.int64)
        inside = (idx >= 0) & (idx < len(self._row_of))
        rows = np.where(inside, self._row_of[np.clip(idx, 0, len(self._row_of) - 1)], -1)
        if (rows < 0).any() or (vs < 0).any() or (vs >= self.views.views).any():
            bad = sorted(set(idx[rows < 0].tolist()))
            raise KeyError(f"the teacher cache has no entry for videos {bad[:10]} / views {sorted(set(vs.tolist()))} "
                           f"(it holds {len(self.indices)} videos x {self.views.views} views)")
        arrays = self._open()
        order = np.argsort(rows, kind="stable")  # read the memmap front to back
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))

        def read(name):
            block = np.ascontiguousarray(arrays[name][rows[order], vs[order]][inverse])
            return torch.from_numpy(block).to(device or "cpu").float()

        return read("logits"), {s: read(s) for s in stages}

    def __repr__(self) -> str:
        return (f"TeacherCache({display_path(self.path)!r}, videos={len(self.indices)}, views={self.views.views}, "
                f"stages={self.stages})")
