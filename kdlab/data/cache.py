"""The clip cache: every frame of every video, decoded and resized once, in one uint8 memmap.

File ``<folder>/clips-<key>.npy`` holds frames (N_total, S, S, 3) of all videos back to back;
``clips-<key>.json`` gives each video's offset. The key hashes the resize size and each video's
path, byte size, modification time and frame count, so a changed video means a new cache.
Both files are written under temporary names and renamed; the index is renamed last, so a
cache with an index is complete. Reads go through :func:`decode.resize_frame` just as direct
decoding does, which is why cached and decoded clips are identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
from kdlab.progress import tqdm
from kdlab.io import atomic_write_text

from .decode import read_frames
from .errors import VideoError


class ClipCache:
    """Frames of a list of videos, from a memory-mapped file built on first use.

    ``videos``: [(path relative to root, frame count, byte size, mtime_ns)]. ``frames(i, idx)``
    returns uint8 (len(idx), size, size, 3) of video i.
    """

    def __init__(self, root: Path, folder: Path, videos: Sequence[tuple[str, int, int, int]], size: int,
                 progress: bool = True):
        self.root, self.folder, self.size = Path(root), Path(folder), int(size)
        desc = json.dumps({"size": self.size, "videos": [list(v) for v in videos]})
        key = hashlib.sha1(desc.encode()).hexdigest()[:16]
        self.data_path = self.folder / f"clips-{key}.npy"
        self.index_path = self.folder / f"clips-{key}.json"
        counts = np.array([v[1] for v in videos], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
        self.counts = counts
        self._data = None
        if not self.index_path.is_file():
            self._build([v[0] for v in videos], progress)

    @property
    def nbytes(self) -> int:
        return int(self.counts.sum()) * self.size * self.size * 3

    def _build(self, rels: list[str], progress: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp_data = self.data_path.with_name(f".{self.data_path.name}.{os.getpid()}.tmp")
        shape = (int(self.counts.sum()), self.size, self.size, 3)
        free = shutil.disk_usage(self.folder).free
        if self.nbytes > free:
            raise OSError(f"the clip cache needs {self.nbytes / 2**30:.2f} GiB but {self.folder} has "
                          f"{free / 2**30:.2f} GiB free; pass cache=<another folder> or cache=False")
        try:
            out = np.lib.format.open_memmap(tmp_data, mode="w+", dtype=np.uint8, shape=shape)
            bar = tqdm(rels, desc=f"caching clips ({self.nbytes / 2**20:.0f} MiB)", unit="video", disable=not progress)
            for rel, off, n in zip(bar, self.offsets, self.counts):
                frames = read_frames(self.root / rel, range(int(n)), self.size)
                out[off : off + n] = frames
            out.flush()
            del out
            os.replace(tmp_data, self.data_path)  # a memory map, renamed into place like kdlab.io's files
            # Last: the index marks the cache complete.
            atomic_write_text(self.index_path, json.dumps({"size": self.size, "videos": rels,
                                                           "offsets": self.offsets.tolist(),
                                                           "counts": self.counts.tolist()}))
        except BaseException:
            tmp_data.unlink(missing_ok=True)
            raise

    def frames(self, i: int, indices: Sequence[int]) -> np.ndarray:
        if self._data is None:  # opened lazily, once per process (DataLoader workers included)
            self._data = np.load(self.data_path, mmap_mode="r")
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.counts[i]):
            raise VideoError(f"{self.data_path}: frame {idx.max()} requested from a video of {self.counts[i]} frames",
                             self.data_path)
        return np.asarray(self._data[self.offsets[i] + idx])

    def __getstate__(self):
        # Never pickle the memmap into workers: each opens its own view of the file.
        state = self.__dict__.copy()
        state["_data"] = None
        return state
