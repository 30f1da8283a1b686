"""Whole runs into one output folder, with a report: one distilled student, or the full SKD method.

- :func:`run_distill` (``kdlab distill``): a teacher by protocol, then one student distilled
  with one method (any baseline or SKD), trained in ``<out>/fit``.
- :func:`run_skd` (``kdlab skd`` and ``kdlab cascade``): the whole method (README, "The method"). Teacher
  by protocol -> weak labels -> pseudo-labels -> a progressive cascade over a capacity ladder
  (:func:`kdlab.cascade.cascade`, in ``<out>/cascade``) -> the student.

Both check every setting (:func:`make_config`: types, ranges, names, option values, the output
folder) and read the dataset's split files before anything is written; then they lock the
output folder (:mod:`kdlab.runfolder`: a second process is refused), write ``config.json`` (a
rerun with another configuration is refused with :class:`~kdlab.train.ResumeMismatchError`
unless ``restart=True`` empties the folder first), resume when run again on the same folder, and
end with ``report.json`` and ``report.md`` (:func:`render_markdown`). Teachers come from the run
cache (:func:`kdlab.teachers.get_teacher`), so every run of one data configuration shares them.
Under torchrun every rank trains; rank 0 alone writes.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kdlab.cascade import MODES, capacity_ladder, cascade, ladder_markdown
from kdlab.distill import Distillation, make_objective
from kdlab.distill.methods import METHODS, SKD_TUNED
from kdlab.teachers import PROTOCOLS, default_epochs, get_teacher
from kdlab.weak_splits import DataConfig, Splits
from kdlab.io import atomic_write_text
from kdlab.models import SPECS, build_model, count_flops, efficiency
from kdlab.pseudo import NOISE_MODES, WeakLabels
from kdlab.students import teacher_cache, weak_training_set
from kdlab.environment import runs_dir
from kdlab.runfolder import FolderError, check_writable, open_run
from kdlab.settings import SettingError, check_clip, check_settings
from kdlab.trained import train_and_report
from kdlab.train import distributed

__all__ = ["ConfigError", "DistillConfig", "SKDConfig", "make_config", "run_distill", "run_skd", "render_markdown",
           "REPORT_JSON", "REPORT_MD"]

REPORT_JSON, REPORT_MD, CONFIG_JSON = "report.json", "report.md", "config.json"
NOTE = ("SKD is kdlab's reading of the abstract of Wang & Tang (T-CSVT 2024), not a reproduction; "
        "no numbers of the paper are quoted.")


class ConfigError(SettingError):
    """A bad configuration (unknown key or value, missing data): raised before any training."""


@dataclass
class _Common:
    """Settings every run has. ``views=0`` means fresh random clips every epoch (no teacher cache)."""

    out: str = ""
    data: str | None = None
    budget: float = 10.0
    budget_seed: int = 0
    pool: int | None = None  # training-pool videos per class (DataConfig.pool; None: every training video)
    frames: int = 8
    size: int = 32
    teacher: str = "all"
    teacher_epochs: int | None = None
    epochs: int | None = None
    seed: int = 0
    views: int = 2
    lr: float = 2e-3
    batch_size: int = 16
    options: dict = field(default_factory=dict)
    amp: bool = False  # bf16 autocast for the students (kdlab.train.fit)
    log_dir: str | None = None  # TensorBoard logs of every training (kdlab.tblog); not part of the run

    def data_config(self) -> DataConfig:
        return DataConfig(root=self.data, frames=self.frames, size=self.size, budget=self.budget,
                          budget_seed=self.budget_seed, pool=self.pool)


@dataclass
class DistillConfig(_Common):
    """``kdlab distill``: ``model`` distilled from the ``teacher`` protocol's teacher with ``method``
    (a key of :data:`kdlab.distill.METHODS`; ``options`` override its preset)."""

    method: str = "kd"
    model: str = "student"


@dataclass
class SKDConfig(_Common):
    """``kdlab skd`` / ``kdlab cascade``: a cascade over ``steps`` assistants between the
    ``teacher_model`` and ``student_model`` specs, in ``mode`` "chain" or "dense", each rung
    distilled with ``method``; pseudo-labels (``pseudo``) re-refined after each rung
    (``refine_pseudo``); ``noise_rate`` of the budget's labels made wrong (``noise_mode``)."""

    method: str = "skd"
    mode: str = "chain"
    steps: int = 1
    teacher_model: str = "teacher"
    student_model: str = "student"
    pseudo: bool = True
    refine_pseudo: bool = True
    noise_rate: float = 0.0
    noise_mode: str = "mirror"
    clips: int = 2


def method_options_preset(method: str) -> dict:
    """The preset options of ``method`` that do not depend on the models (e.g. its schedule)."""
    preset = METHODS.get(method, {})
    return dict(preset) if isinstance(preset, dict) else {}


def objective_options(cfg) -> dict:
    """The objective's options of a run: SKD's are :data:`kdlab.distill.SKD_TUNED` (the benchmark's,
    chosen on validation), then the run's ``options`` (``--option``) over them."""
    return {**(SKD_TUNED if cfg.method == "skd" else {}), **cfg.options}


def _fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _claimed(cfg) -> dict:
    """The settings that make a run (stored in ``config.json`` and the checkpoints): all but where
    it is written and logged, and ``amp`` only when on (so folders from before it still resume)."""
    values = json.loads(json.dumps(dataclasses.asdict(cfg)))
    for key in ("out", "log_dir"):
        values.pop(key)
    if not values["amp"]:
        values.pop("amp")
    return values


def _check_options(cfg, student: str, epochs: int) -> None:
    """Build the objective once with tiny random models, so a bad option value (``fd_kind="nope"``,
    ``kd_temperature="hot"``) is found now rather than after the teacher has trained."""
    from kdlab.distill import make_objective

    signature = inspect.signature(Distillation.__init__).parameters
    for key, value in cfg.options.items():
        default = signature[key].default
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"option {key} = {value!r}: expected a number (default {default})")
    teacher_model = cfg.teacher_model if isinstance(cfg, SKDConfig) else "teacher"
    teacher = None if cfg.method == "scratch" else build_model(teacher_model, 2)
    try:
        make_objective(cfg.method, teacher, build_model(student, 2), epochs=epochs,
                       clip_shape=(3, cfg.frames, cfg.size, cfg.size), **objective_options(cfg))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad option value in {cfg.options}: {exc}") from None


def make_config(cls, values: dict):
    """``cls(**values)`` after checking every key and value; a :class:`ConfigError` says what is wrong."""
    unknown = sorted(set(values) - set(_fields(cls)))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(_fields(cls)))}")
    try:
        check_settings(values)
    except SettingError as exc:
        raise ConfigError(str(exc)) from None
    cfg = cls(**values)
    if not cfg.out:
        raise ConfigError("an output folder is needed: out = DIR (--out DIR)")
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; valid: {', '.join(METHODS)}")
    if cfg.teacher not in PROTOCOLS:
        raise ConfigError(f"unknown teacher protocol {cfg.teacher!r}; valid: {', '.join(PROTOCOLS)}")
    valid = set(inspect.signature(Distillation.__init__).parameters) - {"self", "teacher", "student"}
    settable = valid - {"epochs", "val_data", "teacher_cache", "clip_shape", "probe", "soft_targets", "sample_weights"}
    bad = sorted(set(cfg.options) - settable)
    if bad:
        raise ConfigError(f"unknown option(s) {', '.join(bad)}; valid: {', '.join(sorted(settable))}")
    student = cfg.student_model if isinstance(cfg, SKDConfig) else cfg.model
    stages = len(SPECS[student].widths) if student in SPECS else 0
    schedule = {**method_options_preset(cfg.method), **objective_options(cfg)}.get("schedule", "joint")
    epochs = cfg.epochs or default_epochs("student")
    if schedule == "progressive" and epochs < stages:
        raise ConfigError(f"epochs={epochs} is fewer than the {stages} phases of the progressive schedule of "
                          f"method {cfg.method!r}: train longer or pass --option schedule='\"joint\"'")
    if isinstance(cfg, SKDConfig):
        if cfg.method == "scratch":
            raise ConfigError("a cascade distils: method 'scratch' learns from no teacher")
        if cfg.mode not in MODES:
            raise ConfigError(f"unknown cascade mode {cfg.mode!r}; valid: {', '.join(MODES)}")
        for key in ("teacher_model", "student_model"):
            if getattr(cfg, key) not in SPECS:
                raise ConfigError(f"unknown {key} {getattr(cfg, key)!r}; valid: {', '.join(SPECS)}")
        if cfg.noise_mode not in NOISE_MODES:
            raise ConfigError(f"unknown noise_mode {cfg.noise_mode!r}; valid: {', '.join(NOISE_MODES)}")
    elif cfg.model not in SPECS:
        raise ConfigError(f"unknown model {cfg.model!r}; valid: {', '.join(SPECS)}")
    try:
        for model in ([cfg.teacher_model, cfg.student_model] if isinstance(cfg, SKDConfig) else [cfg.model]):
            check_clip(model, cfg.frames)
        check_writable(cfg.out)
        if cfg.log_dir is not None:
            check_writable(cfg.log_dir, "log folder")
    except (SettingError, FolderError) as exc:
        raise ConfigError(str(exc)) from None
    if cfg.options:
        _check_options(cfg, student, epochs)
    if cfg.data is not None and not Path(cfg.data).is_dir():
        raise ConfigError(f"dataset folder {cfg.data} does not exist (make one with: kdlab data --root {cfg.data})")
    return cfg


def _open_run(cfg, kind: str, rank: int, restart: bool, data_root: Path):
    """:func:`kdlab.runfolder.open_run` on ``cfg.out`` for this configuration (leftovers of dead
    writers are also removed from the run cache and the dataset's clip cache)."""
    return open_run(cfg.out, {"kind": kind, **_claimed(cfg)}, rank=rank, restart=restart,
                    shared=(runs_dir(), data_root / ".cache"))


def _finish(out: Path, report: dict, rank: int) -> dict:
    if rank == 0:
        atomic_write_text(out / REPORT_JSON, json.dumps(report, indent=1, default=str))
        atomic_write_text(out / REPORT_MD, render_markdown(report))
    return report


def _teacher(cfg, splits: Splits, progress: bool, model: str = "teacher"):
    teacher, info = get_teacher(cfg.teacher, splits, model=model, seed=cfg.seed, epochs=cfg.teacher_epochs,
                                progress=progress)
    keep = ("protocol", "model", "epochs", "test_top1", "best_epoch_test_top1", "params", "flops")
    return teacher.eval(), {k: info.get(k) for k in keep}


# ----------------------------------------------------------------------------- kdlab distill

def run_distill(config: dict | DistillConfig, progress: bool = True, restart: bool = False) -> dict:
    """One distilled student in ``<out>/fit`` (resumes; ``restart`` empties ``out`` first);
    returns the report (also written)."""
    cfg = config if isinstance(config, DistillConfig) else make_config(DistillConfig, config)
    rank, _ = distributed()
    show = progress and rank == 0
    splits = Splits(cfg.data_config(), progress=show)  # data errors before the folder is claimed
    with _open_run(cfg, "distill", rank, restart, splits.root) as out:
        return _distill(cfg, splits, out, rank, show)


def _distill(cfg: DistillConfig, splits: Splits, out: Path, rank: int, show: bool) -> dict:
    teacher, teacher_info = (None, None) if cfg.method == "scratch" else _teacher(cfg, splits, show)
    views = cfg.views or None
    epochs = cfg.epochs or default_epochs("student")
    train_set = weak_training_set(splits, views)
    clip_shape = (3, cfg.frames, cfg.size, cfg.size)
    cache = None
    if teacher is not None and views is not None:
        cache = teacher_cache(teacher, splits, views, progress=show)  # shared with kdlab.students (run cache)
    torch.manual_seed(cfg.seed)
    student = build_model(cfg.model, splits.num_classes)
    objective = make_objective(cfg.method, teacher, student, **{
        "epochs": epochs, "val_data": splits.val_set(), "teacher_cache": cache, "clip_shape": clip_shape,
        **objective_options(cfg)})
    run = train_and_report(student, train_set, splits.val_set(), splits.test,
                           build=lambda: build_model(cfg.model, splits.num_classes), evaluate_test=rank == 0,
                           objective=objective, epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed,
                           out_dir=out / "fit", progress=show, amp=cfg.amp, log_dir=cfg.log_dir,
                           run_config={"kind": "distill", **_claimed(cfg), "out": None})
    if rank != 0:
        return {}
    keep = ("params", "test_top1", "best_epoch", "best_val_top1", "best_epoch_test_top1", "train_seconds", "history")
    student_info = {"model": cfg.model, "method": cfg.method, "epochs": epochs,
                    "flops": count_flops(student, (1, *clip_shape)), **{k: run.info()[k] for k in keep}}
    report = {"kind": "distill", "config": dataclasses.asdict(cfg), "data": splits.summary(),
              "teacher": teacher_info, "student": student_info}
    return _finish(out, report, rank)


# ----------------------------------------------------------------------------- kdlab skd / cascade

def run_skd(config: dict | SKDConfig, progress: bool = True, restart: bool = False) -> dict:
    """The whole method: teacher (protocol) -> pseudo-labels -> cascade -> student, into ``out``.

    Returns the report (also written as ``report.json`` and ``report.md``): the configuration,
    the data, the teacher, and per rung its size, cost, latency, accuracies (last epoch and
    best-validation epoch), the teachers it learned from, pseudo-label metrics and substage
    correlation matrices. ``restart`` empties ``out`` first.
    """
    cfg = config if isinstance(config, SKDConfig) else make_config(SKDConfig, config)
    rank, _ = distributed()
    show = progress and rank == 0
    splits = Splits(cfg.data_config(), progress=show)  # data errors before the folder is claimed
    with _open_run(cfg, "skd", rank, restart, splits.root) as out:
        return _skd(cfg, splits, out, rank, show, progress)


def _skd(cfg: SKDConfig, splits: Splits, out: Path, rank: int, show: bool, progress: bool) -> dict:
    teacher, teacher_info = _teacher(cfg, splits, show, model=cfg.teacher_model)
    weak = WeakLabels.from_splits(splits, cfg.noise_rate, mode=cfg.noise_mode, seed=cfg.seed)
    ladder = capacity_ladder(SPECS[cfg.teacher_model], SPECS[cfg.student_model], steps=cfg.steps)
    result = cascade(splits, teacher, ladder, mode=cfg.mode, method=cfg.method, epochs=cfg.epochs, seed=cfg.seed,
                     views=cfg.views or None, out_dir=out / "cascade", pseudo=cfg.pseudo,
                     refine_pseudo=cfg.refine_pseudo, weak=weak, clips=cfg.clips, lr=cfg.lr,
                     batch_size=cfg.batch_size, progress=progress, amp=cfg.amp, log_dir=cfg.log_dir,
                     **objective_options(cfg))
    if rank != 0:
        return {}
    input_shape = (1, 3, cfg.frames, cfg.size, cfg.size)
    rungs = []
    for model, info in zip(result.models, result.rungs):
        stats = efficiency(model, input_shape)
        rungs.append({**{k: v for k, v in info.items() if k not in ("history", "confusion")},
                      "latency_ms": stats["latency_ms"], "memory_mb": stats["memory_mb"],
                      "epochs_trained": len(info.get("history", []))})
    report = {"kind": "skd", "note": NOTE, "config": dataclasses.asdict(cfg), "data": splits.summary(),
              "weak_labels": weak.summary(), "teacher": teacher_info, "rungs": rungs,
              "final": {k: rungs[-1].get(k) for k in ("name", "params", "flops", "test_top1", "best_epoch_test_top1")}}
    return _finish(out, report, rank)


# ----------------------------------------------------------------------------- the Markdown report

def _pct(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _matrix_md(m: dict) -> str:
    lines = ["| student \\ teacher | " + " | ".join(m["teacher"]) + " |", "|---|" + "---:|" * len(m["teacher"])]
    for name, row in zip(m["student"], m["matrix"]):
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    """The Markdown text of a report written by :func:`run_distill` or :func:`run_skd`."""
    cfg = report["config"]
    lines = []
    if report["kind"] == "distill":
        s, t = report["student"], report.get("teacher")
        lines += [f"# kdlab distill: {s['method']} -> {s['model']}", ""]
        if t:
            lines.append(f"Teacher (protocol `{t['protocol']}`): test top-1 {t['test_top1']:.1f} %.")
        lines += [f"Student ({s['params']:,} params, {s['flops'] / 1e6:.1f} MFLOPs / clip), {s['epochs']} epochs: "
                  f"test top-1 **{s['test_top1']:.1f} %** (last epoch), {s['best_epoch_test_top1']:.1f} % at the "
                  f"best validation epoch ({s['best_epoch'] + 1}).", ""]
    else:
        t = report["teacher"]
        lines += [f"# kdlab skd: {cfg['mode']} cascade, method `{cfg['method']}`", "", report["note"], "",
                  f"Data: {report['data']['labelled']} labelled / {report['data']['unlabelled']} unlabelled training "
                  f"videos ({cfg['budget']} % budget), {report['data']['val']} validation, {report['data']['test']} "
                  f"test. Given labels: {report['weak_labels']['corrupted']} of {report['weak_labels']['labelled']} "
                  f"wrong. Teacher protocol `{t['protocol']}`. Pseudo-labels: "
                  f"{'on' if cfg['pseudo'] else 'off'}{', re-refined after every rung' if cfg['pseudo'] and cfg['refine_pseudo'] else ''}.",
                  "", "## Rungs", "",
                  "| rung | learned from | params | MFLOPs / clip | latency (ms) | test top-1 (last) | test top-1 (best val epoch) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for r in report["rungs"]:
            best = r.get("best_epoch_test_top1")
            lines.append(f"| {r['name']} | {', '.join(r.get('teachers') or ['-'])} | {r['params']:,} | "
                         f"{r['flops'] / 1e6:.1f} | {r['latency_ms']:.2f} | {r['test_top1']:.1f} | "
                         f"{'' if best is None else f'{best:.1f}'} |")
        lines += ["", "## Efficiency", "", ladder_markdown(report["rungs"]), ""]
        if cfg["pseudo"]:
            lines += ["## Pseudo-labels after each rung", "",
                      "| after | coverage | accuracy | unlabelled covered | their accuracy | corrections (right) |",
                      "|---|---:|---:|---:|---:|---:|"]
            for r in report["rungs"]:
                m = r.get("pseudo_out")
                if m:
                    lines.append(f"| {r['name']} | {_pct(m['coverage'])} | {_pct(m['accuracy'])} | "
                                 f"{_pct(m['pseudo_coverage'])} | {_pct(m['pseudo_accuracy'])} | "
                                 f"{m['corrections']} ({m['corrections_right']}) |")
            lines.append("")
        lines += ["## Substage correlation (linear CKA, validation clips)", ""]
        for r in report["rungs"]:
            if r.get("R"):
                nearest = (r.get("teachers") or ["?"])[-1]
                lines += [f"**{r['name']}** against **{nearest}**:", "", _matrix_md(r["R"]), ""]
    lines += ["## Configuration", "", "```json", json.dumps(cfg, indent=1), "```", ""]
    return "\n".join(lines)
