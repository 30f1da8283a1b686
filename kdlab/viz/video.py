"""Look at clips: frame strips and playable animations (matplotlib only, no widgets)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from ..data.transforms import denormalize


def as_frames(clip, normalized: bool = True) -> np.ndarray:
    """Any clip -> uint8 (T, H, W, 3).

    Accepts a float clip (3, T, H, W) as ``VideoFolder`` returns it (``normalized`` says whether
    to undo the mean/std normalisation) or uint8 frames (T, H, W, 3) as ``read_frames`` returns.
    """
    if isinstance(clip, torch.Tensor) and clip.dtype.is_floating_point:
        return denormalize(clip, normalized)
    arr = np.asarray(clip)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected a float clip (3, T, H, W) or uint8 frames (T, H, W, 3), "
                         f"got {arr.dtype} {arr.shape}")
    return arr


def frame_strip(clips: Sequence, titles: Sequence[str] | None = None, max_frames: int = 8,
                normalized: bool = True, cell: float = 1.1):
    """One row of frames per clip -> matplotlib Figure. Frames are picked evenly if there are more."""
    rows = [as_frames(c, normalized) for c in clips]
    T = min(max_frames, max(len(r) for r in rows))
    fig, axes = plt.subplots(len(rows), T, figsize=(cell * T + (1.6 if titles else 0), cell * len(rows)),
                             squeeze=False)
    for r, frames in enumerate(rows):
        pick = np.linspace(0, len(frames) - 1, T).round().astype(int)
        for c, t in enumerate(pick):
            ax = axes[r, c]
            ax.imshow(frames[t], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={t}", fontsize=8)
        if titles:
            axes[r, 0].set_ylabel(titles[r], rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(pad=0.2)
    return fig


def animate(clips: Sequence, titles: Sequence[str] | None = None, interval: int = 200,
            normalized: bool = True, cell: float = 1.8, dpi: int = 72) -> animation.FuncAnimation:
    """Clips side by side, played together -> FuncAnimation (``.to_jshtml()`` in a notebook).

    A low ``dpi`` keeps the embedded animation small: every frame is stored as an image.
    """
    rows = [as_frames(c, normalized) for c in clips]
    T = max(len(r) for r in rows)
    fig, axes = plt.subplots(1, len(rows), figsize=(cell * len(rows), cell + 0.3), squeeze=False, dpi=dpi)
    images = []
    for k, frames in enumerate(rows):
        ax = axes[0, k]
        images.append(ax.imshow(frames[0], interpolation="nearest"))
        ax.set_xticks([]), ax.set_yticks([])
        if titles:
            ax.set_title(titles[k], fontsize=9)
    fig.tight_layout(pad=0.2)

    def show(t):
        for im, frames in zip(images, rows):
            im.set_data(frames[min(t, len(frames) - 1)])
        return images

    anim = animation.FuncAnimation(fig, show, frames=T, interval=interval, blit=True)
    plt.close(fig)  # the animation owns the figure; keeps notebooks from drawing a static copy
    return anim


def animation_html(clips: Sequence, titles: Sequence[str] | None = None, **kwargs) -> str:
    """HTML with a playable animation of ``clips`` (for ``IPython.display.HTML``)."""
    return animate(clips, titles, **kwargs).to_jshtml(default_mode="loop")


def class_counts_bar(counts: Sequence[int], classes: Sequence[str], ax=None, title: str = ""):
    """Bar chart of videos per class -> Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * len(classes) + 2, 2.6))
    ax.bar(range(len(counts)), counts, color="tab:blue")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("videos")
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax
