"""Portable run cache: keys hold the dataset's content fingerprint, never its path, and
``kdlab artifacts pack/unpack`` moves trained runs into another checkout, where they load."""

import io
import json
import shutil
import tarfile

import pytest

from kdlab.artifacts import MANIFEST, ArtifactError, pack, unpack
from kdlab.cli import main
from kdlab.data import generate_dataset, label_budget
from kdlab.data.fingerprint import dataset_fingerprint, find_dataset
from kdlab.teachers import get_teacher, train_scratch
from kdlab.weak_splits import DataConfig, Splits
from kdlab.protocol import leaked_videos
from kdlab.students import distill_student


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("made") / "sim", classes=["MoveLeft", "MoveRight", "Grow"],
                            train_per_class=12, test_per_class=3, frames=8, size=32, progress=False)


def copy_of(dataset, where):
    where.parent.mkdir(parents=True, exist_ok=True)
    return shutil.copytree(dataset, where, ignore=shutil.ignore_patterns("kdlab_manifest.json", "*budget*", ".*"))


def test_the_fingerprint_is_the_content_not_the_folder(dataset, tmp_path):
    here = dataset_fingerprint(dataset)
    moved = copy_of(dataset, tmp_path / "elsewhere" / "renamed")
    assert dataset_fingerprint(moved) == here
    label_budget(moved, 20, seed=3)  # a budget file that kdlab derives from the splits changes nothing
    assert dataset_fingerprint(moved) == here
    lines = (moved / "trainlist01.txt").read_text().splitlines()
    (moved / "trainlist01.txt").write_text("\n".join(lines[:-1]) + "\n")  # one training video fewer
    assert dataset_fingerprint(moved) != here
    other = copy_of(dataset, tmp_path / "third")
    video = next(other.glob("Grow/*.avi"))
    video.write_bytes(video.read_bytes() + b"\0")  # a video of another size
    assert dataset_fingerprint(other) != here
    assert find_dataset(here, tmp_path / "elsewhere") is None and find_dataset(here, dataset.parent) == dataset


def test_run_keys_hold_no_path(dataset, tmp_path):
    moved = copy_of(dataset, tmp_path / "b" / "sim-copy")
    a, b = DataConfig(root=str(dataset)).key(), DataConfig(root=str(moved)).key()
    assert a == b and "root" not in a and a["dataset"] == dataset_fingerprint(dataset)
    assert str(tmp_path) not in json.dumps(b) and str(dataset.parent) not in json.dumps(a)


def _train_models(root, progress=True):
    splits = Splits(DataConfig(root=str(root), budget=20, cache=False), progress=False)
    teacher, t_info = get_teacher("all", splits, model="student", epochs=1, progress=progress)
    _, s_info = train_scratch("student", splits, epochs=1, progress=progress)
    _, d_info = distill_student("kd", splits, teacher, model="student", epochs=1, progress=progress,
                                allow_label_leak=True)
    return splits, teacher, [t_info, s_info, d_info]


def test_pack_in_one_project_unpack_in_another_and_nothing_trains(dataset, tmp_path, monkeypatch, capsys):
    # The instructor's checkout: its runs/ and its copy of the data.
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "instructor" / "runs"))
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "instructor" / "data"))
    theirs = copy_of(dataset, tmp_path / "instructor" / "data" / "sim")
    _, _, infos = _train_models(theirs)
    out = capsys.readouterr().out
    assert out.count("training ") == 3 and "loaded" not in out
    artifact = tmp_path / "share" / "kdlab-runs.tar.gz"
    assert main(["artifacts", "pack", str(artifact)]) == 0
    manifest = json.loads(tarfile.open(artifact).extractfile(MANIFEST).read())
    assert len(manifest["entries"]) == 3 and manifest["datasets"] == {dataset_fingerprint(dataset): "sim"}
    assert not any("/fit/" in m for m in tarfile.open(artifact).getnames())  # no resume state

    # A student's checkout: the same data under another folder name and path; nothing may train.
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "student" / "runs"))
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "student" / "data"))
    mine = copy_of(dataset, tmp_path / "student" / "data" / "simmotion-copy")
    capsys.readouterr()
    assert main(["artifacts", "unpack", str(artifact)]) == 0
    said = capsys.readouterr().out
    assert "unpacked 3 runs" in said and "found here as" in said

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run trained again")

    monkeypatch.setattr("kdlab.trained.fit", no_training)  # every teacher and student trains through it
    splits, teacher, again = _train_models(mine)
    out = capsys.readouterr().out
    assert out.count("loaded ") == 3 and "training" not in out
    assert [i["test_top1"] for i in again] == [i["test_top1"] for i in infos]
    # The teacher's record of the labels it saw still applies to the data at its new place and name.
    assert leaked_videos(teacher, splits) != []
    # Unpacking again keeps what is there.
    assert unpack(artifact, verbose=False)["kept"] == manifest["entries"]


def test_pack_series_takes_only_the_runs_the_notebooks_used(tmp_path, dataset, monkeypatch):
    runs = tmp_path / "runs"
    for name in ("distill-kd-aaa", "teacher-all-bbb"):
        (runs / name).mkdir(parents=True)
        (runs / name / "model.pt").write_bytes(b"x")
        (runs / name / "config.json").write_text("{}")
    (runs / "scratch-budget-ccc" / "fit").mkdir(parents=True)  # unfinished: never packed
    with pytest.raises(ArtifactError, match="make notebooks"):
        pack(tmp_path / "a.tar.gz", runs=runs, series=True, verbose=False)
    (runs / "series-runs.txt").write_text("teacher-all-bbb\nteacher-all-bbb\n")
    assert pack(tmp_path / "a.tar.gz", runs=runs, series=True, verbose=False)["entries"] == ["teacher-all-bbb"]
    assert pack(tmp_path / "b.tar.gz", runs=runs, verbose=False)["entries"] == ["distill-kd-aaa", "teacher-all-bbb"]


def _evil(path, name, data=b"x", kind=tarfile.REGTYPE, entries=("run-1",)):
    with tarfile.open(path, "w:gz") as tar:
        m = json.dumps({"format": 1, "entries": list(entries), "datasets": {}}).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(m)
        tar.addfile(info, io.BytesIO(m))
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name, kind, entries, message", [
    ("../outside.txt", tarfile.REGTYPE, ("run-1",), "outside the run folder"),
    ("run-1/../../outside.txt", tarfile.REGTYPE, ("run-1",), "outside the run folder"),
    ("/tmp/absolute.txt", tarfile.REGTYPE, ("run-1",), "outside the run folder"),
    ("run-1/link", tarfile.SYMTYPE, ("run-1",), "no links"),
    ("other/model.pt", tarfile.REGTYPE, ("run-1",), "in no entry"),
    ("../x/model.pt", tarfile.REGTYPE, ("../x",), "entry name"),
])
def test_unpack_refuses_path_traversal_and_links(tmp_path, name, kind, entries, message):
    bad = _evil(tmp_path / "bad.tar.gz", name, kind=kind, entries=entries)
    runs = tmp_path / "project" / "runs"
    with pytest.raises(ArtifactError, match=message):
        unpack(bad, runs=runs, verbose=False)
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "project" / "outside.txt").exists()
    assert not runs.exists() or not any(runs.iterdir())


def test_clear_errors_for_files_that_are_not_artifacts(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["artifacts", "unpack", str(tmp_path / "notes.txt")]) == 2
    assert "is not a kdlab artifact file" in capsys.readouterr().err
    assert main(["artifacts", "unpack", str(tmp_path / "missing.tar.gz")]) == 2
    assert "no artifact file" in capsys.readouterr().err
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        tar.add(tmp_path / "notes.txt", arcname="notes.txt")
    assert main(["artifacts", "unpack", str(plain)]) == 2
    assert "does not start with" in capsys.readouterr().err
    assert main(["artifacts", "pack", str(tmp_path / "x.tar.gz"), "--runs", str(tmp_path / "nothing")]) == 2
    assert "train something first" in capsys.readouterr().err
    truncated = tmp_path / "cut.tar.gz"
    good = _evil(tmp_path / "good.tar.gz", "run-1/model.pt", data=b"y" * 100000)
    truncated.write_bytes(good.read_bytes()[:200])
    assert main(["artifacts", "unpack", str(truncated)]) == 2
    assert "is damaged or truncated" in capsys.readouterr().err


def test_teacher_cache_keys_follow_the_content_not_the_folder(dataset, tmp_path):
    from kdlab.data import VideoFolder
    from kdlab.distill.teacher_cache import CachedViews

    moved = copy_of(dataset, tmp_path / "moved" / "other-name")
    key = [CachedViews(VideoFolder(r, "train", frames=4, size=16, flip=True, sampling="random"), views=2).fingerprint()
           for r in (dataset, moved)]
    assert key[0] == key[1] and str(dataset) not in json.dumps(key[0])
    (moved / "trainlist01.txt").write_text("".join((moved / "trainlist01.txt").read_text().splitlines(True)[:-1]))
    changed = CachedViews(VideoFolder(moved, "train", frames=4, size=16, flip=True, sampling="random"), views=2)
    assert changed.fingerprint() != key[0]
