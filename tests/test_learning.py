"""Learning claims on real generated video files, with fixed seeds: the models learn motion."""

import pytest
import torch

from kdlab.data import VideoFolder, generate_dataset
from kdlab.models import build_model
from kdlab.train import evaluate, fit

# Two mirrored pairs: a single frame cannot tell any class from its partner.
CLASSES = ["MoveLeft", "MoveRight", "RotateClockwise", "RotateCounterClockwise"]


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("learn") / "sim", classes=CLASSES, train_per_class=30,
                            test_per_class=12, difficulty=0.6, progress=False)
    clip = dict(frames=8, size=32, cache=True, progress=False)
    return (VideoFolder(root, "train", sampling="random", flip=True, **clip),
            VideoFolder(root, "test", **clip))


def train_and_test(name, train, test, epochs, seed=0):
    torch.manual_seed(seed)
    model = build_model(name, train.num_classes)
    fit(model, train, epochs=epochs, batch_size=16, lr=3e-3, seed=seed, progress=False)
    return evaluate(model, test)["top1"]


@pytest.mark.slow
def test_teacher_beats_chance_by_a_wide_margin(motion):
    train, test = motion
    acc = train_and_test("teacher", train, test, epochs=8)
    assert acc >= 25 + 35, f"teacher test top-1 {acc:.1f}% (chance 25%)"


@pytest.mark.slow
def test_3d_student_beats_the_single_frame_baseline(motion):
    train, test = motion
    student = train_and_test("student", train, test, epochs=12)
    frame2d = train_and_test("frame2d", train, test, epochs=12)
    assert frame2d < 25 + 20, f"single-frame model at {frame2d:.1f}% should be near chance on mirrored motions"
    assert student >= frame2d + 25, f"3D student {student:.1f}% vs single-frame {frame2d:.1f}%"
