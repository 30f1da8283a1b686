"""The mirror explorer: the triplet follows flip_map; the slider drives the view."""

import pytest
import torch

from kdlab.data import hflip
from kdlab.viz.gallery import MirrorExplorer, mirror_triplet


class Toy:
    classes = ["Left", "Right", "Grow"]
    flip_map = [1, 0, 2]
    labels = [0, 1, 2, 0, 1, 2]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.randn(3, 4, 8, 8, generator=g), self.labels[i], i


def test_triplet_follows_the_flip_map():
    ds = Toy()
    v = mirror_triplet(ds, 0)
    assert torch.equal(v["clip"], ds[0][0]) and torch.equal(v["mirrored"], hflip(ds[0][0]))
    assert torch.equal(v["mirrored"], ds[0][0].flip(-1))  # left-right: the last axis
    assert v["mapped"] == 1 and torch.equal(v["partner"], ds[1][0]) and "label -> Right" in v["titles"][1]
    grow = mirror_triplet(ds, 2, occurrence=1)
    assert grow["mapped"] == 2 and torch.equal(grow["clip"], ds[5][0])


def test_bad_class_is_named():
    with pytest.raises(ValueError, match="out of range"):
        mirror_triplet(Toy(), 3)


def test_slider_changes_the_view():
    pytest.importorskip("ipywidgets")
    ex = MirrorExplorer(Toy(), max_frames=4)
    assert ex.view["mapped"] == 1
    ex.slider.value = 2
    assert ex.view["mapped"] == 2 and ex.view["titles"][0] == "Grow"
