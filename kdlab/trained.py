"""One way to train and report a run: fit, then test the last epoch and the best-validation epoch.

Every trained model of kdlab (a teacher, a distilled student of any method, a cascade rung) goes
through :func:`train_and_report`, and every run's ``info`` starts from :meth:`TrainedRun.info`,
so "test top-1" means the same thing everywhere: the last epoch's weights, with the weights of the
best validation epoch reported beside them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from torch import nn
from torch.utils.data import Dataset

from kdlab.models import count_parameters
from kdlab.train import History, evaluate, fit


@dataclass
class TrainedRun:
    """What :func:`train_and_report` returns.

    model: the trained model (last epoch's weights). history: fit's :class:`~kdlab.train.History`.
    seconds: wall time of fit. test, best_test: :func:`~kdlab.train.evaluate` on the test data of
    the last epoch's weights and of the best validation epoch's (None when not evaluated).
    """

    model: nn.Module
    history: History
    seconds: float
    test: dict | None
    best_test: dict | None

    def info(self) -> dict:
        """The entries every run reports: ``val_top1``, ``test_top1`` (last epoch), ``best_epoch``,
        ``best_val_top1``, ``best_epoch_test_top1``, ``params``, ``train_seconds``, ``history``,
        ``confusion`` (the last epoch's, K x K)."""
        history = self.history
        return {
            "val_top1": history.last.get("val/top1"), "test_top1": self.test["top1"],
            "best_epoch": history.best_epoch, "best_val_top1": history.best["val/top1"],
            "best_epoch_test_top1": self.best_test["top1"], "params": count_parameters(self.model),
            "train_seconds": self.seconds, "history": history.records, "confusion": self.test["confusion"],
        }


def train_and_report(model: nn.Module, train_set: Dataset, val_set: Dataset, test_set: Dataset, *,
                     build: Callable[[], nn.Module], evaluate_test: bool = True, **fit_options) -> TrainedRun:
    """``fit(model, train_set, val_set, **fit_options)``, then (``evaluate_test``) evaluate the last
    epoch's weights on ``test_set`` and the best validation epoch's, loaded into ``build()`` (a
    fresh model of the same architecture). Clips are (B, 3, T, H, W) as the datasets give them."""
    tic = time.perf_counter()
    history = fit(model, train_set, val_set, **fit_options)
    seconds = time.perf_counter() - tic
    if not evaluate_test:
        return TrainedRun(model, history, seconds, None, None)
    test = evaluate(model, test_set)
    best = build()
    best.load_state_dict(history.best_state)
    return TrainedRun(model, history, seconds, test, evaluate(best, test_set))
