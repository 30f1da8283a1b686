"""Running the benchmark: one trained student per (entry, budget, seed), all through the run cache.

Every run goes through :func:`kdlab.students.distill_student` or :func:`kdlab.cascade.cascade`,
whose folders under ``runs/`` are keyed by the run's full configuration: a finished run is loaded,
never trained again, and an interrupted one resumes from its last finished epoch. Running the
benchmark again after a crash (or with more seeds) therefore only trains what is missing.

How each entry trains (the same student, epochs, views, optimiser, batch size and teacher):

==================  ==================================================================================
scratch             label loss on the budget; unlabelled videos pass through with label -1
scratch_pseudo      the same loop on the teacher's refined pseudo-labels (notebook 02's refinement,
                    :mod:`kdlab.pseudo.recipe`), weighted by confidence; no teacher during training
kd .. nst           the presets of :data:`kdlab.distill.METHODS` on the budget's labels
takd, dgkd          :func:`kdlab.cascade.cascade` with plain KD, chain / dense, on the budget's labels
skd                 the full method: the cascade (chain) with the SKD objective on refined
                    pseudo-labels, re-refined after every rung
ablations           the same cascade call with one part switched off (:data:`ABLATIONS`)
==================  ==================================================================================

Two reference points that are not methods (:data:`REFERENCES`, :func:`run_reference`):

==================  ==================================================================================
student_all_labels  the student trained on *every* label of the pool (no teacher): its capacity
scratch_same_steps  scratch on the labelled budget alone, the budget repeated so that an epoch has
                    as many optimiser steps as a distillation epoch on the whole pool (``scratch``
                    passes the unlabelled videos through the loop, so its labelled clips are visited
                    pool/budget times less often)
==================  ==================================================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from kdlab.bench.config import REFERENCES, BenchConfig
from kdlab.teachers import get_teacher
from kdlab.weak_splits import DataConfig, Splits
from kdlab.models import SPECS, efficiency
from kdlab.pseudo.recipe import pseudo_label_digest, summary, teacher_pseudo_labels, with_pseudo_labels
from kdlab.students import distill_student

#: Pseudo-label settings that switch refinement off: the teacher's plain argmax (one clip; the
#: cascade's ensemble keeps its mapped flip view), no calibration, smoothing, correction or
#: threshold, every video weight 1.
RAW_PSEUDO = dict(temperature=1.0, tau=0.0, quantile=1.0, floor=0.0, knn=0, correction="off", soft=False,
                  weighting="uniform")

#: Ablation -> changes to the direct SKD cascade call (``cascade_steps=0``).
ABLATION_CHANGES = {
    "no_cascade": {},
    "identity_pairing": {"pairing": "identity"},
    "joint_schedule": {"schedule": "joint"},
    "mse_features": {"feature_loss": "mse"},
    "raw_pseudo_labels": {"clips": 1, "pseudo_settings": RAW_PSEUDO},
    "no_teacher_cache": {"teacher_cache": None},
    # Without feature terms a progressive schedule would only delay KD to the last phase: joint keeps KD on
    # throughout, so the run is KD on the same refined pseudo-labels, the same label/logit weights.
    "no_feature_terms": {"feature_loss": None, "schedule": "joint"},
}


@dataclass
class Run:
    """What one trained student contributes to the report."""

    acc: float                 # test top-1 (%) after the last epoch
    best_epoch_acc: float      # test top-1 (%) of the best-on-validation epoch
    train_seconds: float       # training time (every rung of a cascade), as measured when it trained
    params: int
    val: float | None = None   # validation top-1 (%) after the last epoch (what tuning selects on)


@dataclass
class Context:
    """Data, teacher and pseudo-labels of one label budget (shared by every method there)."""

    budget: float
    splits: Splits
    teacher: nn.Module
    teacher_info: dict
    _pseudo: dict = field(default_factory=dict)

    def pseudo_labels(self, cfg: BenchConfig):
        """The teacher's refined pseudo-labels (computed on first use)."""
        if "refined" not in self._pseudo:
            settings = dict(cfg.pseudo)
            self._pseudo["refined"] = teacher_pseudo_labels(self.teacher, self.splits, **settings)
        return self._pseudo["refined"]

    def pseudo_summary(self, cfg: BenchConfig) -> dict:
        return summary(self.pseudo_labels(cfg), self.splits.labels)


def make_context(cfg: BenchConfig, budget: float, progress: bool = False) -> Context:
    """Splits of ``budget`` and the teacher of the configured protocol, trained once (run cache)."""
    data = DataConfig(root=cfg.data, frames=cfg.frames, size=cfg.size, budget=float(budget), pool=cfg.pool)
    splits = Splits(data, progress=progress)
    teacher, info = get_teacher(cfg.protocol, splits, model=cfg.teacher_model, epochs=cfg.teacher_epochs,
                                progress=progress)
    return Context(float(budget), splits, teacher.eval(), info)


def _recipe(cfg: BenchConfig) -> dict:
    return dict(epochs=cfg.epochs, views=cfg.views, lr=cfg.lr, batch_size=cfg.batch_size, model=cfg.student_model)


def _cascade(cfg: BenchConfig, ctx: Context, seed: int, *, mode: str, method: str, steps: int, pseudo: bool,
             progress: bool, clips: int | None = None, pseudo_settings: dict | None = None, **options) -> Run:
    from kdlab.cascade import capacity_ladder, cascade

    ladder = capacity_ladder(SPECS[cfg.teacher_model], SPECS[cfg.student_model], steps=steps)
    settings = dict(cfg.pseudo)
    clips = int(clips if clips is not None else settings.pop("clips", 2))
    settings.pop("clips", None)
    if pseudo_settings is not None:
        settings = dict(pseudo_settings)
    result = cascade(ctx.splits, ctx.teacher, ladder, mode=mode, method=method, epochs=cfg.epochs, seed=seed,
                     views=cfg.views, lr=cfg.lr, batch_size=cfg.batch_size, pseudo=pseudo, clips=clips,
                     pseudo_settings=settings if pseudo else None, progress=progress, **options)
    info = result.final_info
    seconds = sum(float(r.get("train_seconds") or 0.0) for r in result.rungs if r.get("trained", True))
    return Run(info["test_top1"], info["best_epoch_test_top1"], seconds, int(info["params"]), info.get("val_top1"))


def _distill(cfg: BenchConfig, method: str, splits: Splits, teacher, seed: int, progress: bool, **options) -> Run:
    _, info = distill_student(method, splits, teacher, seed=seed, progress=progress, **_recipe(cfg), **options)
    return Run(info["test_top1"], info["best_epoch_test_top1"], float(info["train_seconds"]), int(info["params"]),
               info.get("val_top1"))


def run_method(cfg: BenchConfig, ctx: Context, name: str, seed: int, progress: bool = False) -> Run:
    """Train (or load) the student of method ``name`` (a :data:`METHODS` name) for one seed."""
    if name == "scratch_pseudo":
        pl = ctx.pseudo_labels(cfg)
        return _distill(cfg, "scratch", with_pseudo_labels(ctx.splits, pl), None, seed, progress,
                        sample_weights=pl.weights, key={"pseudo_labels": pseudo_label_digest(pl)})
    if name in ("takd", "dgkd"):
        return _cascade(cfg, ctx, seed, mode="chain" if name == "takd" else "dense", method="kd",
                        steps=max(1, cfg.cascade_steps), pseudo=False, progress=progress,
                        **cfg.method_options.get("kd", {}))
    if name == "skd":
        return _cascade(cfg, ctx, seed, mode="chain", method="skd", steps=cfg.cascade_steps, pseudo=True,
                        progress=progress, **cfg.skd)
    return _distill(cfg, name, ctx.splits, ctx.teacher, seed, progress, **cfg.method_options.get(name, {}))


def run_reference(cfg: BenchConfig, ctx: Context, name: str, seed: int, progress: bool = False) -> Run:
    """Train (or load) a reference student of :data:`REFERENCES` for one seed (no teacher)."""
    splits = ctx.splits
    if name == "student_all_labels":
        return _distill(cfg, "scratch", splits.with_all_labels(), None, seed, progress)
    if name == "scratch_same_steps":
        pool = len(splits.labelled) + len(splits.unlabelled)
        times = max(1, round(pool / len(splits.labelled)))
        return _distill(cfg, "scratch", splits.labelled_only(repeat=times), None, seed, progress)
    raise ValueError(f"unknown reference {name!r}; valid: {', '.join(REFERENCES)}")


def run_ablation(cfg: BenchConfig, ctx: Context, name: str, seed: int, progress: bool = False) -> Run:
    """Train (or load) the SKD student of ablation ``name`` (direct, one part switched off)."""
    changes = dict(ABLATION_CHANGES[name])
    options = {**cfg.skd, **{k: v for k, v in changes.items() if k not in ("clips", "pseudo_settings")}}
    return _cascade(cfg, ctx, seed, mode="chain", method="skd", steps=0, pseudo=True, progress=progress,
                    clips=changes.get("clips"), pseudo_settings=changes.get("pseudo_settings"), **options)


def model_costs(cfg: BenchConfig, num_classes: int) -> dict[str, dict]:
    """Params, FLOPs and CPU latency (ms, batch 1, median of 20) of the teacher and the student."""
    from kdlab.models import build_model

    shape = (1, 3, cfg.frames, cfg.size, cfg.size)
    out = {}
    with torch.random.fork_rng(devices=[]):
        for role, name in (("teacher", cfg.teacher_model), ("student", cfg.student_model)):
            e = efficiency(build_model(name, num_classes), shape)
            out[role] = {"model": name, "params": e["params"], "flops": e["flops"], "latency_ms": e["latency_ms"]}
    return out


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``."""
    tic = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - tic


__all__ = ["Run", "Context", "make_context", "run_method", "run_ablation", "run_reference", "model_costs",
           "RAW_PSEUDO", "ABLATION_CHANGES", "REFERENCES", "timed"]
