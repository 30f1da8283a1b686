"""Shared pytest setup: deterministic, small, CPU-only by default."""

import os

import pytest
import torch

# Two cores on CI: keep torch from oversubscribing them when pytest and a loader run together.
torch.set_num_threads(int(os.environ.get("KDLAB_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def fresh_runs(monkeypatch, tmp_path):
    """A run cache of this test's own (``KDLAB_RUNS=<tmp_path>/runs``): nothing trained by another
    test is loaded, and nothing this test trains outlives it."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("KDLAB_RUNS", str(runs))
    return runs


@pytest.fixture
def fit_spy(monkeypatch, fresh_runs):
    """``fit_spy(*modules, record=f)`` replaces ``fit`` in each module (where the training code
    calls it) with a wrapper that appends ``f(kwargs)`` of every call (default: the keyword
    arguments themselves) to a list and then trains as usual; returns the list. Runs go to a
    fresh run cache."""

    def watch(*modules, record=lambda kwargs: kwargs) -> list:
        calls: list = []
        for module in modules:
            def spy(*args, _real=module.fit, **kwargs):
                calls.append(record(kwargs))
                return _real(*args, **kwargs)

            monkeypatch.setattr(module, "fit", spy)
        return calls

    return watch
