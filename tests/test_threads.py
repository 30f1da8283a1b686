"""kdlab's thread setting: every CPU by default, KDLAB_THREADS overrides, notebooks apply it."""

import json
import os
from pathlib import Path

import pytest
import torch

import kdlab
from kdlab import environment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_every_cpu_by_default(monkeypatch):
    monkeypatch.delenv("KDLAB_THREADS", raising=False)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert environment.threads() == expected


def test_kdlab_threads_overrides(monkeypatch):
    monkeypatch.setenv("KDLAB_THREADS", "3")
    assert environment.threads() == 3


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("KDLAB_THREADS", value)
    with pytest.raises(ValueError, match="KDLAB_THREADS"):
        environment.threads()


def test_setup_notebook_applies_the_setting(monkeypatch, restore_threads, capsys):
    monkeypatch.setenv("KDLAB_THREADS", "1")
    assert kdlab.setup_notebook() == 1 and torch.get_num_threads() == 1
    assert "1 thread" in capsys.readouterr().out
    monkeypatch.setenv("KDLAB_THREADS", "2")
    assert kdlab.setup_notebook(verbose=False) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name[:2])
def test_notebooks_take_threads_from_kdlab_not_a_number(path):
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "set_num_threads" not in code and "setup_notebook()" in code
