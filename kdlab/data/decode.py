"""Decode video files with OpenCV into uint8 RGB frames, resized and centre-cropped.

Everything that touches a video file goes through here, so the direct loader, the clip cache
and the scan agree frame for frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .errors import VideoError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")


# One decoding thread per video: FFmpeg's own threads cost more to start than these short clips
# take to decode (~5x slower here), and loaders parallelise across videos with workers instead.
_OPEN_PARAMS = [cv2.CAP_PROP_N_THREADS, 1] if hasattr(cv2, "CAP_PROP_N_THREADS") else []


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(f"{path}: video file does not exist", path)
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)", path)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, _OPEN_PARAMS)
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: OpenCV cannot open it (corrupt file or unsupported codec)", path)
    return cap


def resize_frame(frame: np.ndarray, size: int | None) -> np.ndarray:
    """Resize so the short side is ``size``, then crop the centre square: (H, W, 3) -> (size, size, 3).

    ``size=None`` returns the frame unchanged. INTER_AREA when shrinking avoids aliasing of the
    small moving objects; INTER_LINEAR when enlarging.
    """
    if size is None:
        return frame
    h, w = frame.shape[:2]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (nw, nh), interpolation=interp)
        top, left = (nh - size) // 2, (nw - size) // 2
        frame = frame[top : top + size, left : left + size]
    return np.ascontiguousarray(frame)


def read_frames(path: str | Path, indices: Sequence[int] | None = None, size: int | None = None) -> np.ndarray:
    """Decode frames ``indices`` (all frames when None) of a video -> uint8 RGB (N, H, W, 3).

    ``indices`` may repeat and come in any order; the result follows their order. ``size``
    resizes each frame with :func:`resize_frame` (N, size, size, 3). Reads the file
    sequentially (seeking is unreliable in many containers) and stops after the last index
    needed. Raises :class:`VideoError` naming the file when it cannot be opened or has fewer
    frames than an index asks for; never pads with zeros.
    """
    path = Path(path)
    if indices is not None:
        indices = [int(i) for i in indices]
        if not indices or min(indices) < 0:
            raise ValueError(f"{path}: frame indices must be a non-empty list of indices >= 0, got {indices}")
    keep = None if indices is None else frozenset(indices)
    last = None if indices is None else max(indices)
    frames: dict[int, np.ndarray] = {}
    cap = _open(path)
    i = 0
    try:
        while (last is None or i <= last) and cap.grab():
            if keep is None or i in keep:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    raise VideoError(f"{path}: frame {i} could not be decoded (corrupt or truncated)", path)
                frames[i] = resize_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
            i += 1
    finally:
        cap.release()
    if indices is None:
        if not frames:
            raise VideoError(f"{path}: no frame could be decoded (corrupt, truncated or empty video)", path)
        return np.stack([frames[k] for k in range(i)])
    if last >= i:
        raise VideoError(f"{path}: has only {i} decodable frames but frame {last} was requested "
                         "(truncated, or changed since the manifest was written: rerun scan_dataset)", path)
    return np.stack([frames[k] for k in indices])


def probe(path: str | Path) -> dict:
    """Decode every frame once: the true frame count and what the container claims.

    Returns ``{"frames", "reported_frames", "height", "width", "fps"}``. ``frames`` counts the
    frames that actually decode; ``reported_frames`` is OpenCV's CAP_PROP_FRAME_COUNT, which
    often differs (the reason a scan exists).
    """
    path = Path(path)
    cap = _open(path)
    try:
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n, shape = 0, None
        while cap.grab():
            if shape is None:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    break
                shape = bgr.shape
            n += 1
    finally:
        cap.release()
    if n == 0 or shape is None:
        raise VideoError(f"{path}: no frame could be decoded (corrupt, truncated or empty video)", path)
    return {"frames": n, "reported_frames": reported, "height": int(shape[0]), "width": int(shape[1]), "fps": fps}
