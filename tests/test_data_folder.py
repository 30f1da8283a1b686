"""VideoFolder: layouts, labels, shapes, sampling, flips, normalisation, the clip cache, H.264."""

import json
import pickle
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kdlab.data import MEAN, STD, VideoFolder, clip_indices, denormalize, generate_dataset, label_budget, read_frames
from kdlab.data.synthetic import _write_video

SMALL = dict(classes=["MoveLeft", "MoveRight", "Grow"], train_per_class=4, test_per_class=2, frames=8, size=32,
             progress=False)
H264 = Path(__file__).parent / "data" / "h264_square.mp4"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("folder") / "tiny", **SMALL)


def ucf_folder(root, videos):
    """A UCF101-layout folder from {relative path: uint8 frames (T, H, W, 3)}; all in train and test."""
    root = Path(root)
    classes = sorted({rel.split("/")[0] for rel in videos})
    for rel, frames in videos.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_video(root / rel, frames, ".avi")
    (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    (root / "trainlist01.txt").write_text("".join(f"{r} {classes.index(r.split('/')[0]) + 1}\n" for r in videos))
    (root / "testlist01.txt").write_text("".join(f"{r}\n" for r in videos))
    return root


def ramp(n):
    """Video whose frame t is flat grey 8*t + 8: the decoded brightness tells the frame index."""
    return np.stack([np.full((24, 24, 3), 8 * t + 8, np.uint8) for t in range(n)])


def decoded_index(clip):
    """(3, T, H, W) float in [0, 1] -> frame indices read back from the brightness."""
    level = clip.mean(dim=(0, 2, 3)) * 255
    return ((level - 8) / 8).round().long()


# ---------------------------------------------------------------- layouts, labels, shapes


def test_ucf101_layout_labels_and_shapes(tiny):
    ds = VideoFolder(tiny, "train", frames=4, size=16)
    lines = [line.split() for line in (tiny / "trainlist01.txt").read_text().splitlines()]
    assert ds.layout == "ucf101" and ds.classes == SMALL["classes"] and ds.num_classes == 3
    assert [rel for rel, _ in ds.samples] == [rel for rel, _ in lines]
    assert ds.labels == [int(lab) - 1 for _, lab in lines]
    assert ds.flip_map == [1, 0, 2] and ds.counts == [8] * 12 and ds.class_counts() == [4, 4, 4]
    for i in (0, 5, 11):
        clip, label, index = ds[i]
        assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32
        assert label == ds.labels[i] and index == i
        assert ds.classes[label] == ds.samples[i][0].split("/")[0]
    test = VideoFolder(tiny, "test", frames=4, size=16)
    assert len(test) == 6 and not set(test.samples) & set(ds.samples)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_hmdb51_layout(tiny, tmp_path):
    root = tmp_path / "hmdb"
    src = sorted(tiny.rglob("*.avi"))
    plan = {"cartwheel": ["1", "2", "0"], "brush_hair": ["2", "1", "1"]}  # flags: 1 train, 2 test, 0 unused
    expected = {"train": [], "test": []}
    k = 0
    for cls, flags in plan.items():
        (root / cls).mkdir(parents=True)
        lines = []
        for j, flag in enumerate(flags):
            name = f"{cls}_clip{j}.avi"
            shutil.copy2(src[k], root / cls / name)
            k += 1
            lines.append(f"{name} {flag} ")
            if flag != "0":
                expected["train" if flag == "1" else "test"].append((f"{cls}/{name}", sorted(plan).index(cls)))
        (root / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
        (root / f"{cls}_test_split2.txt").write_text("".join(f"{cls}_clip{j}.avi 2\n" for j in range(3)))
    for split in ("train", "test"):
        ds = VideoFolder(root, split, frames=4, size=16)
        assert ds.layout == "hmdb51" and ds.classes == ["brush_hair", "cartwheel"]
        assert sorted(ds.samples) == sorted(expected[split]) and ds.flip_map == [0, 1]
        clip, label, _ = ds[0]
        assert clip.shape == (3, 4, 16, 16) and label == ds.samples[0][1]
    assert len(VideoFolder(root, "test", fold=2, frames=4, size=16)) == 6


def test_split_files_in_their_own_folder(tiny, tmp_path):
    root = tmp_path / "UCF"
    shutil.copytree(tiny, root)
    (root / "ucfTrainTestlist").mkdir()
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        (root / name).rename(root / "ucfTrainTestlist" / name)
    ds = VideoFolder(root, "train", frames=4, size=16)
    assert len(ds) == 12 and ds.layout == "ucf101"
    assert ds.labelled_mask(50).sum() == 6
    assert (root / "ucfTrainTestlist" / "trainlist01_budget50_seed0.txt").is_file()


def test_dataloader_batches(tiny):
    ds = VideoFolder(tiny, "train", frames=4, size=16, sampling="random", flip=True)
    clips, labels, index = next(iter(DataLoader(ds, batch_size=5, shuffle=True, num_workers=0)))
    assert clips.shape == (5, 3, 4, 16, 16) and labels.shape == (5,) and index.shape == (5,)
    multi = VideoFolder(tiny, "test", frames=4, size=16, sampling="multi", clips=3)
    clips, _, _ = next(iter(DataLoader(multi, batch_size=2)))
    assert clips.shape == (2, 3, 3, 4, 16, 16)


# ---------------------------------------------------------------- sampling


def test_uniform_indices_match_the_formula():
    for n in (1, 5, 8, 16, 17, 100):
        for T in (1, 4, 8):
            got = clip_indices(n, T, "uniform")[0].tolist()
            want = [int(Fraction(2 * t + 1, 2 * T) * n) for t in range(T)]  # floor((t + 1/2) n / T), exact
            assert got == want
            assert all(0 <= i < n for i in got) and got == sorted(got)


def test_random_indices_stay_in_their_segments():
    n, T = 30, 7
    torch.manual_seed(1)
    draws = torch.stack([clip_indices(n, T, "random")[0] for _ in range(400)])
    for t in range(T):
        lo, hi = int(Fraction(t * n, T)), -(-(t + 1) * n // T)  # floor(t n / T), ceil((t+1) n / T)
        seen = set(draws[:, t].tolist())
        assert seen <= set(range(lo, hi)) and seen == set(range(lo, min(hi, n)))
    torch.manual_seed(5)
    a = clip_indices(n, T, "random")
    torch.manual_seed(5)
    assert torch.equal(a, clip_indices(n, T, "random"))


def test_multi_clips_interleave_evenly():
    n, T, K = 24, 6, 4
    idx = clip_indices(n, T, "multi", clips=K)
    assert idx.shape == (K, T)
    # With n = T * K, clip k takes frames k, k + K, k + 2K, ...: together they cover every frame once.
    assert idx.tolist() == [[t * K + k for t in range(T)] for k in range(K)]
    assert torch.equal(clip_indices(17, 5, "multi", clips=1), clip_indices(17, 5, "uniform"))
    with pytest.raises(ValueError, match="multi"):
        clip_indices(10, 4, "uniform", clips=2)


def test_loader_reads_the_sampled_frames_using_manifest_counts(tmp_path):
    root = ucf_folder(tmp_path / "ramp", {"Ramp/v_Ramp_g01_c01.avi": ramp(24)})
    ds = VideoFolder(root, "train", frames=6, size=16, normalize=False)
    assert ds.counts == [24]
    assert decoded_index(ds[0][0]).tolist() == [int(Fraction(2 * t + 1, 12) * 24) for t in range(6)]
    rnd = VideoFolder(root, "train", frames=6, size=16, normalize=False, sampling="random")
    for seed in range(3):
        torch.manual_seed(seed)
        expected = rnd.frame_indices(0)[0]
        torch.manual_seed(seed)
        assert torch.equal(decoded_index(rnd[0][0]), expected)
    # The manifest, not the container, decides how many frames a video has.
    manifest = json.loads((root / "kdlab_manifest.json").read_text())
    manifest["videos"]["Ramp/v_Ramp_g01_c01.avi"]["frames"] = 12
    (root / "kdlab_manifest.json").write_text(json.dumps(manifest))
    ds12 = VideoFolder(root, "train", frames=6, size=16, normalize=False)
    assert ds12.counts == [12] and decoded_index(ds12[0][0]).tolist() == [1, 3, 5, 7, 9, 11]


# ---------------------------------------------------------------- transforms


def test_normalisation_and_denormalize(tiny):
    raw = VideoFolder(tiny, "train", frames=4, size=16, normalize=False)
    norm = VideoFolder(tiny, "train", frames=4, size=16)
    for i in (0, 7):
        r, n = raw[i][0], norm[i][0]
        assert 0 <= r.min() and r.max() <= 1
        mean, std = torch.tensor(MEAN).view(3, 1, 1, 1), torch.tensor(STD).view(3, 1, 1, 1)
        assert torch.allclose(n, (r - mean) / std, atol=1e-6)
        frames = read_frames(tiny / raw.samples[i][0], size=16)[[1, 3, 5, 7]]  # uniform 4 of 8
        assert np.array_equal(denormalize(n), frames)
        assert np.array_equal(denormalize(r, normalized=False), frames)


def test_resize_short_side_then_centre_crop(tmp_path):
    wide = np.zeros((3, 40, 120, 3), np.uint8)
    wide[:, :, :40, 0] = wide[:, :, 40:80, 1] = wide[:, :, 80:, 2] = 255  # red | green | blue
    tall = np.ascontiguousarray(wide.transpose(0, 2, 1, 3))
    for name, video in (("wide", wide), ("tall", tall)):
        _write_video(tmp_path / f"{name}.avi", video, ".avi")
        f = read_frames(tmp_path / f"{name}.avi", size=20).astype(int)
        assert f.shape == (3, 20, 20, 3)
        assert (f[..., 1] > 200).all() and (f[..., 0] < 60).all() and (f[..., 2] < 60).all()  # only green


# ---------------------------------------------------------------- flips


def test_flip_mirrors_and_maps_the_label(tiny):
    plain = VideoFolder(tiny, "train", frames=4, size=16)
    flip = VideoFolder(tiny, "train", frames=4, size=16, flip=True)
    outcomes = []
    for seed in range(3):
        for i in range(len(flip)):
            torch.manual_seed(100 * seed + i)
            clip, label, _ = flip[i]
            p_clip, p_label, _ = plain[i]
            if torch.equal(clip, p_clip) and label == p_label:
                outcomes.append(False)
            else:
                assert torch.equal(clip, p_clip.flip(-1)) and label == plain.flip_map[p_label]
                outcomes.append(True)
                names = (plain.classes[p_label], plain.classes[label])
                assert names in {("MoveLeft", "MoveRight"), ("MoveRight", "MoveLeft"), ("Grow", "Grow")}
    assert 0.2 < np.mean(outcomes) < 0.8


def test_no_flip_when_the_mirrored_class_is_missing(tmp_path):
    root = generate_dataset(tmp_path / "lr", classes=["MoveLeft", "MoveUp"], train_per_class=2, test_per_class=1,
                            frames=4, size=16, progress=False)
    flip = VideoFolder(root, "train", frames=4, size=16, flip=True)
    plain = VideoFolder(root, "train", frames=4, size=16)
    assert flip.flip_map == [-1, 1]
    for seed in range(8):
        for i in range(len(flip)):
            torch.manual_seed(seed)
            clip, label, _ = flip[i]
            if plain.labels[i] == 0:  # MoveLeft has no mirrored class here: never flipped
                assert label == 0 and torch.equal(clip, plain[i][0])


# ---------------------------------------------------------------- cache


def test_cache_returns_exactly_what_decoding_returns(tiny, tmp_path):
    for kw in (dict(sampling="uniform"), dict(sampling="random", flip=True), dict(sampling="multi", clips=3)):
        direct = VideoFolder(tiny, "train", frames=4, size=16, **kw)
        cached = VideoFolder(tiny, "train", frames=4, size=16, cache=tmp_path / "c", **kw)
        for i in range(len(direct)):
            torch.manual_seed(i)
            a = direct[i]
            torch.manual_seed(i)
            b = cached[i]
            assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    files = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npy")


def test_cache_is_built_once_and_survives_pickling(tiny):
    ds = VideoFolder(tiny, "test", frames=4, size=16, cache=True)
    data = ds.cache.data_path
    assert data.parent == tiny / ".cache" and data.is_file()
    mtime = data.stat().st_mtime_ns
    again = VideoFolder(tiny, "test", frames=4, size=16, cache=True)
    assert again.cache.data_path == data and data.stat().st_mtime_ns == mtime
    copy = pickle.loads(pickle.dumps(again))  # what a DataLoader worker receives
    assert torch.equal(copy[3][0], ds[3][0])
    other = VideoFolder(tiny, "test", frames=4, size=8, cache=True)  # another size: another cache
    assert other.cache.data_path != data and other[0][0].shape == (3, 4, 8, 8)


def test_budget_subset_and_labelled_mask(tiny):
    ds = VideoFolder(tiny, "train", frames=4, size=16)
    mask = ds.labelled_mask(50, seed=2)
    path = label_budget(tiny, 50, seed=2)
    listed = {line.split()[0] for line in path.read_text().splitlines()}
    assert mask.dtype == torch.bool and mask.shape == (12,) and mask.sum() == 6
    assert {ds.samples[i][0] for i in range(len(ds)) if mask[i]} == listed
    sub = VideoFolder(tiny, "train", frames=4, size=16, budget=50, budget_seed=2)
    assert {rel for rel, _ in sub.samples} == listed and sub.class_counts() == [2, 2, 2]
    with pytest.raises(ValueError, match="train"):
        VideoFolder(tiny, "test", frames=4, size=16).labelled_mask(10)


# ---------------------------------------------------------------- real codecs


def test_h264_decodes(tmp_path):
    """tests/data/h264_square.mp4: H.264 High profile with B-frames, 12 frames of 64x48, a red
    square whose left edge is at x = 4 + 4t (made with ffmpeg/libx264, see tests/data/README.md)."""
    frames = read_frames(H264)
    assert frames.shape == (12, 48, 64, 3)
    for t, f in enumerate(frames.astype(float)):
        red = np.clip(f[..., 0] - f[..., 1], 0, None)
        x = (red.sum(axis=0) * np.arange(64)).sum() / red.sum()
        assert abs(x - (4 + 4 * t + 3.5)) < 1.0  # frames come back in display order
    root = tmp_path / "real"
    (root / "Square").mkdir(parents=True)
    shutil.copy(H264, root / "Square" / "v_Square_g01_c01.mp4")
    (root / "classInd.txt").write_text("1 Square\n")
    (root / "trainlist01.txt").write_text("Square/v_Square_g01_c01.mp4 1\n")
    (root / "testlist01.txt").write_text("Square/v_Square_g01_c01.mp4\n")
    ds = VideoFolder(root, "train", frames=8, size=32)
    assert ds.counts == [12] and ds[0][0].shape == (3, 8, 32, 32)
