"""kdlab distill / cascade / skd / report: clear errors, kill-and-resume of a cascade, torchrun."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from kdlab.cli import main
from kdlab.data import generate_dataset
from kdlab.io import load_checkpoint

CLASSES = ["MoveLeft", "MoveRight", "Grow"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("clipipe") / "sim", classes=CLASSES, train_per_class=12,
                            test_per_class=2, frames=8, size=32, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")  # one run cache: the teacher is trained once for the module


@pytest.fixture
def env(runs, monkeypatch):
    monkeypatch.setenv("KDLAB_RUNS", str(runs))
    return {**os.environ, "KDLAB_RUNS": str(runs), "OMP_NUM_THREADS": "1", "KDLAB_PROGRESS": "0"}


def small(root, out, *extra):
    return ["--data", root, "--out", out, "--budget", 20, "--batch-size", 4, "--teacher-epochs", 1, *extra]


def cascade_args(root, out):
    # A ladder assistant -> (one step) -> student: small and quick, and still three rungs.
    return ["cascade", *small(root, out, "--teacher-model", "assistant", "--method", "kd", "--epochs", 3)]


def cli(*args) -> int:
    return main([str(a) for a in args])


def test_help_explains_each_new_command(capsys):
    for command in ("distill", "cascade", "skd", "report"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and f"usage: kdlab {command}" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["distill", "--method", "hinton"], "unknown method 'hinton'"),
    (["cascade", "--mode", "ring"], "unknown cascade mode 'ring'"),
    (["cascade", "--method", "scratch"], "learns from no teacher"),
    (["skd", "--teacher", "oracle"], "unknown teacher protocol 'oracle'"),
    (["skd", "--epochs", 2], "fewer than the 4 phases"),
    (["distill", "--option", "temprature=3"], "unknown option(s) temprature"),
    (["cascade", "--student-model", "tiny"], "unknown student_model 'tiny'"),
])
def test_bad_settings_exit_2_with_a_clear_message(args, message, root, tmp_path, capsys, env):
    assert cli(*args[:1], "--data", root, "--out", tmp_path / "o", *args[1:]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith(f"kdlab {args[0]}: error:")
    assert not (tmp_path / "o").exists(), "nothing is written before the settings are checked"


def test_missing_data_unknown_keys_and_missing_out(root, tmp_path, capsys, env):
    assert cli("distill", "--data", tmp_path / "nowhere", "--out", tmp_path / "o") == 2
    assert "dataset folder" in capsys.readouterr().err
    config = tmp_path / "skd.toml"
    config.write_text('[skd]\nepochz = 3\n')
    assert cli("skd", "--config", config, "--out", tmp_path / "o") == 2
    assert "unknown setting(s) epochz" in capsys.readouterr().err
    assert cli("cascade", "--data", root) == 2
    assert "output folder" in capsys.readouterr().err
    assert cli("report", tmp_path / "nowhere") == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_rerun_with_another_configuration_is_refused_and_report_prints(root, tmp_path, capsys, env):
    out = tmp_path / "scratch"
    config = tmp_path / "distill.toml"
    config.write_text(f'[distill]\nmethod = "scratch"\nepochs = 1\nviews = 0\ndata = "{root}"\n'
                      '[distill.options]\nlabel_smoothing = 0.1\n')
    assert cli("distill", "--config", config, "--out", out, "--budget", 20, "--batch-size", 4) == 0
    assert "scratch -> student: test top-1" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["options"] == {"label_smoothing": 0.1}
    assert cli("distill", "--config", config, "--out", out, "--budget", 20, "--batch-size", 4, "--epochs", 2) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "epochs: stored 1, asked 2" in err
    assert cli("report", out) == 0
    assert "# kdlab distill: scratch -> student" in capsys.readouterr().out
    (out / "report.json").unlink()
    assert cli("report", out) == 2 and "unfinished run" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_cascade_resumes_mid_rung_to_the_same_final_weights(root, tmp_path, env):
    full = subprocess.run([sys.executable, "-m", "kdlab.cli", *map(str, cascade_args(root, tmp_path / "full"))],
                          capture_output=True, text=True, timeout=600, env=env)
    assert full.returncode == 0, full.stderr[-3000:]
    assert "student:" in full.stdout and (tmp_path / "full" / "report.md").is_file()

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "kdlab.cli", *map(str, cascade_args(root, cut))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    mid_rung = cut / "cascade" / "rung-2" / "fit" / "checkpoint.pt"  # the student has finished an epoch
    deadline = time.time() + 300
    while not mid_rung.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (cut / "cascade" / "rung-1" / "model.pt").is_file()  # the assistant was finished
    assert not (cut / "cascade" / "rung-2" / "model.pt").exists(), "the run finished before it could be killed"
    killed = load_checkpoint(mid_rung)
    assert killed["epoch"] < 2
    finished = {p: p.stat().st_mtime_ns for p in [cut / "cascade" / "rung-1" / "model.pt",
                                                  *(cut / "cascade" / "pseudo").glob("after-*.pt")]}

    again = subprocess.run([sys.executable, "-m", "kdlab.cli", *map(str, cascade_args(root, cut))],
                           capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    a = load_checkpoint(tmp_path / "full" / "cascade" / "rung-2" / "model.pt")["model"]
    b = load_checkpoint(cut / "cascade" / "rung-2" / "model.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # It resumed rather than started again: finished rungs and labels were loaded, not rewritten, and the
    # killed rung kept the records of its finished epochs (their wall-clock seconds included).
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items()) and len(finished) == 3
    resumed = json.loads((cut / "cascade" / "rung-2" / "info.json").read_text())["history"]
    assert resumed[: killed["epoch"] + 1] == killed["history"]
    reports = [json.loads((d / "report.json").read_text()) for d in (tmp_path / "full", cut)]
    assert reports[0]["final"]["test_top1"] == reports[1]["final"]["test_top1"]
    assert [r["name"] for r in reports[1]["rungs"]] == ["teacher", "assistant", "student"]


@pytest.mark.slow
def test_torchrun_two_processes_distill_on_the_cpu(root, tmp_path, env):
    out = tmp_path / "ddp"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kdlab.cli",
         "distill", *map(str, small(root, out, "--method", "kd", "--epochs", 2))],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("kd -> student: test top-1") == 1  # rank 0 alone reports
    state = load_checkpoint(out / "fit" / "checkpoint.pt")
    assert state["settings"]["world_size"] == 2 and state["epoch"] == 1
    report = json.loads((out / "report.json").read_text())
    assert report["student"]["method"] == "kd" and len(report["student"]["history"]) == 2
