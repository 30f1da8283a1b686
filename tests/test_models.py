"""Models: stage structure, shapes, FLOP counting against a hand count, torchvision wrappers."""

import pytest
import torch
from torch import nn

from kdlab.models import (
    SPECS, VideoNet, VideoNetSpec, build_model, count_flops, count_parameters, efficiency, model_from_arch,
)


@pytest.mark.parametrize("name", ["teacher", "assistant", "student", "frame2d"])
def test_family_has_named_stages_and_logits(name):
    model = build_model(name, num_classes=7)
    assert [n for n, _ in model.named_children()] == ["stem", *model.stage_names, "head"]
    assert model.stage_names == ["stage1", "stage2", "stage3", "stage4"]
    out = model(torch.randn(2, 3, 8, 32, 32))
    assert out.shape == (2, 7)


def test_stage_shapes_follow_strides():
    spec = SPECS["student"]
    model = build_model("student", 5)
    x = model.stem(torch.randn(1, 3, 8, 32, 32))
    t, h = 8, 32
    for name, width, st, ss in zip(model.stage_names, spec.widths, spec.temporal_strides, spec.spatial_strides):
        x = getattr(model, name)(x)
        t, h = t // st, h // ss
        assert tuple(x.shape) == (1, width, t, h, h), name


def test_default_student_needs_10x_fewer_flops_than_teacher():
    shape = (1, 3, 8, 32, 32)
    ratio = count_flops(build_model("teacher", 10), shape) / count_flops(build_model("student", 10), shape)
    assert ratio >= 10


def test_flops_of_a_known_conv_stack_match_a_hand_count():
    net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1, bias=False), nn.Conv3d(4, 6, 1, bias=False),
                        nn.Flatten(), nn.Linear(6 * 2 * 5 * 5, 3, bias=False))
    b, t, h, w = 2, 2, 5, 5
    positions = t * h * w
    hand = 2 * b * (positions * 4 * 3 * 27 + positions * 6 * 4 + 6 * positions * 3)
    assert count_flops(net, (b, 3, t, h, w)) == hand


def test_frame_baseline_cannot_see_time():
    """The 2D baseline gives the same logits whatever the frame order (it pools frames)."""
    model = build_model("frame2d", 4).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    reversed_x = x.flip(2)
    assert torch.allclose(model(x), model(reversed_x), atol=1e-5)
    model3d = build_model("student", 4).eval()
    assert not torch.allclose(model3d(x), model3d(reversed_x), atol=1e-5)


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_torchvision_models_get_kdlab_stage_names(name):
    model = build_model(name, 6)
    assert model.stage_names == ["stage1", "stage2", "stage3", "stage4"]
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 6)


def test_torchvision_weights_load_from_a_local_file(tmp_path):
    import torchvision.models.video as tvv

    source = tvv.r3d_18(weights=None, num_classes=6)
    torch.save(source.state_dict(), tmp_path / "r3d.pt")
    model = build_model("r3d_18", 6, weights_path=tmp_path / "r3d.pt")
    assert torch.equal(model.stage1[0].conv1[0].weight, source.layer1[0].conv1[0].weight)
    assert torch.equal(model.head.fc.weight, source.fc.weight)
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not match r3d_18"):
        build_model("r3d_18", 6, weights_path=tmp_path / "bad.pt")


def test_arch_round_trip_and_errors():
    model = build_model("student", 3, widths=(4, 8, 8, 16))
    clone = model_from_arch(model.arch)
    clone.load_state_dict(model.state_dict())
    assert count_parameters(clone) == count_parameters(model)
    with pytest.raises(ValueError, match="valid: teacher"):
        build_model("resnet9000", 3)
    with pytest.raises(ValueError, match="depths has 2 entries"):
        VideoNetSpec(widths=(4, 8, 16), depths=(1, 1))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.randn(3, 8, 32, 32))


def test_efficiency_report_fields():
    e = efficiency(VideoNet(SPECS["student"], 4), (1, 3, 8, 32, 32), repeats=3, warmup=1)
    assert e["params"] == count_parameters(build_model("student", 4))
    assert e["flops"] > 0 and e["latency_ms"] > 0 and e["memory_mb"] > 0
