"""Observe substages: capture the outputs of named modules during a forward pass.

A kdlab model is ``stem -> stage1 .. stageS -> head`` and lists its stages in
``model.stage_names``. :class:`SubstageTap` registers one forward hook per named module, keeps
what each returns, and removes every hook when the ``with`` block ends (also when the forward
raises), so a forgotten hook can never slow down or leak memory from a later run::

    with SubstageTap(model) as tap:
        logits = model(clips)              # clips: (B, 3, T, H, W)
    tap["stage2"].shape                    # (B, C2, T2, H2, W2)

The same tap works on a torchvision video net given its own names
(``SubstageTap(r3d, ["stem", "layer1", "layer2", "layer3", "layer4"])``) and on a model wrapped
in ``DistributedDataParallel`` / ``DataParallel``: names are accepted with or without the
wrapper's ``module.`` prefix, and features are always keyed without it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["SubstageTap", "capture", "default_stage_names", "resolve_modules", "unwrap"]

# Attributes through which wrappers expose the model they wrap: DDP / DataParallel use
# ``module``, torch.compile's OptimizedModule uses ``_orig_mod``.
_WRAPPER_ATTRS = {
    "DistributedDataParallel": "module",
    "DataParallel": "module",
    "OptimizedModule": "_orig_mod",
}


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP / DataParallel / torch.compile wrappers (``model`` itself if none)."""
    while type(model).__name__ in _WRAPPER_ATTRS:
        model = getattr(model, _WRAPPER_ATTRS[type(model).__name__])
    return model


def _strip_wrapper_prefix(model: nn.Module, name: str) -> str:
    """Drop the ``module.`` (or ``_orig_mod.``) prefixes a wrapper adds to module names."""
    while type(model).__name__ in _WRAPPER_ATTRS:
        attr = _WRAPPER_ATTRS[type(model).__name__]
        if name.startswith(attr + "."):
            name = name[len(attr) + 1 :]
        model = getattr(model, attr)
    return name


def default_stage_names(model: nn.Module) -> list[str]:
    """``model.stage_names`` (looked up through wrappers), or an error that says what to pass."""
    inner = unwrap(model)
    names = getattr(inner, "stage_names", None)
    if names is None:
        children = [n for n, _ in inner.named_children()]
        raise ValueError(
            f"{type(inner).__name__} has no `stage_names` attribute, so there is no default set of "
            f"substages: pass names=[...] explicitly. Its top-level modules are: {', '.join(children)}"
        )
    return list(names)


def resolve_modules(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """Map each dotted name (with or without a wrapper's ``module.`` prefix) to its module.

    Returns a dict keyed by the canonical name (without the prefix), in the order given.
    Raises ``KeyError`` naming the unknown name, the closest matches and every valid name.
    """
    inner = unwrap(model)
    modules = dict(inner.named_modules())
    resolved: dict[str, nn.Module] = {}
    for raw in names:
        if not isinstance(raw, str):
            raise TypeError(f"module names must be strings, got {raw!r} ({type(raw).__name__})")
        name = _strip_wrapper_prefix(model, raw)
        if name not in modules or name == "":
            valid = [n for n in modules if n]
            close = difflib.get_close_matches(name, valid, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(
                f"no module named {raw!r} in {type(inner).__name__}.{hint} "
                f"Valid names (model.named_modules()): {', '.join(valid)}"
            )
        resolved[name] = modules[name]
    return resolved


class SubstageTap:
    """Context manager that records the outputs of named modules on every forward pass.

    Args:
        model: any ``nn.Module``; DDP / DataParallel / torch.compile wrappers are looked through.
        names: dotted module names (``"stage1"``, ``"layer3.1.conv2"``, ``"module.stage1"``).
            Default: ``model.stage_names``.
        detach: store ``output.detach()`` instead of the output itself. Keep the default
            (False) when a loss is built on the features; use True for inspection only.

    After a forward, ``tap.features`` is a dict ``name -> tensor`` (for video stages
    (B, C, T, H, W)) in the order of ``names``, and ``tap[name]`` gives one of them (either
    spelling of a wrapped name). Each forward overwrites the previous values; a module called
    twice in one forward keeps its last output. The tap may stay open across many training
    steps: its only per-step cost is one dict assignment per tapped module.

    The stored tensors are the modules' own outputs, not copies: if a later module modifies
    one in place (e.g. ``nn.ReLU(inplace=True)`` as the first op of the next stage), the
    captured value changes with it. Tap a module whose output is not overwritten, or clone.
    """

    def __init__(self, model: nn.Module, names: Iterable[str] | None = None, detach: bool = False):
        self.model = model
        self.detach = detach
        if isinstance(names, str):
            raise TypeError(f"names must be a list of module names, got the string {names!r}")
        raw = default_stage_names(model) if names is None else list(names)
        if not raw:
            raise ValueError("SubstageTap needs at least one module name")
        # Resolve now, so that a wrong name fails before any forward pass runs.
        self._modules = resolve_modules(model, raw)
        self.names: list[str] = list(self._modules)
        self._store: dict[str, Any] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    # -- hooks -------------------------------------------------------------------------------
    def _make_hook(self, name: str):
        store, detach = self._store, self.detach

        def hook(module, inputs, output):
            store[name] = output.detach() if detach and isinstance(output, torch.Tensor) else output

        return hook

    def attach(self) -> "SubstageTap":
        """Register the hooks (what ``with`` does on entry). Fails if already attached."""
        if self._handles:
            raise RuntimeError("this SubstageTap is already attached; use a new tap or remove() first")
        self._store.clear()
        try:
            for name, module in self._modules.items():
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Remove every hook this tap registered. Safe to call more than once."""
        while self._handles:
            self._handles.pop().remove()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def __enter__(self) -> "SubstageTap":
        return self.attach()

    def __exit__(self, exc_type, exc, tb) -> None:
        # Runs on normal exit and when the forward (or anything in the block) raised;
        # returning None lets the exception propagate.
        self.remove()

    # -- results -----------------------------------------------------------------------------
    @property
    def features(self) -> dict[str, Any]:
        """Captured outputs ``name -> tensor`` in the order of ``names`` (only those seen so far)."""
        return {n: self._store[n] for n in self.names if n in self._store}

    def __getitem__(self, name: str) -> Any:
        key = _strip_wrapper_prefix(self.model, name)
        if key not in self._store:
            if key in self.names:
                raise KeyError(f"{name!r} has not produced an output yet: run a forward pass inside the tap")
            raise KeyError(f"{name!r} is not tapped; tapped modules: {', '.join(self.names)}")
        return self._store[key]

    def __contains__(self, name: str) -> bool:
        return _strip_wrapper_prefix(self.model, name) in self._store

    def clear(self) -> None:
        """Forget the captured outputs (and the autograd graphs they keep alive)."""
        self._store.clear()

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """``name -> tuple(shape)`` of the captured tensors, handy for a shape table."""
        return {n: tuple(v.shape) for n, v in self.features.items() if isinstance(v, torch.Tensor)}

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"SubstageTap({type(unwrap(self.model)).__name__}, names={self.names}, {state})"


def capture(
    model: nn.Module, x: torch.Tensor, names: Iterable[str] | None = None, detach: bool = False
) -> tuple[Any, dict[str, Any]]:
    """One forward of ``model`` on ``x`` (B, 3, T, H, W); returns ``(output, features)``.

    ``x`` is moved to the device of the model's parameters first (clips come from a CPU loader,
    while ``fit`` leaves a model on the GPU when there is one); output and features stay there.
    """
    param = next(model.parameters(), None)
    if param is not None and x.device != param.device:
        x = x.to(param.device)
    with SubstageTap(model, names, detach=detach) as tap:
        out = model(x)
    return out, tap.features
