"""``scripts/run_notebooks.py`` (``make notebooks``): the executor that writes the executed copies.

nbval (``make test``) and JupyterLab talk to the kernel differently from nbclient, which
``make notebooks`` uses; an explorer that drew inside ``with output:`` once made nbclient wait out
the whole cell timeout on notebook 00 (kdlab.viz._widget.show_in), and only this path showed it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240


@pytest.mark.slow
def test_notebook_00_with_its_explorers_runs_through_the_series_executor(tmp_path):
    out = tmp_path / "executed"
    env = {**os.environ, "KDLAB_QUICK": "1", "KDLAB_RUNS": str(tmp_path / "runs")}
    done = subprocess.run([sys.executable, "scripts/run_notebooks.py", "--out", str(out), "--timeout", str(TIMEOUT),
                           "notebooks/00_data_tour.ipynb"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    timings = json.loads((out / "timings.json").read_text())
    assert timings["failed"] == [] and timings["mode"] == "quick"
    # The wait is on the client's side (the kernel's reply is stamped on time), so only the wall
    # time shows it: notebook 00 takes well under a minute in quick mode, a waited-out cell at
    # least the whole timeout. Not a speed test: the margin is the timeout itself.
    assert timings["00_data_tour.ipynb"] < TIMEOUT, f"notebook 00 took {timings['00_data_tour.ipynb']} s"
    nb = nbformat.read(out / "00_data_tour.ipynb", as_version=4)
    assert all(o.get("output_type") != "error" for c in nb.cells for o in c.get("outputs", []))
    assert (out / "00_data_tour.html").is_file()
