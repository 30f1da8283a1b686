"""The feature-distribution inspector: views against independent formulas; controls drive the plot."""

import numpy as np
import pytest
import torch

from kdlab.models import build_model
from kdlab.viz.inspector import FeatureInspector, distribution_view, match_shape


def feats(seed, shape=(3, 4, 2, 3, 3)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_softmax_view_matches_a_hand_softmax():
    f_s, f_t = feats(0), feats(1)
    d = distribution_view(f_s, f_t, channel=2, view="softmax", temperature=2.0, clip=1)
    t = np.exp(f_t[1, 2].numpy().ravel() / 2.0)
    t /= t.sum()
    s = np.exp(f_s[1, 2].numpy().ravel() / 2.0)
    s /= s.sum()
    order = np.argsort(-t)
    assert np.allclose(d["teacher"], t[order], atol=1e-6) and np.allclose(d["student"], s[order], atol=1e-6)
    assert d["loss_name"] == "fd_loss(kind='channel_softmax')" and d["loss"] > 0


def test_gaussian_view_uses_channel_moments_and_histogram_integrates_to_one():
    f_s, f_t = feats(0) * 2 + 1, feats(1)
    d = distribution_view(f_s, f_t, channel=0, view="gaussian")
    peak = d["x"][np.argmax(d["student"])]
    assert peak == pytest.approx(f_s[:, 0].mean().item(), abs=(d["x"][1] - d["x"][0]) * 1.01)
    h = distribution_view(f_s, f_t, channel=0, view="histogram")
    width = h["x"][1] - h["x"][0]
    assert (h["teacher"] * width).sum() == pytest.approx(1.0) and (h["student"] * width).sum() == pytest.approx(1.0)
    same = distribution_view(f_t, f_t, channel=0, view="gaussian")
    assert same["loss"] == pytest.approx(0.0, abs=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="valid: histogram"):
        distribution_view(feats(0), feats(1), 0, view="violin")
    with pytest.raises(ValueError, match="out of range"):
        distribution_view(feats(0), feats(1), 9)
    with pytest.raises(ValueError, match="match them first"):
        distribution_view(feats(0), feats(1, (3, 5, 2, 3, 3)), 0)


def test_match_shape_resamples_and_maps_channels():
    f_s, f_t = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 5, 2, 4, 4)
    assert match_shape(f_s, f_t).shape == f_t.shape


def test_driving_the_controls_changes_the_output():
    torch.manual_seed(0)
    student, teacher = build_model("student", 4), build_model("teacher", 4)
    clips = torch.randn(2, 3, 8, 32, 32)
    early = {k: v.clone() for k, v in student.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.mul_(1.5)
    inspector = FeatureInspector(student, teacher, clips, checkpoints={"start": early,
                                                                       "end": student.state_dict()})
    first = inspector.data
    inspector.view.value = "softmax"
    assert inspector.data["loss_name"] != first["loss_name"]
    loss_t1 = inspector.data["loss"]
    inspector.temperature.value = 5.0
    assert inspector.data["loss"] != pytest.approx(loss_t1)
    before = inspector.data["student"].copy()
    inspector.channel.value = 3
    assert not np.allclose(inspector.data["student"], before)
    inspector.pair.value = ("stage3", "stage3")
    assert inspector.channel.max == teacher.stage3[0].conv2.out_channels - 1
    loss_end = inspector.data["loss"]
    inspector.checkpoint.value = "start"
    assert inspector.data["loss"] != pytest.approx(loss_end)
