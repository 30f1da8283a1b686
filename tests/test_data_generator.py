"""The simulated dataset generator: layout, determinism, idempotence, atomicity, 'one frame says little'."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kdlab import environment
from kdlab.data import MOTION_CLASSES, default_dataset, flip_map_for, generate_dataset, read_frames
from kdlab.data import synthetic
from kdlab.data.render import MOTIONS, render_video

SMALL = dict(classes=["MoveLeft", "MoveRight", "Grow"], train_per_class=4, test_per_class=2, frames=8, size=32,
             progress=False)


def all_files(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def decoded(root):
    return {p.relative_to(root).as_posix(): read_frames(p) for p in Path(root).rglob("*.avi")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("gen") / "tiny", **SMALL)


def test_ucf101_layout(tiny):
    classes = SMALL["classes"]
    assert (tiny / "classInd.txt").read_text().split("\n")[:-1] == [f"{i + 1} {c}" for i, c in enumerate(classes)]
    train = [line.split() for line in (tiny / "trainlist01.txt").read_text().splitlines()]
    test = [line.split() for line in (tiny / "testlist01.txt").read_text().splitlines()]
    assert len(train) == 3 * 4 and len(test) == 3 * 2
    assert all(len(t) == 2 and len(s) == 1 for t, s in zip(train, test))
    name = re.compile(r"^(\w+)/v_\1_g\d\d_c\d\d\.avi$")
    for rel, label in train:
        m = name.match(rel)
        assert m and classes[int(label) - 1] == m.group(1) and (tiny / rel).is_file()
    for (rel,) in test:
        assert name.match(rel) and (tiny / rel).is_file()
    assert not {r for r, _ in train} & {r for (r,) in test}
    # Train and test come from different "actors" (groups), as in UCF101.
    groups = lambda rels: {re.search(r"_g(\d+)_", r).group(1) for r in rels}
    assert not groups(r for r, _ in train) & groups(r for (r,) in test)
    f = read_frames(tiny / train[0][0])
    assert f.shape == (8, 32, 32, 3) and f.dtype == np.uint8


def test_meta_and_flip_map(tiny):
    meta = json.loads((tiny / "kdlab.json").read_text())
    assert meta["classes"] == SMALL["classes"] and meta["args"]["frames"] == 8
    assert meta["flip_map"] == [1, 0, 2]
    full = flip_map_for(MOTION_CLASSES)
    assert [full[full[i]] for i in range(len(full))] == list(range(len(full)))  # an involution
    assert [MOTION_CLASSES[j] for j in full][:2] == ["MoveRight", "MoveLeft"]
    for c, j in zip(MOTION_CLASSES, full):
        mirrored = MOTION_CLASSES[j]
        if "Left" in c or "Right" in c:
            assert mirrored == c.replace("Left", "#").replace("Right", "Left").replace("#", "Right")
        elif "Clockwise" in c:
            assert mirrored != c and mirrored.startswith("Rotate")
        else:
            assert mirrored == c
    assert flip_map_for(["MoveLeft", "MoveUp"]) == [-1, 1]


def test_same_seed_same_frames_other_seed_differs(tmp_path, tiny):
    again = generate_dataset(tmp_path / "again", **SMALL)
    a, b = decoded(tiny), decoded(again)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other = decoded(generate_dataset(tmp_path / "other", **{**SMALL, "seed": 1}))
    assert all(not np.array_equal(a[k], other[k]) for k in a)


def test_test_set_does_not_depend_on_train_size(tmp_path, tiny):
    bigger = generate_dataset(tmp_path / "bigger", **{**SMALL, "train_per_class": 5})
    small_test = (tiny / "testlist01.txt").read_text().split()
    big_test = (bigger / "testlist01.txt").read_text().split()
    # Same videos, only named with other group numbers.
    for s, b in zip(small_test, big_test):
        assert np.array_equal(read_frames(tiny / s), read_frames(bigger / b))


def test_render_is_deterministic_and_in_range():
    for motion in MOTIONS:
        v1 = render_video(motion, np.random.default_rng(3), frames=6, size=32)
        v2 = render_video(motion, np.random.default_rng(3), frames=6, size=32)
        assert v1.shape == (6, 32, 32, 3) and v1.dtype == np.uint8 and np.array_equal(v1, v2)
    with pytest.raises(ValueError, match="valid"):
        render_video("Jump", np.random.default_rng(0))


def test_idempotent_second_call_writes_nothing(tiny):
    before = {p: p.stat().st_mtime_ns for p in all_files(tiny)}
    assert generate_dataset(tiny, **SMALL) == tiny
    assert {p: p.stat().st_mtime_ns for p in all_files(tiny)} == before


def test_missing_marker_means_regenerate(tmp_path):
    root = generate_dataset(tmp_path / "d", **SMALL)
    first = decoded(root)
    (root / synthetic.MARKER).unlink()
    video = next(root.rglob("*.avi"))
    video.write_bytes(b"half")  # what an interrupted writer might leave
    generate_dataset(root, **SMALL)
    assert (root / synthetic.MARKER).is_file()
    again = decoded(root)
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_exception_mid_way_leaves_nothing_and_next_call_completes(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synthetic._write_video

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # like Ctrl-C during generation
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "_write_video", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "d", **SMALL)
    assert list(tmp_path.iterdir()) == []  # no dataset, no partial folder
    monkeypatch.setattr(synthetic, "_write_video", real)
    root = generate_dataset(tmp_path / "d", **SMALL)
    assert synthetic.is_complete(root) and len(list(root.rglob("*.avi"))) == 18


@pytest.mark.slow
def test_killed_generation_is_redone(tmp_path):
    root = tmp_path / "killed"
    code = ("from kdlab.data import generate_dataset; "
            f"generate_dataset({str(root)!r}, train_per_class=400, test_per_class=0, frames=8, size=32, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        partial = []
        while time.time() < deadline and not partial:
            partial = [p for p in tmp_path.glob(".killed.partial-*") if len(list(p.rglob("*.avi"))) >= 3]
            time.sleep(0.05)
        assert partial, "the generator never started writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not root.exists()  # never visible half-written
    generate_dataset(root, **SMALL)
    assert synthetic.is_complete(root) and list(tmp_path.glob(".killed.partial-*")) == []


def test_other_arguments_on_existing_dataset(tmp_path):
    root = generate_dataset(tmp_path / "d", **SMALL)
    with pytest.raises(FileExistsError, match="difficulty"):
        generate_dataset(root, **{**SMALL, "difficulty": 0.5})
    generate_dataset(root, **{**SMALL, "difficulty": 0.5}, overwrite=True)
    assert json.loads((root / "kdlab.json").read_text())["args"]["difficulty"] == 0.5
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a kdlab dataset"):
        generate_dataset(foreign, **SMALL)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_bad_arguments_name_the_options(tmp_path):
    with pytest.raises(ValueError, match="MoveLeft"):
        generate_dataset(tmp_path / "x", classes=["Jump"], progress=False)
    with pytest.raises(ValueError, match="source"):
        generate_dataset(tmp_path / "x", domain="mars", progress=False)


def test_mp4_and_source_domain(tmp_path):
    root = generate_dataset(tmp_path / "src", **{**SMALL, "domain": "source", "ext": ".mp4"})
    videos = list(root.rglob("*.mp4"))
    assert len(videos) == 18 and read_frames(videos[0]).shape == (8, 32, 32, 3)
    # Same seeds, other domain: other videos.
    target = render_video("MoveLeft", np.random.default_rng(0), frames=8, size=32)
    source = render_video("MoveLeft", np.random.default_rng(0), frames=8, size=32, domain="source")
    assert np.abs(target.astype(int) - source.astype(int)).mean() > 10


def test_default_dataset_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path))
    monkeypatch.setenv("KDLAB_QUICK", "1")
    small = dict(classes=["MoveUp", "Shrink"], train_per_class=2, test_per_class=1, frames=4, size=16)
    root = default_dataset(progress=False, **small)
    assert root.parent == tmp_path and root.name.startswith("simmotion-quick-")
    assert default_dataset(progress=False, **small) == root
    src = default_dataset(domain="source", progress=False, **small)
    assert src.name.startswith("simmotion-source-quick-") and src != root
    with pytest.raises(ValueError, match="simmotion"):
        default_dataset("ucf", progress=False)
    assert environment.pick(synthetic.DEFAULTS, synthetic.QUICK_DEFAULTS) is synthetic.QUICK_DEFAULTS


def _object_x(frames):
    """x centroid of the strongly saturated pixels (the main object) per frame: (T,)."""
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames])
    w = ((hsv[..., 1] > 140) & (hsv[..., 2] > 150)).astype(float)
    xs = np.arange(frames.shape[2])[None, None, :]
    return (w * xs).sum(axis=(1, 2)) / np.maximum(w.sum(axis=(1, 2)), 1)


def test_one_frame_says_little_the_motion_says_it_all():
    """Single frames of MoveLeft and MoveRight share their statistics; their motion does not."""
    stats = {}
    for motion in ("MoveLeft", "MoveRight"):
        frame_feats, shifts = [], []
        for i in range(40):
            v = render_video(motion, np.random.default_rng([5, i, len(motion)]), frames=8, size=32)
            x = _object_x(v)
            frame_feats.append([v.mean(), v.std(), x.mean()])  # what one frame shows, averaged
            shifts.append(x[-1] - x[0])  # what the motion shows
        stats[motion] = (np.array(frame_feats), np.array(shifts))
    (fl, sl), (fr, sr) = stats["MoveLeft"], stats["MoveRight"]
    spread = np.sqrt((fl.var(axis=0) + fr.var(axis=0)) / 2)
    # Per-class means of single-frame features differ by well under one within-class spread...
    assert np.all(np.abs(fl.mean(axis=0) - fr.mean(axis=0)) < 0.5 * spread)
    # ...while the displacement separates the classes almost perfectly.
    assert np.mean(sl < 0) > 0.85 and np.mean(sr > 0) > 0.85
    assert sr.mean() - sl.mean() > 3 * np.sqrt((sl.var() + sr.var()) / 2)


def _object_area(frames):
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames])
    return ((hsv[..., 1] > 140) & (hsv[..., 2] > 150)).sum(axis=(1, 2)).astype(float)


def test_grow_and_shrink_share_sizes_but_not_their_order():
    areas, changes = {}, {}
    for motion in ("Grow", "Shrink"):
        a = [_object_area(render_video(motion, np.random.default_rng([9, i, len(motion)]), frames=8, size=32))
             for i in range(40)]
        areas[motion] = np.array([x.mean() for x in a])
        changes[motion] = np.array([x[-1] - x[0] for x in a])
    g, s = areas["Grow"], areas["Shrink"]
    assert abs(g.mean() - s.mean()) < 0.5 * np.sqrt((g.var() + s.var()) / 2)
    assert np.mean(changes["Grow"] > 0) > 0.85 and np.mean(changes["Shrink"] < 0) > 0.85
