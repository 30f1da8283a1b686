"""A small artifact cache: trained models stored under a key derived from their full configuration.

Any notebook or script can ask for "the teacher for this configuration" and gets the stored one,
or trains it (resuming an interrupted training) and stores it. This is how each notebook runs
alone in a fresh kernel without retraining what an earlier notebook already trained.

Layout: ``<runs_dir>/<kind>-<key>/`` holds ``config.json``, ``fit/`` (the engine's checkpoints while
training), and once finished ``model.pt`` (weights + architecture) and ``info.json`` (metrics).
``model.pt`` is written last, so a folder without it is an unfinished run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from torch import nn

from kdlab.environment import display_path, runs_dir
from kdlab.artifacts import note_run
from kdlab.io import atomic_save, atomic_write_text, load_checkpoint
from kdlab.models import model_from_arch
from kdlab.runfolder import claim_folder  # noqa: F401  (its old home; kdlab.runfolder holds it now)
from kdlab.train import unwrap


def run_key(config: dict) -> str:
    """A short stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_folder(kind: str, config: dict, root: str | Path | None = None) -> Path:
    return Path(root or runs_dir()) / f"{kind}-{run_key(config)}"


def load_model(folder: str | Path) -> tuple[nn.Module, dict]:
    """The finished model stored in ``folder`` and its ``info``."""
    folder = Path(folder)
    state = load_checkpoint(folder / "model.pt")
    model = model_from_arch(state["arch"])
    model.load_state_dict(state["model"])
    info = json.loads((folder / "info.json").read_text()) if (folder / "info.json").exists() else {}
    return model, info


def save_model(folder: str | Path, model: nn.Module, info: dict) -> None:
    folder = Path(folder)
    atomic_write_text(folder / "info.json", json.dumps(info, indent=1, default=str))
    model = unwrap(model)
    atomic_save({"model": model.state_dict(), "arch": model.arch}, folder / "model.pt")


def is_finished(kind: str, config: dict, root=None) -> bool:
    return (run_folder(kind, config, root) / "model.pt").is_file()


def load_or_train(kind: str, config: dict, train: Callable[[Path], tuple[nn.Module, dict]], *,
                  root: str | Path | None = None, retrain: bool = False, verbose: bool = True) -> tuple[nn.Module, dict]:
    """Return the stored model for ``(kind, config)`` or call ``train(fit_dir)`` and store its result.

    ``train`` receives a folder for the engine's checkpoints (so an interrupted training resumes)
    and returns ``(model, info)``; ``info`` is a JSON-serialisable dict of metrics.
    """
    folder = run_folder(kind, config, root)
    note_run(folder)
    if retrain and (folder / "model.pt").exists():
        (folder / "model.pt").unlink()
    if (folder / "model.pt").is_file():
        model, info = load_model(folder)
        if verbose:
            print(f"loaded {kind} from {display_path(folder)} (trained before; nothing to train)")
        return model, info
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=1, sort_keys=True, default=str))
    if verbose:
        print(f"training {kind} into {display_path(folder)}")
    model, info = train(folder / "fit")
    save_model(folder, model, info)
    return model, info
