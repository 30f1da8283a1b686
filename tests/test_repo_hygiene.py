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


LIBRARY = ROOT / "kdlab"
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """kdlab modules imported at the top level of ``path`` (imports inside functions run later
    and cannot form an import cycle)."""
    import ast

    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdlab"):
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
            found |= {node.module} & modules
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & modules
    return found


def test_no_library_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in LIBRARY.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these by concern: {long}"


def test_the_library_has_no_import_cycle():
    paths = {_module_name(p): p for p in LIBRARY.rglob("*.py")}
    graph = {name: _module_level_imports(path, set(paths)) - {name} for name, path in paths.items()}

    def is_package_of(a: str, b: str) -> bool:  # a package importing its own submodule is no cycle
        return b.startswith(a + ".") or a.startswith(b + ".")

    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for dep in graph[name]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                if not any(is_package_of(a, b) for a, b in zip(cycle, cycle[1:])):
                    cycles.append(" -> ".join(cycle))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    assert not cycles, cycles
