"""Notebooks are committed without outputs or widget state; the declared environment is complete."""

import json
from pathlib import Path

import pytest

from kdlab.io import tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS, "no numbered notebooks found"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)), f"notebook numbers repeat or are out of order: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name} carries widget state in its metadata"


def test_environment_yml_names_every_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("<")[0].strip() for d in deps["dependencies"] + deps["optional-dependencies"]["test"]]
    env = (ROOT / "environment.yml").read_text()
    missing = [n for n in names if n not in env]
    assert not missing, f"environment.yml lacks {missing}"


SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_solutions.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebooks_match_a_notebook_and_carry_no_outputs(path):
    assert any(p.name[:2] == path.name[:2] for p in NOTEBOOKS), f"{path.name} has no numbered notebook"
    test_notebook_is_committed_without_outputs(path)
