"""Train/eval mode of modules, switched for a block and restored afterwards.

A leaf module (it imports only torch): every place that runs a model in eval mode for a moment
(evaluation, FLOP counting, probes, pseudo-label prediction, widgets) goes through
:func:`eval_mode`, so all of them restore the same way.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*models: nn.Module | None) -> Iterator[None]:
    """Put ``models`` (None entries are skipped) in eval mode for the block; afterwards restore
    *each* submodule's own ``training`` flag (a BatchNorm frozen in eval inside a training model
    stays frozen), also when the block raises. Does not touch gradients: combine with
    ``torch.no_grad()`` where none are needed."""
    modes = {m: m.training for model in models if model is not None for m in model.modules()}
    try:
        for model in models:
            if model is not None:
                model.eval()
        yield
    finally:
        for module, training in modes.items():
            module.training = training
