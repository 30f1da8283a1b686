"""SubstageTap: captured shapes, hook clean-up, wrapper names, gradients."""

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torchvision.models.video import r3d_18

from kdlab.hooks import SubstageTap, capture, resolve_modules


class TinyStaged(nn.Module):
    """A kdlab-shaped model: stem, stage1..3, head, stage_names; built here so the test does not
    depend on kdlab.models."""

    def __init__(self, widths=(4, 6, 8)):
        super().__init__()
        self.stem = nn.Conv3d(3, widths[0], 3, padding=1)
        c = widths[0]
        self.stage_names = []
        for i, w in enumerate(widths, start=1):
            setattr(self, f"stage{i}", nn.Sequential(nn.Conv3d(c, w, 3, stride=(1, 2, 2), padding=1), nn.ReLU()))
            self.stage_names.append(f"stage{i}")
            c = w
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(c, 5))

    def forward(self, x):
        x = self.stem(x)
        for n in self.stage_names:
            x = getattr(self, n)(x)
        return self.head(x)


def _all_hooks(model):
    return [h for m in model.modules() for h in m._forward_hooks.values()]


def _conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def test_default_names_capture_stage_outputs_in_order():
    model = TinyStaged()
    x = torch.randn(2, 3, 4, 16, 16)
    with SubstageTap(model) as tap:
        out = model(x)
        assert len(_all_hooks(model)) == 3
    assert list(tap.features) == ["stage1", "stage2", "stage3"]
    # Recompute each stage by hand and compare with what the tap stored.
    h = model.stem(x)
    for n in model.stage_names:
        h = getattr(model, n)(h)
        assert torch.equal(tap[n], h)
    assert torch.equal(out, model.head(h))
    assert tap.shapes() == {"stage1": (2, 4, 4, 8, 8), "stage2": (2, 6, 4, 4, 4), "stage3": (2, 8, 4, 2, 2)}


def test_hooks_removed_after_exit_and_after_exception():
    model = TinyStaged()
    with SubstageTap(model, ["stem", "stage2", "head.2"]) as tap:
        model(torch.randn(1, 3, 2, 8, 8))
    assert _all_hooks(model) == [] and not tap.attached

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom in stage3")

    broken = TinyStaged()
    broken.stage3 = Boom()
    with pytest.raises(RuntimeError, match="boom in stage3"):
        with SubstageTap(broken) as tap_broken:
            broken(torch.randn(1, 3, 2, 8, 8))  # raises after stage1 and stage2 were captured
    assert list(tap_broken.features) == ["stage1", "stage2"]
    assert _all_hooks(broken) == []
    with pytest.raises(RuntimeError, match="channels"):
        with SubstageTap(model):
            model(torch.randn(1, 5, 2, 8, 8))  # 5 channels: the stem's conv raises
    assert _all_hooks(model) == []
    for m in model.modules():
        assert len(m._forward_hooks) == 0

    # Nothing captured after exit: a later forward leaves the old features untouched.
    before = tap["stage2"].clone()
    model(torch.randn(1, 3, 2, 8, 8))
    assert torch.equal(tap["stage2"], before)


def test_unknown_name_lists_valid_ones():
    model = TinyStaged()
    with pytest.raises(KeyError) as err:
        SubstageTap(model, ["stage1", "stage9"])
    msg = str(err.value)
    assert "stage9" in msg
    for name, _ in model.named_modules():
        if name:
            assert name in msg
    assert _all_hooks(model) == []  # a failed construction registers nothing


def test_model_without_stage_names_needs_explicit_names():
    net = nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU())
    with pytest.raises(ValueError, match="stage_names"):
        SubstageTap(net)
    with SubstageTap(net, ["0"]) as tap:
        net(torch.randn(1, 3, 2, 4, 4))
    assert tap["0"].shape == (1, 4, 2, 4, 4)


def test_r3d_18_shapes_follow_the_architecture():
    net = r3d_18(weights=None).eval()
    B, T, H, W = 1, 8, 32, 32
    names = ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    with torch.no_grad(), SubstageTap(net, names) as tap:
        net(torch.randn(B, 3, T, H, W))
    # stem: conv (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3), 64 channels.
    t, h, w = _conv_out(T, 3, 1, 1), _conv_out(H, 7, 2, 3), _conv_out(W, 7, 2, 3)
    expected = {"stem": (B, 64, t, h, w), "layer1": (B, 64, t, h, w)}  # layer1 keeps the size
    # layer2..4: first conv 3x3x3 with stride 2 and padding 1 on T, H and W; channels double.
    c = 64
    for name in ["layer2", "layer3", "layer4"]:
        c, t, h, w = 2 * c, _conv_out(t, 3, 2, 1), _conv_out(h, 3, 2, 1), _conv_out(w, 3, 2, 1)
        expected[name] = (B, c, t, h, w)
    expected["fc"] = (B, 400)  # Kinetics-400 classes by default
    assert tap.shapes() == expected
    assert expected["layer4"] == (1, 512, 1, 2, 2)  # spelled out once, as a sanity check
    assert _all_hooks(net) == []


def test_features_keep_grad_unless_detached():
    model = TinyStaged()
    x = torch.randn(2, 3, 2, 8, 8)
    with SubstageTap(model) as tap:
        model(x)
    assert tap["stage2"].requires_grad
    # A loss on a captured stage reaches the parameters before it and not those after it.
    tap["stage2"].pow(2).mean().backward()
    assert model.stage1[0].weight.grad is not None and model.stage1[0].weight.grad.abs().sum() > 0
    assert model.stage3[0].weight.grad is None

    with SubstageTap(model, detach=True) as tap:
        model(x)
    assert not any(f.requires_grad for f in tap.features.values())


def test_tap_is_reused_across_steps_and_overwrites():
    model = TinyStaged()
    with SubstageTap(model, ["stage1"], detach=True) as tap:
        model(torch.zeros(1, 3, 2, 8, 8))
        first = tap["stage1"]
        x = torch.randn(1, 3, 2, 8, 8)
        model(x)
        assert not torch.equal(tap["stage1"], first)
        assert torch.equal(tap["stage1"], model.stage1(model.stem(x)))
    with pytest.raises(RuntimeError, match="already attached"):
        tap.attach()
        tap.attach()
    tap.remove()
    assert _all_hooks(model) == []


def test_capture_helper_returns_output_and_features():
    model = TinyStaged()
    x = torch.randn(1, 3, 2, 8, 8)
    out, feats = capture(model, x, detach=True)
    assert torch.allclose(out, model(x))
    assert list(feats) == model.stage_names
    assert _all_hooks(model) == []


def test_capture_moves_the_clips_to_the_models_device():
    # The meta device stands in for a GPU here: a model there and CPU clips, as when a notebook
    # captures from a model that fit left on CUDA. Without the move the forward fails.
    model = TinyStaged().to("meta")
    out, feats = capture(model, torch.randn(2, 3, 2, 8, 8), detach=True)
    assert out.device.type == "meta" and out.shape == (2, 5)
    assert all(f.device.type == "meta" for f in feats.values())


def test_ddp_wrapper_names_with_or_without_prefix(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model = TinyStaged()
        ddp = nn.parallel.DistributedDataParallel(model)
        x = torch.randn(2, 3, 2, 8, 8)
        ref = model.stage2(model.stage1(model.stem(x)))

        assert list(resolve_modules(ddp, ["module.stage2", "stage2"])) == ["stage2"]
        for names in (None, ["stage1", "stage2"], ["module.stage1", "module.stage2"]):
            with SubstageTap(ddp, names) as tap:
                ddp(x).sum().backward()  # a real DDP training step, gradients all-reduced
            assert list(tap.features)[:2] == ["stage1", "stage2"]
            assert torch.allclose(tap["stage2"], ref) and torch.allclose(tap["module.stage2"], ref)
            assert _all_hooks(ddp) == []
        with pytest.raises(KeyError, match="module.stage7"):
            SubstageTap(ddp, ["module.stage7"])
    finally:
        dist.destroy_process_group()
