"""The small shared helpers: eval_mode, the leaf errors module, one atomic-write path."""

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from kdlab.errors import UsageError
from kdlab.modes import eval_mode

KDLAB = Path(__file__).resolve().parents[1] / "kdlab"


def test_eval_mode_restores_each_modules_own_flag():
    model = nn.Sequential(nn.Conv1d(2, 2, 1), nn.BatchNorm1d(2), nn.Dropout(0.5))
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a training model stays frozen
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_eval_mode_restores_after_an_error_and_skips_none():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2).eval()
    with pytest.raises(RuntimeError), eval_mode(a, None, b):
        assert not a.training
        raise RuntimeError("boom")
    assert a.training and not b.training


def test_eval_mode_changes_no_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()
    x = torch.randn(3, 4)
    with eval_mode(model):
        inside = model(x)
    assert torch.equal(inside, model(x))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_command_modules_share_their_error_without_an_import_cycle():
    assert "kdlab.cli" not in _imports(KDLAB / "bench" / "cli.py")
    assert _imports(KDLAB / "errors.py") <= {"__future__"}
    import kdlab.bench.cli
    import kdlab.cli

    assert kdlab.cli.UsageError is UsageError


def test_files_are_renamed_into_place_only_by_kdlab_io():
    """Every file kdlab writes goes through kdlab.io (one temporary-file naming, the umask kept).
    The exceptions rename whole folders (a generated dataset, a teacher cache, unpacked artifact
    entries) or a memory map that kdlab.io cannot write."""
    allowed = {"io.py", "data/synthetic.py", "distill/teacher_cache.py", "data/cache.py", "artifacts.py"}
    users = {str(p.relative_to(KDLAB)) for p in KDLAB.rglob("*.py")
             if "os.replace(" in p.read_text() or "mkstemp(" in p.read_text()}
    assert users <= allowed, sorted(users - allowed)
