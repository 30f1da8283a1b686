"""The running pseudo-labels of one training set, re-refined as newer models arrive."""

from __future__ import annotations

import inspect

import torch

from .ensemble import Predictions, predict
from .refine import check_settings, ema, refine
from .result import PseudoLabels
from .weak import WeakLabels


class PseudoLabeler:
    """Keeps the running ensemble probabilities of a weakly labelled training set and refines them.

    One-shot::

        labeler = PseudoLabeler(weak, temperature=T, tau=0.9)   # T from fit_temperature on validation
        pl = labeler.step(teacher, splits.train_eval, clips=4)   # predict, remember, refine
        pl.metrics(weak.true)

    After every cascade step, ``labeler.step(new_model, ...)`` folds the newer model's
    probabilities into the running ones with :func:`ema` (``momentum``) and refines again;
    the kNN graph uses the newest model's embeddings. ``predict``/``update``/``refine`` are the
    separate parts of ``step``. Refinement settings are those of :func:`refine`.
    """

    def __init__(self, weak: WeakLabels, *, momentum: float = 0.5, **settings):
        unknown = set(settings) - set(inspect.signature(refine).parameters) | ({"predictions", "weak"} & set(settings))
        if unknown:
            valid = [p for p in inspect.signature(refine).parameters if p not in ("predictions", "weak")]
            raise TypeError(f"unknown refinement setting(s) {sorted(unknown)}; valid: {valid}")
        check_settings(**settings)
        self.weak, self.momentum, self.settings = weak, float(momentum), settings
        self.state: Predictions | None = None
        self.rounds = 0

    def predict(self, model, dataset, **kwargs) -> Predictions:
        """:func:`kdlab.pseudo.predict` (does not change the running state)."""
        return predict(model, dataset, **kwargs)

    def update(self, new: Predictions | torch.Tensor, momentum: float | None = None) -> Predictions:
        """Fold ``new`` into the running state: the first time it becomes the state; afterwards
        ``probs <- m * probs + (1 - m) * new`` (``new``: Predictions over the same videos, or
        probabilities (n, C) in the state's row order). Returns the state."""
        m = self.momentum if momentum is None else float(momentum)
        if self.state is None:
            if not isinstance(new, Predictions):
                raise TypeError("the first update needs Predictions (with indices and embeddings), not a tensor")
            self.state, self.rounds = new, 1
            return self.state
        s = self.state
        if isinstance(new, Predictions):
            if not torch.equal(new.index, s.index):
                raise ValueError("new predictions cover other videos (or another order) than the running state; "
                                 "predict on the same dataset")
            embeddings = new.embeddings if new.embeddings is not None else s.embeddings
            newest = Predictions(new.probs, new.members, embeddings, s.index, new.views, new.clips, new.blind_flip)
        else:
            newest = Predictions(new, s.members, s.embeddings, s.index, s.views, s.clips, s.blind_flip)
        # Only probs are averaged; members, embeddings and views are the newest model's.
        self.state = Predictions(ema(s.probs, newest.probs, m), newest.members, newest.embeddings, s.index,
                                 newest.views, newest.clips, newest.blind_flip)
        self.rounds += 1
        return self.state

    def refine(self, predictions: Predictions | None = None, **overrides) -> PseudoLabels:
        """Refine ``predictions`` (default: the running state) with this labeler's settings (+ overrides)."""
        predictions = predictions if predictions is not None else self.state
        if predictions is None:
            raise RuntimeError("nothing to refine yet: call step(model, dataset) or update(predictions) first")
        return refine(predictions, self.weak, **{**self.settings, **overrides})

    def step(self, model, dataset, momentum: float | None = None, **predict_kwargs) -> PseudoLabels:
        """``predict`` with ``model``, ``update`` the running state, ``refine`` it."""
        self.update(self.predict(model, dataset, **predict_kwargs), momentum)
        return self.refine()

    def state_dict(self) -> dict:
        """The running state as plain tensors and values (for :func:`torch.save`, loadable with
        ``weights_only=True``): ``probs`` (n, C), ``members`` (n, V, K, C), ``embeddings`` (n, D) or
        None, ``index`` (n,), ``views``, ``clips``, ``blind_flip`` and ``rounds``."""
        s = self.state
        if s is None:
            raise RuntimeError("nothing to save yet: call step(model, dataset) or update(predictions) first")
        return {"probs": s.probs, "members": s.members, "embeddings": s.embeddings, "index": s.index,
                "views": list(s.views), "clips": s.clips, "blind_flip": s.blind_flip, "rounds": self.rounds}

    def load_state_dict(self, state: dict) -> None:
        """Restore the running state saved by :meth:`state_dict` (extra keys are ignored)."""
        self.state = Predictions(state["probs"], state["members"], state["embeddings"], state["index"],
                                 tuple(state["views"]), state["clips"], state["blind_flip"])
        self.rounds = state["rounds"]

    def __repr__(self) -> str:
        return f"PseudoLabeler(rounds={self.rounds}, momentum={self.momentum}, settings={self.settings})"
