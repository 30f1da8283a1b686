"""kdlab.progress: one switch silences every bar (nbval needs it), and bars redraw at most once a second."""

from kdlab.progress import tqdm


def test_kdlab_progress_0_disables_every_bar(monkeypatch):
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    assert tqdm(range(3)).disable
    monkeypatch.setenv("KDLAB_PROGRESS", "1")
    bar = tqdm(range(3))
    assert not bar.disable and bar.mininterval == 1.0
    assert tqdm(range(3), disable=True).disable  # a caller's own switch still wins


import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from kdlab import environment
from kdlab.progress import mode
from kdlab.train import fit

ROOT = Path(__file__).resolve().parents[1]


def _xy(n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


@pytest.mark.parametrize("value, expected", [("", "bars"), ("1", "bars"), ("summary", "summary"), ("0", "off"),
                                             ("off", "off")])
def test_the_three_modes(monkeypatch, value, expected):
    monkeypatch.setenv("KDLAB_PROGRESS", value)
    assert mode() == expected
    assert tqdm(range(3)).disable is (expected != "bars")


def test_summary_mode_prints_one_line_per_finished_training(monkeypatch, capsys):
    monkeypatch.setenv("KDLAB_PROGRESS", "summary")
    fit(nn.Linear(4, 2), _xy(), _xy(), epochs=4, batch_size=8)
    lines = capsys.readouterr()
    out = [line for line in lines.out.splitlines() if line.strip()]
    assert len(out) == 1 and out[0].startswith("fit: epochs 1-4 of 4 in ") and "val/top1" in out[0]
    assert "%|" not in lines.err  # no bar was drawn
    for value in ("0", "1"):  # off: nothing; bars: the bars, no summary line
        monkeypatch.setenv("KDLAB_PROGRESS", value)
        fit(nn.Linear(4, 2), _xy(), epochs=1, batch_size=8)
        assert "fit: epochs" not in capsys.readouterr().out


def test_paths_are_shown_relative_to_the_project():
    assert environment.display_path(environment.project_root() / "data" / "simmotion") == "data/simmotion"
    assert environment.display_path("/somewhere/else/runs") == "/somewhere/else/runs"


NOTEBOOK_CELLS = [
    "import torch\nfrom torch import nn\nfrom torch.utils.data import TensorDataset\n"
    "from kdlab.runs import load_or_train\nfrom kdlab.train import fit\n"
    "x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))\ndata = TensorDataset(x, (x[:, 0] > 0).long())",
    "def train(fit_dir):\n    model = nn.Linear(4, 2)\n    model.arch = {}\n"
    "    history = fit(model, data, data, epochs=6, batch_size=8, out_dir=fit_dir)\n    return model, {}\n"
    "model, info = load_or_train('demo', {'epochs': 6}, train)",
    "for epochs in (2, 3):\n    fit(nn.Linear(4, 2), data, data, epochs=epochs, batch_size=8)",
]


@pytest.mark.slow
def test_executed_copies_show_one_line_per_training_and_relative_paths(tmp_path):
    """What `make notebooks` writes: no frozen "0%" bars, one summary line per training, and no
    absolute path of this machine in the executed notebook or its HTML."""
    project = tmp_path / "course"
    (project / "notebooks").mkdir(parents=True)
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                     "source": src} for i, src in enumerate(NOTEBOOK_CELLS)],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (project / "notebooks" / "01_demo.ipynb").write_text(json.dumps(nb))
    (project / "pyproject.toml").write_text("")  # a checkout: pyproject.toml and a kdlab folder
    (project / "kdlab").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KDLAB_PROGRESS", "KDLAB_RUNS", "KDLAB_DATA")}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--out", "build/notebooks",
                           "notebooks/01_demo.ipynb"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    executed = json.loads((project / "build" / "notebooks" / "01_demo.ipynb").read_text())
    texts = ["".join(o.get("text", "")) + json.dumps(o.get("data", {})) for c in executed["cells"] for o in c["outputs"]]
    shown = "\n".join(texts)
    assert "0%" not in shown and "it/s" not in shown, shown
    fit_lines = [line for line in shown.splitlines() if line.startswith("fit: epochs")]
    assert [line.split(" in ")[0] for line in fit_lines] == ["fit: epochs 1-6 of 6", "fit: epochs 1-2 of 2",
                                                             "fit: epochs 1-3 of 3"]
    assert "training demo into runs/demo-" in shown
    html = (project / "build" / "notebooks" / "01_demo.html").read_text()
    assert str(tmp_path) not in shown and str(tmp_path) not in html
    assert (project / "runs" / "series-runs.txt").read_text().startswith("demo-")
