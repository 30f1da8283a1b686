"""The teacher cache: fixed views, stale-output protection, agreement with the teacher, use in fit."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kdlab.data import VideoFolder, generate_dataset
from kdlab.distill import CachedViews, SubstageDistillation, TeacherCache, make_objective
from kdlab.weak_splits import MaskedLabels
from kdlab.hooks import SubstageTap
from kdlab.models import build_model
from kdlab.train import fit

CLASSES = ["MoveLeft", "MoveRight", "Grow"]
CLIP = (3, 8, 32, 32)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("cache") / "videos", classes=CLASSES, train_per_class=4,
                            test_per_class=1, frames=12, size=32, progress=False)


def folder(root, **kw):
    options = dict(frames=8, size=32, sampling="random", flip=True, cache=True, progress=False)
    return VideoFolder(root, "train", **{**options, **kw})


def tiny_teacher(seed=0):
    torch.manual_seed(seed)
    return build_model("teacher", len(CLASSES), widths=(12, 16, 24, 32), stem_width=8)


def tiny_student(seed=1):
    torch.manual_seed(seed)
    return build_model("student", len(CLASSES), widths=(4, 8, 8, 12), stem_width=4)


def test_views_are_fixed_varied_and_leave_the_global_rng_alone(root):
    views = CachedViews(folder(root), views=3, seed=0)
    state = torch.get_rng_state()
    first = [views.view(i, v)[0] for i in range(2) for v in range(3)]
    assert torch.equal(torch.get_rng_state(), state)
    again = [views.view(i, v)[0] for i in range(2) for v in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])  # random windows / flips differ between views
    torch.manual_seed(0)
    picked = [views[5] for _ in range(12)]
    assert {len(item) for item in picked} == {4} and {item[2] for item in picked} == {5}
    assert {item[3] for item in picked} == {0, 1, 2}  # every view gets drawn
    for clip, label, _, v in picked:
        ref_clip, ref_label, _ = views.view(5, v)
        assert torch.equal(clip, ref_clip) and label == ref_label
    with pytest.raises(ValueError, match="wrap the base dataset"):
        CachedViews(torch.utils.data.Subset(folder(root), [3, 4]), views=2).view(0, 0)


def test_cached_outputs_agree_with_the_teacher(root, tmp_path):
    teacher = tiny_teacher()
    views = CachedViews(folder(root), views=2)
    cache = TeacherCache(teacher, views, tmp_path, progress=False)
    assert cache.built_now
    stored = np.load(cache.path / "stage1.npy", mmap_mode="r")
    assert stored.dtype == np.float16 and stored.shape[:2] == (len(views), 2)
    index, view = torch.tensor([7, 0, 11, 3]), torch.tensor([1, 0, 0, 1])
    logits, feats = cache.lookup(index, view)
    clips = torch.stack([views.view(int(i), int(v))[0] for i, v in zip(index, view)])
    teacher.eval()
    with torch.no_grad(), SubstageTap(teacher, cache.stages) as tap:
        ref_logits = teacher(clips)
    for got, ref in [(logits, ref_logits), *((feats[n], tap[n]) for n in teacher.stage_names)]:
        assert got.dtype == torch.float32 and got.shape == ref.shape
        scale = ref.abs().max()
        assert (got - ref).abs().max() <= 2e-3 * scale + 1e-3  # float16 rounding, not another clip
    with pytest.raises(KeyError, match="no entry for videos \\[99\\]"):
        cache.lookup(torch.tensor([99]), torch.tensor([0]))


def test_a_changed_teacher_augmentation_sampling_or_view_recipe_gets_a_recompute(root, tmp_path):
    teacher = tiny_teacher()
    base = TeacherCache(teacher, CachedViews(folder(root), views=2), tmp_path, progress=False)
    same = TeacherCache(teacher, CachedViews(folder(root), views=2), tmp_path, progress=False)
    assert base.built_now and not same.built_now and same.path == base.path

    changed_teacher = tiny_teacher()
    with torch.no_grad():
        changed_teacher.stage3[0].bn1.running_mean += 0.01  # a buffer counts, not only weights
    variants = {
        "teacher": (changed_teacher, CachedViews(folder(root), views=2)),
        "augmentation": (teacher, CachedViews(folder(root, flip=False), views=2)),
        "sampling": (teacher, CachedViews(folder(root, sampling="uniform"), views=2)),
        "frames": (teacher, CachedViews(folder(root, frames=6), views=2)),
        "views": (teacher, CachedViews(folder(root), views=3)),
        "view seed": (teacher, CachedViews(folder(root), views=2, seed=1)),
    }
    paths = {base.path}
    for what, (t, views) in variants.items():
        cache = TeacherCache(t, views, tmp_path, progress=False)
        assert cache.built_now, what
        paths.add(cache.path)
    assert len(paths) == len(variants) + 1
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == sorted(p.name for p in paths)  # nothing partial


def test_an_interrupted_build_leaves_nothing_behind(root, tmp_path):
    teacher = tiny_teacher()
    views = CachedViews(folder(root), views=2)
    calls = {"n": 0}

    def interrupt(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    handle = teacher.stage2.register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt):
        TeacherCache(teacher, views, tmp_path, batch_size=8, progress=False)
    handle.remove()
    assert list(Path(tmp_path).iterdir()) == []
    assert TeacherCache(teacher, views, tmp_path, batch_size=8, progress=False).built_now


def test_the_objective_reads_the_cache_instead_of_running_the_teacher(root, tmp_path):
    teacher, student = tiny_teacher(), tiny_student()
    views = CachedViews(folder(root), views=2)
    cache = TeacherCache(teacher, views, tmp_path, progress=False)
    plain = SubstageDistillation(teacher, student, schedule="joint", pairing="identity")
    cached = SubstageDistillation(teacher, student, schedule="joint", pairing="identity", teacher_cache=cache)
    cached.load_state_dict(plain.state_dict())  # the same adapters
    batch = next(iter(DataLoader(views, batch_size=6)))
    student.eval()  # the same student outputs in both calls
    expected, _ = plain(student, batch)

    def no_teacher(*args):
        raise AssertionError("the teacher ran although its outputs are cached")

    handle = teacher.register_forward_pre_hook(no_teacher)
    try:
        got, _ = cached(student, batch)
    finally:
        handle.remove()
    assert set(got) == set(expected)
    for name in expected:
        assert torch.allclose(got[name], expected[name], rtol=2e-2, atol=2e-3), name
    with pytest.raises(ValueError, match="CachedViews"):
        cached(student, batch[:3])


def test_a_stale_cache_is_refused(root, tmp_path):
    teacher, student = tiny_teacher(), tiny_student()
    cache = TeacherCache(teacher, CachedViews(folder(root), views=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="another teacher"):
        make_objective("kd", tiny_teacher(seed=5), student, teacher_cache=cache)
    obj = make_objective("kd", teacher, student, teacher_cache=cache)
    unflipped = CachedViews(folder(root, flip=False), views=2)
    with pytest.raises(ValueError, match="differs from the data the teacher cache"):
        obj.on_epoch_start(epoch=0, model=student, loader=DataLoader(unflipped))
    with pytest.raises(ValueError, match="no CachedViews"):
        obj.on_epoch_start(epoch=0, model=student, loader=DataLoader(folder(root)))


def test_a_cached_distillation_epoch_through_fit(root, tmp_path):
    teacher, student = tiny_teacher(), tiny_student()
    train = folder(root)
    views = CachedViews(train, views=2)
    labelled = [0, 5, 10]
    cache = TeacherCache(teacher, views, tmp_path, progress=False)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    obj = SubstageDistillation(teacher, student, schedule="joint", teacher_cache=cache)
    history = fit(student, MaskedLabels(views, range(len(views)), labelled), objective=obj, epochs=2, batch_size=4,
                  progress=False)
    assert {"train/label", "train/kd", "train/feat/stage4"} <= set(history.last)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
