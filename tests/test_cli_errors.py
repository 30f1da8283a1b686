"""Every bad input reaches the user as one line and exit status 2 before anything is written; a
NaN has its own status; output folders are locked, restartable and cleaned of leftovers."""

import errno
import os
import re
import shutil
import subprocess
import sys

import pytest

from kdlab.cli import main
from kdlab.io import DiskFullError, atomic_save, atomic_write_text, load_checkpoint
from kdlab.runfolder import LOCK_FILE, clear_run, remove_stale

from toydata import tiny_videos

CLASSES = ["MoveLeft", "MoveRight", "Grow"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_videos(tmp_path_factory.mktemp("clierr"), train_per_class=6, classes=CLASSES)


@pytest.fixture(autouse=True)
def quiet_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("KDLAB_PROGRESS", "0")


def run(capsys, *args):
    """``kdlab ARGS`` in this process -> (exit status, stderr)."""
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def one_line_error(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "WARN" not in line]  # OpenCV's own log lines
    assert len(lines) == 1, err
    assert lines[0].startswith(f"kdlab {command}: error: ") and "Traceback" not in err
    return lines[0]


def train_args(data, out, *extra):
    return ["train", "--data", data, "--out", out, "--epochs", 1, "--batch-size", 4, *extra]


# ----------------------------------------------------------------------------- settings

@pytest.mark.parametrize("toml, message", [
    ('lr = "fast"', 'lr = "fast": expected a finite number > 0'),
    ('epochs = "ten"', 'epochs = "ten": expected an integer >= 1'),
    ("epochs = 0", "epochs = 0: expected an integer >= 1"),
    ("batch_size = 0", "batch_size = 0: expected an integer >= 1"),
    ("budget = 150", "budget = 150: expected a percentage in (0, 100]"),
    ("frames = 0", "frames = 0: expected an integer >= 1"),
    ("frames = 1", "too short for model 'student'"),
    ("cache = 3", "cache = 3: expected true or false"),
])
def test_bad_values_in_a_config_file(toml, message, root, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(f"[train]\n{toml}\n")
    status, err = run(capsys, *train_args(root, tmp_path / "out"), "--config", config)
    line = one_line_error(err, "train")
    assert status == 2 and message in line and str(config) in line
    assert not (tmp_path / "out").exists(), "nothing is written before the settings are checked"


@pytest.mark.parametrize("flags, message", [
    (["--lr", "nan"], "--lr nan: expected a finite number > 0"),
    (["--lr", "-1"], "--lr -1.0: expected a finite number > 0"),
    (["--epochs", "0"], "--epochs 0: expected an integer >= 1"),
    (["--budget", "150"], "--budget 150.0: expected a percentage in (0, 100]"),
    (["--frames", "1"], "--frames 1: a clip of 1 frame(s) is too short for model 'student'"),
    (["--model", "resnet9000"], "unknown model 'resnet9000'; valid: teacher, assistant, student"),
])
def test_bad_flags(flags, message, root, tmp_path, capsys):
    status, err = run(capsys, *train_args(root, tmp_path / "out"), *flags)
    assert status == 2 and message in one_line_error(err, "train")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["distill", "--method", "skd", "--option", 'fd_kind="nope"'], "unknown fd_kind 'nope'"),
    (["distill", "--option", 'kd_temperature="hot"'], "option kd_temperature = 'hot': expected a number"),
    (["skd", "--option", 'pairing="nearest"'], "unknown pairing 'nearest'"),
    (["cascade", "--lr", "inf"], "--lr inf: expected a finite number > 0"),
    (["distill", "--frames", "1"], "too short for model 'student'"),
    (["distill", "--budget", "0"], "--budget 0.0: expected a percentage"),
    (["distill", "--pool", "0"], "--pool 0: expected an integer >= 1"),
    (["skd", "--pool", "500"], "pool=500 videos per class, but the training split has"),
])
def test_bad_option_values_are_found_before_the_teacher_trains(args, message, root, tmp_path, capsys):
    status, err = run(capsys, args[0], "--data", root, "--out", tmp_path / "out", *args[1:])
    assert status == 2 and message in one_line_error(err, args[0])
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists(), "no teacher, no run folder"


def test_wrong_types_in_a_pipeline_config_name_the_file(root, tmp_path, capsys):
    config = tmp_path / "skd.toml"
    config.write_text('[skd]\nepochs = "ten"\n')
    status, err = run(capsys, "skd", "--config", config, "--data", root, "--out", tmp_path / "out")
    assert status == 2 and f'{config}: epochs = "ten": expected an integer >= 1' in one_line_error(err, "skd")
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_is_a_file_or_read_only(root, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    status, err = run(capsys, *train_args(root, a_file))
    assert status == 2 and "is a file, not a folder" in one_line_error(err, "train")
    status, err = run(capsys, "distill", "--data", root, "--out", a_file / "below")
    assert status == 2 and f"cannot be created: {a_file} is a file" in one_line_error(err, "distill")

    locked_up = tmp_path / "readonly"
    locked_up.mkdir()
    locked_up.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: stand in for a read-only folder through os.access
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked_up) else real(p, mode))
    try:
        status, err = run(capsys, *train_args(root, locked_up / "out"))
        assert status == 2 and "is read-only for this user" in one_line_error(err, "train")
        assert not (locked_up / "out").exists()
    finally:
        locked_up.chmod(0o700)


# ----------------------------------------------------------------------------- data

def _first_video(d):
    return sorted(d.glob("MoveLeft/*.avi"))[0]


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _replace_line(name, old, new):
    def mutate(d):
        text = (d / name).read_text()
        assert old in text
        (d / name).write_text(text.replace(old, new, 1))
    return mutate


BROKEN = {
    "not a dataset": (lambda d: [shutil.rmtree(p) if p.is_dir() else p.unlink() for p in list(d.iterdir())],
                      "no split files found"),
    "missing split file": (lambda d: (d / "testlist01.txt").unlink(), "testlist01.txt: split file does not exist"),
    "malformed classInd": (_replace_line("classInd.txt", "1 MoveLeft", "one MoveLeft"),
                           "classInd.txt, line 1: malformed line 'one MoveLeft'"),
    "missing video": (lambda d: _first_video(d).unlink(), "which does not exist"),
    "label out of range": (_replace_line("trainlist01.txt", "MoveLeft_g01_c01.avi 1", "MoveLeft_g01_c01.avi 99"),
                           "trainlist01.txt, line 1: unknown label 99 (valid 1..3)"),
    "label not an integer": (_replace_line("trainlist01.txt", "MoveLeft_g01_c01.avi 1", "MoveLeft_g01_c01.avi one"),
                             "trainlist01.txt, line 1: malformed line"),
    "empty video": (lambda d: _first_video(d).write_bytes(b""), "empty file (0 bytes)"),
    "truncated video": (lambda d: _truncate(_first_video(d)), "v_MoveLeft_g01_c01.avi: OpenCV cannot open it"),
    "text file named .avi": (lambda d: _first_video(d).write_text("hello\n"), "v_MoveLeft_g01_c01.avi: OpenCV"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_datasets_are_one_line_before_the_run_folder(case, root, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(root, data)
    mutate, message = BROKEN[case]
    mutate(data)
    status, err = run(capsys, *train_args(data, tmp_path / "out"))
    assert status == 2 and message in one_line_error(err, "train")
    assert not (tmp_path / "out").exists()
    status, err = run(capsys, "distill", "--data", data, "--out", tmp_path / "out2", "--method", "scratch")
    assert status == 2 and message in one_line_error(err, "distill")
    assert not (tmp_path / "out2").exists()


def test_videos_too_short_for_the_clip_are_refused_by_name(root, tmp_path, capsys):
    status, err = run(capsys, *train_args(root, tmp_path / "out"), "--frames", 12)
    assert status == 2 and "too short: 8 decodable frames, needs at least 12" in one_line_error(err, "train")
    assert not (tmp_path / "out").exists()


def test_data_check_lists_every_problem_and_exits_non_zero(root, tmp_path, capsys):
    assert main(["data", "check", str(root)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out

    empty = tmp_path / "empty"
    empty.mkdir()
    status, err = run(capsys, "data", "check", empty)
    assert status == 2 and "no split files found" in one_line_error(err, "data")
    assert list(empty.iterdir()) == [], "no manifest in a folder that is not a dataset"

    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(_first_video(root), loose / "clip.avi")
    assert run(capsys, "data", "check", loose)[0] == 2
    assert not (loose / "kdlab_manifest.json").exists()

    data = tmp_path / "data"
    shutil.copytree(root, data)
    _first_video(data).write_text("not a video\n")
    _replace_line("trainlist01.txt", "MoveRight_g01_c01.avi 2", "MoveRight_g01_c01.avi 7")(data)
    (data / "trainlist01.txt").write_text((data / "trainlist01.txt").read_text() + "Grow/v_Grow_g99_c01.avi 3\n")
    shutil.rmtree(data / "Grow")
    status = main(["data", "check", str(data)])
    out = capsys.readouterr().out
    assert status == 1
    for expected in ["v_MoveLeft_g01_c01.avi: OpenCV cannot open it", "unknown label 7 (valid 1..3)",
                     "v_Grow_g99_c01.avi, which does not exist", "Grow: class folder of classInd.txt does not exist"]:
        assert expected in out, out


# ----------------------------------------------------------------------------- checkpoints, NaN, lock, restart

def test_a_corrupt_checkpoint_is_one_line_and_left_as_it_was(root, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "fit").mkdir(parents=True)  # kdlab train keeps the engine's checkpoints in fit/, as distill does
    (out / "fit" / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    status, err = run(capsys, *train_args(root, out))
    assert status == 2 and "checkpoint.pt could not be read" in one_line_error(err, "train")
    assert sorted(p.name for p in out.iterdir()) == sorted(["config.json", "fit", LOCK_FILE])
    assert [p.name for p in (out / "fit").iterdir()] == ["checkpoint.pt"]
    assert (out / "fit" / "checkpoint.pt").read_bytes() == b"PK\x03\x04 truncated"


def test_a_nan_exits_3_without_claiming_a_checkpoint_and_restart_starts_over(root, tmp_path, capsys):
    out = tmp_path / "out"
    status, err = run(capsys, *train_args(root, out, "--labels", "all", "--lr", "1e30"))
    line = one_line_error(err, "train")
    assert status == 3 and re.search(r"is -?(nan|inf) at epoch 0", line) and "no checkpoint was written" in line
    assert "last good checkpoint" not in line and "--restart" in line
    assert not (out / "fit" / "checkpoint.pt").exists()

    # The folder was claimed (config.json) before the NaN, as every command's is: other settings need --restart.
    status, err = run(capsys, *train_args(root, out, "--labels", "all"))
    line = one_line_error(err, "train")
    assert status == 2 and "another configuration (lr: stored 1e+30, asked 0.002" in line and "--restart" in line
    assert run(capsys, *train_args(root, out, "--labels", "all", "--restart"))[0] == 0
    status, err = run(capsys, *train_args(root, out, "--labels", "all", "--lr", "1e-3"))
    line = one_line_error(err, "train")
    assert status == 2 and "another configuration (lr: stored 0.002, asked 0.001" in line and "--restart" in line
    assert run(capsys, *train_args(root, out, "--labels", "all", "--lr", "1e-3", "--restart"))[0] == 0
    assert load_checkpoint(out / "fit" / "checkpoint.pt")["settings"]["lr"] == 1e-3

    (out / "notes.txt").write_text("mine")
    status, err = run(capsys, *train_args(root, out, "--labels", "all", "--restart"))
    assert status == 2 and "--restart refuses to empty" in one_line_error(err, "train")
    assert (out / "notes.txt").exists() and (out / "fit" / "checkpoint.pt").exists()


def test_a_second_process_on_a_locked_folder_is_refused(root, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kdlab.runfolder import locked\n"
                               f"with locked({str(out)!r}):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, err = run(capsys, *train_args(root, out))
        line = one_line_error(err, "train")
        assert status == 2 and f"is being written by kdlab process {holder.pid}" in line
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]
    finally:
        holder.communicate("")
    assert run(capsys, *train_args(root, out))[0] == 0  # the holder is gone: the lock went with it


@pytest.mark.slow
def test_exit_status_and_no_traceback_from_a_real_process(root, tmp_path):
    result = subprocess.run([sys.executable, "-m", "kdlab.cli", *map(str, train_args(root, tmp_path / "o")),
                             "--lr", "nan"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    debug = subprocess.run([sys.executable, "-m", "kdlab.cli", "--debug", *map(str, train_args(root, tmp_path / "o")),
                            "--lr", "nan"], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "SettingError" in debug.stderr


def test_a_full_disk_says_so(root, tmp_path, capsys, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("kdlab.io.os.fsync", no_space)
    with pytest.raises(DiskFullError, match="no space left on the device to write .*x.pt"):
        atomic_save({"a": 1}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == [], "the temporary file is removed"
    status, err = run(capsys, *train_args(root, tmp_path / "out"))
    assert status == 4 and "no space left on the device" in one_line_error(err, "train")


# ----------------------------------------------------------------------------- leftovers, umask

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    (tmp_path / "fit").mkdir(parents=True)
    stale = [tmp_path / f".checkpoint.pt.{dead}.ab12cd34.tmp", tmp_path / "fit" / f".history.json.{dead}.tmp"]
    kept = [tmp_path / f".model.pt.{live}.ab12cd34.tmp", tmp_path / "checkpoint.pt", tmp_path / ".old_name_x.tmp"]
    for p in stale + kept:
        p.write_text("x")
    partial = tmp_path / f".teacher-abc.partial-{dead}"
    partial.mkdir()
    (partial / "logits.npy").write_text("x")
    removed = remove_stale(tmp_path)
    assert sorted(removed) == sorted(stale + [partial])
    assert all(p.exists() for p in kept)
    remove_stale(tmp_path, owned=True)  # the lock holder also removes leftovers without a pid
    assert not (tmp_path / ".old_name_x.tmp").exists() and (tmp_path / f".model.pt.{live}.ab12cd34.tmp").exists()


def test_a_train_run_removes_its_folders_leftovers(root, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / f".checkpoint.pt.{_dead_pid()}.zz99zz99.tmp"
    leftover.write_text("half a checkpoint")
    (root / ".cache").mkdir(exist_ok=True)
    half_cache = root / ".cache" / f".frames.npy.{_dead_pid()}.tmp"  # a clip-cache build killed midway
    half_cache.write_text("x")
    assert run(capsys, *train_args(root, out))[0] == 0
    assert not leftover.exists() and not half_cache.exists() and (out / "report.json").is_file()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "report.json", "{}")
        assert path.stat().st_mode & 0o777 == mode
    finally:
        os.umask(old)


def test_clear_run_keeps_the_lock_and_removes_kdlab_files(tmp_path):
    for name in ("config.json", "report.md", LOCK_FILE):
        (tmp_path / name).write_text("x")
    (tmp_path / "fit").mkdir()
    (tmp_path / "fit" / "checkpoint.pt").write_text("x")
    clear_run(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]


def test_version_and_help_show_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("kdlab 0.")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "learning rate (default: 0.002)" in text and "(default: student)" in text
    with pytest.raises(SystemExit):
        main(["skd", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: chain)" in text and "batch size per process (default: 16)" in text
