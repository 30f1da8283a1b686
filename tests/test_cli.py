"""The kdlab command: clear errors, and kill-and-resume of `kdlab train` ending with the same weights."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from kdlab.data import generate_dataset
from kdlab.io import load_checkpoint

CLASSES = ["MoveLeft", "MoveRight", "MoveUp"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("cli") / "sim", classes=CLASSES, train_per_class=12,
                            test_per_class=4, progress=False)


def kdlab(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "kdlab.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


EPOCHS = 8  # enough that a quiet machine cannot finish the run between the first checkpoint and the kill


def train_args(root, out, epochs=EPOCHS):
    return ["train", "--data", root, "--out", out, "--labels", "all", "--epochs", epochs, "--batch-size", 4,
            "--model", "student"]


def test_help_explains_each_command():
    for command in ("data", "train"):
        result = kdlab(command, "--help")
        assert result.returncode == 0 and "usage: kdlab " + command in result.stdout


def test_bad_input_exits_non_zero_with_a_message(tmp_path, tiny_root):
    result = kdlab("train", "--data", tmp_path / "missing", "--out", tmp_path / "o")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = kdlab("train", "--data", tiny_root, "--out", tmp_path / "o", "--model", "resnet9000")
    assert result.returncode == 2 and "unknown model 'resnet9000'" in result.stderr
    config = tmp_path / "bad.toml"
    config.write_text('[train]\nepochz = 3\n')
    result = kdlab("train", "--config", config, "--out", tmp_path / "o")
    assert result.returncode == 2 and "unknown keys" in result.stderr and "epochz" in result.stderr
    result = kdlab("train", "--data", tiny_root)
    assert result.returncode == 2 and "--out" in result.stderr


@pytest.mark.slow
def test_killed_train_resumes_to_the_same_weights(tmp_path, tiny_root):
    full = kdlab(*train_args(tiny_root, tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-2000:]
    assert "test top-1" in full.stdout

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "kdlab.cli", *map(str, train_args(tiny_root, cut))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (cut / "fit" / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # into the next epoch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted_at = load_checkpoint(cut / "fit" / "checkpoint.pt")["epoch"]
    assert interrupted_at < EPOCHS - 1, "the run finished before it could be interrupted"

    again = kdlab(*train_args(tiny_root, cut))
    assert again.returncode == 0, again.stderr[-2000:]
    a = load_checkpoint(tmp_path / "full" / "fit" / "checkpoint.pt")  # kdlab train's engine folder, as distill's
    b = load_checkpoint(cut / "fit" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS - 1
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["history"][-1]["val/top1"] == b["history"][-1]["val/top1"]
