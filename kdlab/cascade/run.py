"""The cascade itself: train the rungs of a ladder one after another, resuming from a run folder.

Layout of ``out_dir`` (every file written atomically; rank 0 alone writes under torchrun)::

    cascade.json              the configuration; a run with another one is refused
    pseudo/after-<k>.pt       the running ensemble after rung k (0: the teacher):
                              PseudoLabeler.state_dict() and the temperature
    rung-<k>/fit/             the engine's per-epoch checkpoints while rung k trains
    rung-<k>/model.pt, info.json   written when rung k is finished
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from kdlab.artifacts import note_run
from kdlab.environment import display_path, runs_dir
from kdlab.correlation import substage_correlation
from kdlab.distill import weights_digest
from kdlab.distill.methods import METHODS
from kdlab.teachers import default_epochs
from kdlab.weak_splits import Splits
from kdlab.hooks import unwrap
from kdlab.io import atomic_save, load_checkpoint
from kdlab.models import VideoNetSpec, count_flops, count_parameters
from kdlab.progress import tqdm
from kdlab.protocol import check_teacher
from kdlab.pseudo import PseudoLabeler, PseudoLabels, WeakLabels, fit_temperature, predict
from kdlab.runfolder import claim_folder
from kdlab.runs import load_model, run_key, save_model
from kdlab.train import distributed, evaluate

from .ladder import rung_names
from .result import CascadeResult
from .rung import train_rung

CONFIG = "cascade.json"


@dataclass(frozen=True)
class Mode:
    """A cascade mode: ``teachers(k)`` lists the earlier rungs (0: the teacher) that rung k >= 1
    learns from; one teacher trains with the method's objective, several with
    :class:`~kdlab.distill.dense.DenseDistillation`. ``help`` is the one line the CLI shows."""

    teachers: Callable[[int], list[int]]
    help: str


#: The cascade modes by name. Adding one is one entry here (and its test).
MODES: dict[str, Mode] = {
    "chain": Mode(lambda k: [k - 1], "each rung learns from the previous one (TAKD-style)"),
    "dense": Mode(lambda k: list(range(k)), "each rung learns from every earlier rung (DGKD-style)"),
}


# ----------------------------------------------------------------------------- records

def _matrix(corr) -> dict:
    return {"matrix": corr.R.tolist(), "student": list(corr.student_names), "teacher": list(corr.teacher_names)}


def _last_pairing(history: list[dict], prefix: str = "W") -> dict | None:
    from kdlab.students import matrices_from_history

    epochs, matrices, s, t = matrices_from_history(history, prefix)
    if not matrices:
        return None
    return {"matrix": matrices[-1].tolist(), "student": s, "teacher": t, "epoch": epochs[-1]}


def _pseudo_metrics(pl: PseudoLabels, weak: WeakLabels) -> dict:
    keep = ("coverage", "accuracy", "pseudo_coverage", "pseudo_accuracy", "full_accuracy", "corrections",
            "corrections_right", "dropped", "noisy_given", "noisy_fixed", "given_accuracy_after", "ece")
    m = pl.metrics(weak.true)
    return {k: m[k] for k in keep}


def _key(options: dict):
    from kdlab.students import key_of

    return key_of(options, "options")


# ----------------------------------------------------------------------------- pseudo-labels

class PseudoRounds:
    """The cascade's running pseudo-labels: refined after the teacher (round 0) and after each rung.

    :meth:`after` folds a model's multi-view predictions on ``videos`` into ``labeler`` and refines;
    the labeler's :meth:`~kdlab.pseudo.PseudoLabeler.state_dict` and the temperature (fitted once, on
    validation, with the first model) are saved to ``folder/after-<k>.pt`` and read back on resume.
    """

    def __init__(self, labeler: PseudoLabeler, splits: Splits, videos: Dataset, folder: Path, *, clips: int,
                 temperature: float | None, show: bool, write: bool):
        self.labeler, self.splits, self.videos, self.folder = labeler, splits, videos, folder
        self.clips, self.fixed_temperature, self.show, self.write = clips, temperature, show, write
        self.temperature: float | None = None
        self.history: list[PseudoLabels] = []

    def after(self, k: int, model: nn.Module) -> PseudoLabels:
        path = self.folder / f"after-{k}.pt"
        if path.is_file():
            state = load_checkpoint(path)
            self.labeler.load_state_dict(state)
            self.temperature = float(state["temperature"])
        else:
            if self.temperature is None:
                val_true = torch.tensor([self.splits.labels[i] for i in self.splits.val])
                self.temperature = self.fixed_temperature or fit_temperature(
                    predict(model, self.splits.val_set(), clips=self.clips), val_true)
            self.labeler.update(predict(model, self.videos, clips=self.clips, progress=self.show))
            if self.write:
                atomic_save({**self.labeler.state_dict(), "temperature": self.temperature}, path)
        pl = self.labeler.refine(temperature=self.temperature)
        self.history.append(pl)
        return pl

    def keep(self) -> PseudoLabels:
        """A round without refinement: the last pseudo-labels again."""
        self.history.append(self.history[-1])
        return self.history[-1]


# ----------------------------------------------------------------------------- the cascade

def cascade(splits: Splits, teacher: nn.Module, rungs: Sequence[VideoNetSpec], *, mode: str = "chain",
            method: str = "skd", epochs: int | None = None, seed: int = 0, views: int | None = None,
            out_dir: str | Path | None = None, pseudo: bool = True, refine_pseudo: bool = True,
            weak: WeakLabels | None = None, clips: int = 2, pseudo_settings: dict | None = None,
            momentum: float = 0.5, lr: float = 2e-3, batch_size: int = 16, cache_dir: str | Path | None = None,
            progress: bool = True, allow_label_leak: bool = False, amp: bool = False,
            log_dir: str | Path | None = None, **options) -> CascadeResult:
    """Train the rungs ``rungs[1:]`` of a ladder one after another, each distilled with ``method``.

    Args:
        splits: the data (label budget, unlabelled videos, validation, test).
        teacher: the trained teacher; it stands for ``rungs[0]`` (which only names its place) and
            is never trained here.
        rungs: the ladder, e.g. ``capacity_ladder(SPECS["teacher"], SPECS["student"], steps=1)``.
        mode: a name of :data:`MODES`: "chain" (rung k learns from rung k-1) or "dense" (from every
            earlier rung, see :class:`~kdlab.distill.dense.DenseDistillation`).
        method: a key of :data:`kdlab.distill.METHODS` other than "scratch" ("kd", "skd", ...);
            ``options`` override its preset (any :class:`~kdlab.distill.Distillation` option).
        epochs: per rung (default :func:`kdlab.teachers.default_epochs` "student").
        seed: initialisation and data order of every rung.
        views: None (random clips every epoch, teachers run on every batch) or V fixed views per
            video with each teacher's outputs cached once, in ``cache_dir`` (default
            ``<runs>/teacher-cache``; a cache's folder name is a digest of the teacher's weights and
            the data, so cascades of one teacher share its cache and never read a stale one).
        out_dir: the run folder (default: ``<runs>/cascade-<key of the configuration>``).
        pseudo: train the label term on refined pseudo-labels (else on the budget's labels only).
        refine_pseudo: re-refine the pseudo-labels with every new rung (else the teacher's are kept).
        weak: the given labels (default: the clean budget, ``WeakLabels.from_splits(splits)``).
        clips, pseudo_settings, momentum: the ensemble's clips per view, :func:`kdlab.pseudo.refine`
            settings (the temperature is fitted on validation unless given), and the EMA momentum.
        lr, batch_size, progress: as in :func:`kdlab.train.fit`.
        allow_label_leak: do not warn when the teacher saw labels of the unlabelled videos
            (:func:`kdlab.protocol.check_teacher`; only to demonstrate the leak).
        amp, log_dir: as in :func:`kdlab.train.fit` (rung k logs to ``<log_dir>/rung-<k>``).

    Returns a :class:`CascadeResult` (``.final``, ``.final_info``, ``.rungs``, ``.models``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown cascade mode {mode!r}; valid: {', '.join(MODES)}")
    if method not in METHODS or method == "scratch":
        valid = ", ".join(m for m in METHODS if m != "scratch")
        raise ValueError(f"unknown cascade method {method!r}; valid: {valid} (scratch learns from no teacher)")
    if len(rungs) < 2:
        raise ValueError("a cascade needs a ladder of at least 2 rungs: [teacher spec, ..., student spec]")
    if views is not None and views < 1:
        raise ValueError(f"views must be None or >= 1, got {views}")
    check_teacher(unwrap(teacher), splits, allow_label_leak=allow_label_leak, what="cascade")
    rank, _ = distributed()
    show = progress and rank == 0
    epochs = epochs or default_epochs("student")
    weak = weak if weak is not None else WeakLabels.from_splits(splits)
    settings = dict(pseudo_settings or {})
    names = rung_names(len(rungs))
    clip_shape = (3, splits.cfg.frames, splits.cfg.size, splits.cfg.size)
    teacher = unwrap(teacher).eval()

    videos = hashlib.sha1(json.dumps([splits.labelled, splits.unlabelled, splits.val]).encode()).hexdigest()
    config = {
        "mode": mode, "method": method, "epochs": epochs, "seed": seed, "views": views, "lr": lr,
        "batch_size": batch_size, "pseudo": pseudo, "refine_pseudo": refine_pseudo, "clips": clips,
        "momentum": momentum, "pseudo_settings": settings, "options": _key(options),
        "rungs": [spec.to_dict() for spec in rungs[1:]], "teacher": weights_digest(teacher),
        "data": splits.cfg.key(), "videos": videos,
        "weak": hashlib.sha1(weak.given.numpy().tobytes()).hexdigest(),
        **({"amp": True} if amp else {}),  # only when on: folders from before amp existed still resume
    }
    config = json.loads(json.dumps(config))
    out = Path(out_dir) if out_dir is not None else runs_dir() / f"cascade-{run_key(config)}"
    if out_dir is None:
        note_run(out)
    claim_folder(out / CONFIG, config, write=rank == 0)

    # Rung 0: the teacher.
    test_loader = DataLoader(splits.test, batch_size=32)
    models: list[nn.Module] = [teacher]
    infos: list[dict] = [{
        "rung": 0, "name": names[0], "trained": False, "spec": getattr(teacher, "spec", rungs[0]).to_dict(),
        "params": count_parameters(teacher), "flops": count_flops(teacher, (1, *clip_shape)),
        "test_top1": evaluate(teacher, test_loader)["top1"],
    }]

    # Pseudo-labels from the teacher.
    rounds = None
    if pseudo:
        labeler = PseudoLabeler(weak, momentum=momentum, **{k: v for k, v in settings.items() if k != "temperature"})
        rounds = PseudoRounds(labeler, splits, Subset(splits.train_eval, splits.labelled + splits.unlabelled),
                              out / "pseudo", clips=clips, temperature=settings.get("temperature"), show=show,
                              write=rank == 0)
        infos[0]["pseudo_out"] = _pseudo_metrics(rounds.after(0, teacher), weak)

    common = dict(views=views, method=method, epochs=epochs, seed=seed, lr=lr, batch_size=batch_size,
                  clip_shape=clip_shape, cache_dir=Path(cache_dir) if cache_dir is not None else runs_dir() / "teacher-cache",
                  progress=show, rank=rank, options=options, amp=amp)
    bar = tqdm(total=len(rungs) - 1, desc=f"cascade ({mode}, {method})", disable=not show)
    for k in range(1, len(rungs)):
        folder = out / f"rung-{k}"
        teacher_ids = MODES[mode].teachers(k)
        teachers = [models[j] for j in teacher_ids]
        if pseudo:
            current = rounds.history[-1]
            labels = torch.where(current.mask, current.hard, torch.full_like(current.hard, -1))
            weights = current.weights.float()
        else:
            labels, weights = weak.given.clone(), None
        if (folder / "model.pt").is_file():
            model, info = load_model(folder)
            if show:
                print(f"loaded rung {k} ({names[k]}) from {display_path(folder)} (trained before; nothing to train)")
        else:
            if show:
                print(f"training rung {k} ({names[k]}) into {display_path(folder)}")
            model, info = train_rung(
                k, rungs[k], teachers, splits, labels, weights, folder=folder,
                run_config={**config, "rung": k, "teachers": [weights_digest(t) for t in teachers]},
                log_dir=None if log_dir is None else Path(log_dir) / f"rung-{k}", **common)
            info.update({
                "name": names[k], "teachers": [names[j] for j in teacher_ids],
                "teacher_digests": [weights_digest(t) for t in teachers],
                "pseudo_in": _pseudo_metrics(rounds.history[-1], weak) if pseudo else None,
            })
            _add_correlations(info, model, models[k - 1], teacher, splits, len(teachers))
            if rank == 0:
                save_model(folder, model, info)
        models.append(model.eval())
        infos.append(info)
        if pseudo:
            if refine_pseudo:
                infos[k]["pseudo_out"] = _pseudo_metrics(rounds.after(k, model), weak)
            else:
                rounds.keep()
                infos[k]["pseudo_out"] = infos[k - 1]["pseudo_out"]
        bar.update(1)
        bar.set_postfix({"rung": names[k], "test top-1": round(info["test_top1"], 1)})
    bar.close()
    return CascadeResult(models=models, rungs=infos, pseudo=rounds.history if pseudo else [], out_dir=out)


def _add_correlations(info: dict, model: nn.Module, nearest: nn.Module, teacher: nn.Module, splits: Splits,
                      n_teachers: int) -> None:
    """``R`` / ``R_teacher`` (substage CKA on validation clips against the nearest teacher and the
    original one) and ``W`` (the last epoch's pairing, when the method has one) into ``info``."""
    val_loader = DataLoader(splits.val_set(), batch_size=32)
    # Debiased CKA (as notebooks 03 and 05) needs a few clips; tiny test sets get the plain one.
    corr = dict(loader=val_loader, batches=None, pool="mean", debiased=len(splits.val) >= 8)
    info["R"] = _matrix(substage_correlation(model, nearest, **corr))
    info["R_teacher"] = _matrix(substage_correlation(model, teacher, **corr))
    info["W"] = _last_pairing(info["history"], "W" if n_teachers == 1 else f"t{n_teachers - 1}/W")
