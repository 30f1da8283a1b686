"""The KD explorer: soft targets and gradient against independent formulas; the controls drive the view."""

import numpy as np
import pytest
import torch

from kdlab.losses import kd_loss
from kdlab.viz.kd import KDExplorer, kd_view

Z_T = [4.0, 3.2, -1.0, 0.5, -2.0]
Z_S = [0.3, -0.2, 0.1, 0.0, 0.4]


def softmax(z, T):
    e = np.exp(np.asarray(z, dtype=float) / T)
    return e / e.sum()


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0, 15.0])
def test_soft_targets_and_dark_mass_match_a_hand_softmax(T):
    v = kd_view(Z_T, Z_S, T)
    assert np.allclose(v["teacher"], softmax(Z_T, T)) and np.allclose(v["student"], softmax(Z_S, T))
    assert v["dark"] == pytest.approx(1 - softmax(Z_T, T).max())
    p = softmax(Z_T, T)
    assert v["entropy"] == pytest.approx(-(p * np.log(p)).sum())


@pytest.mark.parametrize("T", [0.7, 4.0, 12.0])
def test_gradient_is_autograd_of_kd_loss(T):
    z_s = torch.tensor([Z_S], dtype=torch.float64, requires_grad=True)
    loss = kd_loss(z_s, torch.tensor([Z_T], dtype=torch.float64), T)
    loss.backward()
    v = kd_view(Z_T, Z_S, T, scaled=True)
    assert np.allclose(v["gradient"], z_s.grad[0].numpy()) and v["loss"] == pytest.approx(loss.item())
    plain = kd_view(Z_T, Z_S, T, scaled=False)
    assert np.allclose(plain["gradient"], z_s.grad[0].numpy() / T**2)
    assert plain["loss"] == pytest.approx(loss.item() / T**2)


def test_higher_temperature_reveals_more_dark_knowledge():
    darks = [kd_view(Z_T, Z_S, T)["dark"] for T in (0.5, 1, 2, 4, 8)]
    assert all(a < b for a, b in zip(darks, darks[1:]))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="temperature"):
        kd_view(Z_T, Z_S, 0.0)
    with pytest.raises(ValueError, match="differ"):
        kd_view(Z_T, Z_S[:3], 1.0)
    with pytest.raises(ValueError, match="one video"):
        kd_view(np.zeros((2, 5)), np.zeros((2, 5)), 1.0)


def test_slider_and_checkbox_change_the_view():
    pytest.importorskip("ipywidgets")
    ex = KDExplorer(Z_T, Z_S, list("abcde"), highlight=(0, 1))
    before = ex.view["teacher"].copy()
    ex.temperature.value = 8.0  # the observer redraws
    assert not np.allclose(before, ex.view["teacher"]) and ex.view["temperature"] == pytest.approx(8.0, rel=0.05)
    grad = ex.view["gradient"].copy()
    ex.scaled.value = False
    assert np.allclose(ex.view["gradient"], grad / ex.view["temperature"] ** 2)
