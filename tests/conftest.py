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
