"""The pairing explorer: W against a hand row-softmax of R; the slider drives the view."""

import math

import pytest
import torch

from kdlab.viz.pairing import PairingExplorer, pairing_view


def history(epochs=3, tau=0.1):
    g = torch.Generator().manual_seed(0)
    Rs = [torch.rand(4, 4, generator=g, dtype=torch.float64) for _ in range(epochs)]
    Ws = []
    for R in Rs:  # row-softmax by hand
        rows = []
        for i in range(4):
            e = [math.exp(R[i, j].item() / tau) for j in range(4)]
            rows.append([v / sum(e) for v in e])
        Ws.append(torch.tensor(rows, dtype=torch.float64))
    return Rs, Ws


def test_recorded_softmax_pairing_matches_the_rule():
    Rs, Ws = history()
    v = pairing_view(Rs, Ws, 2, tau=0.1)
    assert v["max_diff"] < 1e-6 and v["best"] == Rs[2].argmax(1).tolist()
    off = pairing_view(Rs, [w.flip(1) for w in Ws], 2, tau=0.1)
    assert off["max_diff"] > 0.01  # a W that is not softmax(R / tau) shows


def test_bad_inputs_are_named():
    Rs, Ws = history()
    with pytest.raises(ValueError, match="one of each"):
        pairing_view(Rs, Ws[:2], 0)
    with pytest.raises(IndexError):
        pairing_view(Rs, Ws, 3)


def test_slider_changes_the_view():
    pytest.importorskip("ipywidgets")
    Rs, Ws = history()
    ex = PairingExplorer(Rs, Ws, ["s1", "s2", "s3", "s4"], ["t1", "t2", "t3", "t4"], tau=0.1)
    first = ex.view["R"].clone()
    ex.slider.value = 2
    assert torch.equal(ex.view["R"], Rs[2]) and not torch.equal(first, ex.view["R"])
    assert ex.axes[0].get_title() == "R at the start of epoch 3"
