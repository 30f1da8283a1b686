"""The mirror explorer: a class's clip, the same clip mirrored, and a real clip of its mirror class.

:func:`mirror_triplet` picks the clips (tested without a browser); :class:`MirrorExplorer` wires a
class slider to a three-row frame strip. It shows notebook 00's flip trap for every class: a
mirrored clip of a class with a mirror partner moves like that partner, and the label must follow
``flip_map``; for a class that mirrors onto itself the label stays.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from kdlab.data import hflip

from ._widget import FigureWidget
from .video import as_frames

__all__ = ["mirror_triplet", "MirrorExplorer"]


def mirror_triplet(dataset, label: int, occurrence: int = 0) -> dict:
    """Clips (3, T, H, W) for class ``label`` of ``dataset`` (items ``(clip, label, ...)``, with
    ``.labels``, ``.classes`` and ``.flip_map``): ``clip`` (its ``occurrence``-th video), ``mirrored``
    (that clip flipped left-right), ``partner`` (the first video of class ``flip_map[label]``) and
    ``titles`` for the three rows; ``mapped`` is ``flip_map[label]``."""
    labels = list(dataset.labels)
    if not 0 <= label < len(dataset.classes):
        raise ValueError(f"label {label} out of range for {len(dataset.classes)} classes")
    rows = [i for i, y in enumerate(labels) if y == label]
    if not rows:
        raise ValueError(f"no video of class {dataset.classes[label]!r} in the dataset")
    clip = dataset[rows[occurrence % len(rows)]][0]
    mapped = int(dataset.flip_map[label])
    partner = dataset[labels.index(mapped)][0] if mapped in labels else None
    name, other = dataset.classes[label], dataset.classes[mapped] if mapped >= 0 else "(no class)"
    return {"clip": clip, "mirrored": hflip(clip), "partner": partner, "mapped": mapped,
            "titles": [name, f"{name}, mirrored: label -> {other}", f"a real {other}"]}


class MirrorExplorer(FigureWidget):
    """A class slider over :func:`mirror_triplet`: three rows of frames, redrawn as it moves.

    ``.widget`` is the ipywidgets box to display, ``.slider`` its control, ``.view`` the current
    triplet; ``update()`` redraws.
    """

    def __init__(self, dataset, max_frames: int = 8):
        import ipywidgets as w

        self.dataset, self.max_frames = dataset, max_frames
        self.slider = w.SelectionSlider(options=[(c, k) for k, c in enumerate(dataset.classes)], value=0,
                                        description="class", continuous_update=False)
        self._wire(self.slider, (self.slider,), plt.figure(figsize=(1.2 * max_frames + 2.5, 4.2)))
        self.view: dict = {}
        self.update()

    def update(self) -> dict:
        """Draw the triplet of the slider's class."""
        v = self.view = mirror_triplet(self.dataset, self.slider.value)
        fig = self.figure
        fig.clear()
        clips = [v["clip"], v["mirrored"], v["partner"]]
        axes = fig.subplots(3, self.max_frames, squeeze=False)
        for r, (clip, title) in enumerate(zip(clips, v["titles"])):
            frames = as_frames(clip) if clip is not None else None
            for c in range(self.max_frames):
                ax = axes[r, c]
                ax.set_xticks([]), ax.set_yticks([])
                if frames is not None:
                    t = np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int)[c]
                    ax.imshow(frames[t])
            axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
        fig.subplots_adjust(left=0.25, right=0.99, wspace=0.05, hspace=0.1)
        self._show()
        return v
