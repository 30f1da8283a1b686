"""Bad input: every case raises a VideoError naming the file (and split line); skip mode counts."""

import shutil
import warnings

import numpy as np
import pytest

from kdlab.data import VideoError, VideoFolder, generate_dataset, read_frames, scan_dataset
from kdlab.data.synthetic import _write_video

SMALL = dict(classes=["MoveLeft", "MoveRight"], train_per_class=3, test_per_class=1, frames=8, size=32,
             progress=False)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("err") / "base", **SMALL)


@pytest.fixture
def ds_root(base, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(base, root)
    return root


def add_line(root, line, split="trainlist01.txt"):
    with open(root / split, "a") as f:
        f.write(line + "\n")
    return len((root / split).read_text().splitlines())  # its line number


def add_video(root, rel, data: bytes):
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return add_line(root, f"{rel} {1 if 'Left' in rel else 2}")


def good_bytes(base):
    return (base / "MoveLeft" / "v_MoveLeft_g01_c01.avi").read_bytes()


def load(root, **kw):
    return VideoFolder(root, "train", frames=4, size=16, **kw)


@pytest.mark.parametrize("case", ["empty", "corrupt", "truncated", "too_short"])
def test_bad_videos_are_named(ds_root, base, case, tmp_path):
    rel = f"MoveLeft/v_MoveLeft_g09_c0{['empty', 'corrupt', 'truncated', 'too_short'].index(case)}.avi"
    if case == "too_short":
        frames = np.full((3, 32, 32, 3), 120, np.uint8)  # 3 frames, the loader wants 4
        (ds_root / rel).parent.mkdir(exist_ok=True)
        _write_video(ds_root / rel, frames, ".avi")
        add_line(ds_root, f"{rel} 1")
    else:
        data = {"empty": b"", "corrupt": np.random.default_rng(0).bytes(4000),
                "truncated": good_bytes(base)[: len(good_bytes(base)) * 6 // 10]}[case]
        add_video(ds_root, rel, data)
    want = {"empty": "0 bytes", "corrupt": "cannot open", "truncated": "truncated", "too_short": "too short"}[case]
    with pytest.raises(VideoError, match=want) as err:
        load(ds_root)
    assert str(ds_root / rel) in str(err.value) and err.value.path == str(ds_root / rel)


def test_split_line_to_missing_file(ds_root):
    n = add_line(ds_root, "MoveLeft/v_MoveLeft_g77_c01.avi 1")
    with pytest.raises(VideoError, match="does not exist") as err:
        load(ds_root)
    msg = str(err.value)
    assert f"trainlist01.txt, line {n}" in msg and "v_MoveLeft_g77_c01.avi" in msg
    assert err.value.line == n and err.value.path.endswith("trainlist01.txt")


def test_class_missing_from_classind(ds_root):
    (ds_root / "Jump").mkdir()
    shutil.copy(ds_root / "MoveLeft" / "v_MoveLeft_g01_c01.avi", ds_root / "Jump" / "v_Jump_g01_c01.avi")
    n = add_line(ds_root, "Jump/v_Jump_g01_c01.avi", split="testlist01.txt")
    with pytest.raises(VideoError, match="'Jump'.*not in classInd") as err:
        VideoFolder(ds_root, "test", frames=4, size=16)
    assert f"testlist01.txt, line {n}" in str(err.value) and "MoveLeft, MoveRight" in str(err.value)


@pytest.mark.parametrize("line, match", [
    ("MoveLeft/v_MoveLeft_g01_c01.avi 7", "unknown label 7 \\(valid 1..2\\)"),
    ("MoveLeft/v_MoveLeft_g01_c01.avi 2", "contradicts"),
    ("MoveLeft/v_MoveLeft_g01_c01.avi one", "malformed"),
    ("MoveLeft/v_MoveLeft_g01_c01.avi 1 extra", "malformed"),
    ("no_folder.avi 1", "not in classInd"),
])
def test_bad_split_lines(ds_root, line, match):
    n = add_line(ds_root, line)
    with pytest.raises(VideoError, match=match) as err:
        load(ds_root)
    assert f"trainlist01.txt, line {n}" in str(err.value)


@pytest.mark.parametrize("text, match", [
    ("1 MoveLeft\n2\n", "line 2: malformed"),
    ("1 MoveLeft\n1 MoveRight\n", "duplicate"),
    ("1 MoveLeft\n3 MoveRight\n", "1..2"),
])
def test_bad_class_index(ds_root, text, match):
    (ds_root / "classInd.txt").write_text(text)
    with pytest.raises(VideoError, match=match) as err:
        load(ds_root)
    assert "classInd.txt" in str(err.value)


def test_missing_split_and_no_layout(ds_root, tmp_path):
    with pytest.raises(VideoError, match="trainlist03.txt.*does not exist.*trainlist01.txt"):
        VideoFolder(ds_root, "train", fold=3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no split files found"):
        VideoFolder(tmp_path / "empty")
    with pytest.raises(VideoError, match="does not exist"):
        VideoFolder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="raise.*skip"):
        load(ds_root, on_error="ignore")


def test_hmdb_class_folder_missing(tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "wave_test_split1.txt").write_text("a.avi 1\n")
    with pytest.raises(VideoError, match="wave_test_split1.txt.*folder .*wave does not exist"):
        VideoFolder(tmp_path / "h")


def test_skip_mode_counts_and_warns_once(ds_root, base):
    bad = [
        add_video(ds_root, "MoveLeft/v_MoveLeft_g20_c01.avi", b""),
        add_video(ds_root, "MoveRight/v_MoveRight_g20_c02.avi", b"not a video at all" * 50),
        add_line(ds_root, "MoveLeft/v_MoveLeft_g20_c03.avi 1"),  # missing
        add_line(ds_root, "MoveLeft/v_MoveLeft_g01_c01.avi 5"),  # unknown label
        add_line(ds_root, "this line is malformed 1"),
    ]
    assert len(bad) == 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load(ds_root, on_error="skip")
    ours = [w for w in caught if "skipped" in str(w.message)]
    assert len(ours) == 1 and "skipped 5 bad item(s)" in str(ours[0].message)
    for name in ("g20_c01", "g20_c02", "g20_c03", "label 5", "malformed"):
        assert name in str(ours[0].message)
    assert len(ds) == 6 and len(ds.skipped) == 5
    assert all(isinstance(e, VideoError) for e in ds.skipped)
    for i in range(len(ds)):  # what is left is real video, never zeros
        assert ds[i][0].abs().sum() > 0


def test_scan_lists_undecodable_files(ds_root):
    (ds_root / "MoveLeft" / "broken.avi").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="(?s)1 video\\(s\\) cannot be used.*broken.avi"):
        scan_dataset(ds_root, progress=False)
    with pytest.warns(UserWarning, match="broken.avi"):
        manifest = scan_dataset(ds_root, on_error="skip", progress=False)
    assert list(manifest["errors"]) == ["MoveLeft/broken.avi"]
    assert len(manifest["videos"]) == 8 and all(v["frames"] == 8 for v in manifest["videos"].values())


def test_reading_past_the_end_is_an_error_not_zeros(base):
    path = base / "MoveLeft" / "v_MoveLeft_g01_c01.avi"
    with pytest.raises(VideoError, match="only 8 decodable frames.*frame 8"):
        read_frames(path, [0, 8])
    with pytest.raises(VideoError, match="does not exist"):
        read_frames(base / "nope.avi")
    with pytest.raises(ValueError, match="non-empty"):
        read_frames(path, [])
