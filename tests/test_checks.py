"""kdlab.check: a visible line in class, an AssertionError under tests and CI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kdlab
from kdlab.checks import CheckFailed, strict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def classroom(monkeypatch):
    monkeypatch.delenv("KDLAB_STRICT", raising=False)
    monkeypatch.delenv("CI", raising=False)


def test_in_class_a_check_prints_its_line_and_never_raises(classroom, capsys):
    assert kdlab.check("two and two make four", 2 + 2 == 4) is True
    assert kdlab.check("two and two make five", 2 + 2 == 5, detail="got 4") is False
    assert capsys.readouterr().out.splitlines() == ["✓ two and two make four", "✗ two and two make five (got 4)"]


def test_strict_mode_raises_an_assertion_error_naming_the_claim(classroom, monkeypatch, capsys):
    monkeypatch.setenv("KDLAB_STRICT", "1")
    assert kdlab.check("a true claim", True, detail="unused")
    with pytest.raises(AssertionError, match="the teacher beats chance .41.0 %.") as caught:
        kdlab.check("the teacher beats chance", False, detail="41.0 %")
    assert isinstance(caught.value, CheckFailed)
    assert capsys.readouterr().out.splitlines() == ["✓ a true claim", "✗ the teacher beats chance (41.0 %)"]


@pytest.mark.parametrize("env, expected", [
    ({}, False), ({"KDLAB_STRICT": "1"}, True), ({"KDLAB_STRICT": "yes"}, True), ({"CI": "true"}, True),
    ({"CI": "true", "KDLAB_STRICT": "0"}, False), ({"CI": "false"}, False), ({"KDLAB_STRICT": "off"}, False),
])
def test_the_strict_switch(classroom, monkeypatch, env, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert strict() is expected


def test_tensors_and_numpy_bools_are_claims(classroom, capsys):
    import numpy as np
    import torch

    assert kdlab.check("a 0-d tensor", torch.tensor(1.0) > 0) and not kdlab.check("a numpy bool", np.bool_(False))


def test_pytest_runs_are_strict_by_default():
    """The project's conftest.py makes every pytest run (and the nbval kernels it starts) strict."""
    assert os.environ.get("KDLAB_STRICT") == "1" or os.environ.get("KDLAB_STRICT", "").lower() in {"true", "yes", "on"}


def test_make_test_runs_the_notebooks_strictly():
    makefile = (ROOT / "Makefile").read_text()
    nbval = [line for line in makefile.splitlines() if "--nbval" in line]
    assert nbval and all("KDLAB_STRICT=1" in line for line in nbval)


def _notebook(path: Path, claim_holds: bool) -> Path:
    cells = [
        "from kdlab import check",
        f"check('the claim of this notebook', {claim_holds}, detail='measured: 1')",
        "print('the run went on')",
    ]
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                     "source": src} for i, src in enumerate(cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def _nbval(notebook: Path, strict_value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KDLAB_STRICT": strict_value}
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                           "--rootdir", str(notebook.parent), str(notebook)],
                          cwd=notebook.parent, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_nbval_fails_on_a_broken_claim_only_in_strict_mode(tmp_path):
    """What `make test` runs (nbval, KDLAB_STRICT=1) fails on a notebook whose claim is false,
    passes when it holds, and in class (KDLAB_STRICT=0) the same broken notebook runs to its end."""
    broken = _notebook(tmp_path / "broken.ipynb", claim_holds=False)
    sound = _notebook(tmp_path / "sound.ipynb", claim_holds=True)
    failed = _nbval(broken, "1")
    assert failed.returncode != 0 and "check failed: the claim of this notebook" in failed.stdout, failed.stdout
    assert _nbval(sound, "1").returncode == 0
    assert _nbval(broken, "0").returncode == 0


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_solutions.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_state_claims_with_check_not_assert(path):
    """A bare assert stops "Run All" in class; kdlab.check prints the claim and raises only when strict."""
    import re

    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    code = "\n".join("".join(c["source"]) for c in cells)
    asserts = [line.strip() for line in code.splitlines() if re.match(r"\s*assert\b", line)]
    assert not asserts, f"{path.name}: use kdlab.check(claim, ok) instead of {asserts[:3]}"
    if path.parent.name == "notebooks":  # a lesson states its claims; a solution may have none
        assert "check(" in code
