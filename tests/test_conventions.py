"""PyTorch's usual shapes at kdlab's edges: (x, y) datasets, DataLoaders, models without
num_classes, VideoFolder transforms, torchvision-named state dicts."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kdlab.data import VideoFolder
from kdlab.models import build_model
from kdlab.train import Supervised, evaluate, fit

from toydata import MovingBar, tiny_videos


def plain_xy(n: int, seed: int) -> TensorDataset:
    bars = MovingBar(n, seed=seed)
    return TensorDataset(bars.clips, bars.labels)  # items (clip (3, 8, 16, 16), label): no index


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 16 * 16, 2))  # no num_classes attribute


def test_fit_and_evaluate_take_an_xy_dataset_and_a_model_without_num_classes():
    model = linear_model()
    history = fit(model, plain_xy(64, 0), plain_xy(32, 1), epochs=3, batch_size=8, progress=False, device="cpu")
    assert history.last["val/top1"] >= 90.0 and history.last["train/ce"] < history.records[0]["train/ce"]
    metrics = evaluate(model, plain_xy(32, 2))
    assert metrics["top1"] >= 90.0 and len(metrics["confusion"]) == 2 and metrics["n"] == 32


def test_fit_takes_dataloaders():
    model = linear_model()
    train = DataLoader(plain_xy(64, 0), batch_size=8, shuffle=True)
    history = fit(model, train, DataLoader(plain_xy(32, 1), batch_size=16), epochs=3, progress=False, device="cpu")
    assert len(history) == 3 and history.last["val/top1"] >= 90.0
    assert evaluate(model, DataLoader(plain_xy(32, 2), batch_size=5))["n"] == 32


def test_per_sample_targets_without_an_index_say_what_is_missing():
    objective = Supervised(soft_targets=torch.full((64, 2), 0.5))
    with pytest.raises(ValueError, match="must be \\(clip, label, index\\)"):
        fit(linear_model(), plain_xy(64, 0), objective=objective, epochs=1, progress=False, device="cpu")


def test_evaluate_infers_the_classes_of_a_plain_torchvision_model():
    torch.manual_seed(0)
    net = torchvision.models.video.r3d_18(num_classes=3)
    assert not hasattr(net, "num_classes")
    data = TensorDataset(torch.randn(4, 3, 4, 16, 16), torch.tensor([0, 1, 2, 1]))
    metrics = evaluate(net, data, batch_size=2)
    assert metrics["n"] == 4 and len(metrics["confusion"]) == 3 and len(metrics["per_class"]) == 3


@pytest.mark.parametrize("name", ["r3d_18", "r2plus1d_18"])
def test_torchvision_models_keep_torchvision_state_dict_names(name):
    torch.manual_seed(0)
    ours = build_model(name, 5).eval()
    state = ours.state_dict()
    assert any(k.startswith("layer1.0.conv1.") for k in state) and "fc.weight" in state
    assert not any(k.startswith(("stage", "head.")) for k in state)
    theirs = getattr(torchvision.models.video, name)(num_classes=5).eval()
    theirs.load_state_dict(state)  # strict: every key matches
    x = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    back = build_model(name, 5).eval()
    back.load_state_dict(theirs.state_dict())
    old_names = {k.replace("layer", "stage").replace("fc.", "head.fc."): v for k, v in state.items()}
    back.load_state_dict(old_names)  # checkpoints written before (kdlab's names) still load
    assert sorted(back.state_dict()) == sorted(theirs.state_dict())


def test_videofolder_transforms(tmp_path):
    root = tiny_videos(tmp_path, train_per_class=2, test_per_class=1, classes=["MoveLeft", "MoveRight"])
    plain = VideoFolder(root, "train", frames=8, size=32, progress=False)
    shown = VideoFolder(root, "train", frames=8, size=32, progress=False, transform=lambda c: c[:, :4].flip(-1),
                        target_transform=lambda y: y + 10)
    clip, label, i = plain[1]
    t_clip, t_label, t_i = shown[1]
    assert t_clip.shape == (3, 4, 32, 32) and torch.equal(t_clip, clip[:, :4].flip(-1))
    assert t_label == label + 10 and t_i == i == 1
    multi = VideoFolder(root, "train", frames=8, size=32, sampling="multi", clips=3, progress=False,
                        transform=lambda c: c.mean(0, keepdim=True))
    assert multi[0][0].shape == (3, 1, 8, 32, 32)
