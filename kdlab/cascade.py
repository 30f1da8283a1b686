"""The progressive cascade (README, "The method"): teacher -> assistant(s) -> student over a capacity ladder.

A large capacity gap between teacher and student costs accuracy; a cascade closes it in steps.

- :func:`capacity_ladder` interpolates :class:`~kdlab.models.VideoNetSpec` s between a teacher
  and a student: widths (and the stem's) geometrically, depths linearly, so parameter counts
  fall roughly geometrically. :func:`ladder_table` gives params and FLOPs per rung.
- :func:`cascade` trains rung k = 1 .. n-1 of the ladder (rung 0 is the given, trained teacher)
  with one distillation method of :mod:`kdlab.distill`:

  * ``mode="chain"`` (TAKD-style): rung k learns from rung k-1 only;
  * ``mode="dense"`` (DGKD-style): rung k learns from *every* earlier rung. kdlab's choice:
    :class:`DenseDistillation` keeps one objective per earlier rung (own adapters, own pairing,
    own teacher cache) and **averages their distillation terms** (the label term counts once).
    For logit KD this has the same gradient as KD towards the mean of the teachers' softened
    distributions; the student runs forward only once per batch.

  With ``pseudo=True`` the label term trains on refined pseudo-labels
  (:class:`~kdlab.pseudo.PseudoLabeler`): the teacher labels the unlabelled videos before rung 1,
  and after every rung the newest model is folded into the running ensemble (an EMA of the
  probabilities) and the labels are refined again (``refine_pseudo=True``). Pseudo-labels enter as
  hard labels with per-video weights; a random flip maps them through the dataset's ``flip_map``.

Layout of ``out_dir`` (every file written atomically; rank 0 alone writes under torchrun)::

    cascade.json              the configuration; a run with another one is refused
    pseudo/after-<k>.pt       the running ensemble after rung k (0: the teacher)
    rung-<k>/fit/             the engine's per-epoch checkpoints while rung k trains
    rung-<k>/model.pt, info.json   written when rung k is finished

Run again on the same folder, :func:`cascade` loads every finished rung and resumes the next one
from its last finished epoch, so a killed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from kdlab.config import display_path, runs_dir
from kdlab.correlation import substage_correlation
from kdlab.distill import CachedViews, TeacherCache, describe_dataset, make_objective, weights_digest
from kdlab.distill.methods import METHODS
from kdlab.experiment import Splits, default_epochs
from kdlab.hooks import SubstageTap, unwrap
from kdlab.io import atomic_save, load_checkpoint
from kdlab.models import VideoNetSpec, build_model, count_flops, count_parameters, efficiency
from kdlab.progress import tqdm
from kdlab.pseudo import LabelView, PseudoLabeler, PseudoLabels, WeakLabels, fit_temperature, predict
from kdlab.pseudo.ensemble import Predictions
from kdlab.protocol import check_teacher
from kdlab.artifacts import note_run
from kdlab.runs import claim_folder, load_model, run_key, save_model
from kdlab.train import distributed, evaluate, fit

__all__ = ["capacity_ladder", "ladder_table", "ladder_markdown", "rung_names", "cascade", "CascadeResult",
           "DenseDistillation", "PseudoView", "MODES"]

MODES = ("chain", "dense")
CONFIG = "cascade.json"


# ----------------------------------------------------------------------------- the ladder

def _geometric(a: float, b: float, t: float) -> int:
    """The point a fraction ``t`` of the way from ``a`` to ``b`` in log space, rounded (>= 1)."""
    return max(1, round(math.exp((1 - t) * math.log(a) + t * math.log(b))))


def capacity_ladder(teacher_spec: VideoNetSpec, student_spec: VideoNetSpec, steps: int = 1) -> list[VideoNetSpec]:
    """``steps`` assistant specs between teacher and student: ``[teacher, A_1 .. A_steps, student]``.

    Assistant k of ``steps`` sits at ``t = k / (steps + 1)``: each stage width and the stem width
    are ``exp((1 - t) log w_teacher + t log w_student)`` (rounded), depths and dropout are
    interpolated linearly. A conv layer's parameters scale with width², so parameter counts
    fall roughly geometrically from rung to rung. ``steps=0`` is one-step distillation.

    Teacher and student must share block type, number of stages and strides (so every rung has
    the same feature grids), and parameters must fall strictly from rung to rung: too many steps
    for too small a width gap raise a ValueError.
    """
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0 (the number of assistants), got {steps!r}")
    for name in ("block", "temporal_strides", "spatial_strides"):
        if getattr(teacher_spec, name) != getattr(student_spec, name):
            raise ValueError(f"teacher and student differ in {name} ({getattr(teacher_spec, name)} vs "
                             f"{getattr(student_spec, name)}): a ladder interpolates widths and depths only")
    if len(teacher_spec.widths) != len(student_spec.widths):
        raise ValueError(f"teacher has {len(teacher_spec.widths)} stages, student {len(student_spec.widths)}")
    ladder = [teacher_spec]
    for k in range(1, int(steps) + 1):
        t = k / (steps + 1)
        ladder.append(teacher_spec.replace(
            widths=tuple(_geometric(a, b, t) for a, b in zip(teacher_spec.widths, student_spec.widths)),
            stem_width=_geometric(teacher_spec.stem_width, student_spec.stem_width, t),
            depths=tuple(max(1, round(a + (b - a) * t)) for a, b in zip(teacher_spec.depths, student_spec.depths)),
            dropout=teacher_spec.dropout + (student_spec.dropout - teacher_spec.dropout) * t,
        ))
    ladder.append(student_spec)
    params = [count_parameters(build_model(spec, 10)) for spec in ladder]
    if any(b >= a for a, b in zip(params, params[1:])):
        raise ValueError(f"parameters must fall from rung to rung, got {params}: the student is not smaller "
                         f"than the teacher, or {steps} steps are too many for their width gap")
    return ladder


def rung_names(count: int) -> list[str]:
    """``["teacher", "assistant", "student"]`` for 3 rungs; ``assistant1..`` when there are several."""
    if count < 2:
        raise ValueError(f"a ladder has at least 2 rungs (teacher and student), got {count}")
    middle = ["assistant"] if count == 3 else [f"assistant{i}" for i in range(1, count - 1)]
    return ["teacher", *middle, "student"]


def ladder_table(rungs: Sequence[VideoNetSpec | nn.Module], num_classes: int = 10,
                 input_shape: Sequence[int] = (1, 3, 8, 32, 32), latency: bool = False) -> list[dict]:
    """One row per rung: ``name``, ``widths``, ``stem_width``, ``params``, ``flops`` (one clip of
    ``input_shape`` (1, 3, T, H, W)) and the ratios to the teacher; with ``latency=True`` the
    full :func:`kdlab.models.efficiency` (latency, memory) instead of parameters and FLOPs only."""
    rows = []
    for name, rung in zip(rung_names(len(rungs)), rungs):
        model = build_model(rung, num_classes) if isinstance(rung, VideoNetSpec) else rung
        spec = rung if isinstance(rung, VideoNetSpec) else getattr(unwrap(rung), "spec", None)
        stats = efficiency(model, input_shape) if latency else {
            "params": count_parameters(model), "flops": count_flops(model, input_shape)}
        rows.append({"name": name, "widths": list(spec.widths) if spec else None,
                     "stem_width": spec.stem_width if spec else None, **stats})
    for row in rows:
        row["params_ratio"] = row["params"] / rows[0]["params"]
        row["flops_ratio"] = row["flops"] / rows[0]["flops"]
    return rows


def ladder_markdown(rows: Sequence[dict]) -> str:
    """A Markdown table of :func:`ladder_table` rows (and any ``test_top1`` they carry)."""
    acc = any("test_top1" in r for r in rows)
    head = "| rung | widths | params | MFLOPs / clip | params / teacher |" + (" test top-1 (%) |" if acc else "")
    lines = [head, "|---|---|---:|---:|---:|" + ("---:|" if acc else "")]
    for r in rows:
        widths = r.get("widths") or (r.get("spec") or {}).get("widths")
        line = (f"| {r['name']} | {widths} | {r['params']:,} | {r['flops'] / 1e6:.1f} | "
                f"{r['params'] / rows[0]['params']:.3f} |")
        if acc:
            line += f" {r['test_top1']:.1f} |" if r.get("test_top1") is not None else " |"
        lines.append(line)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- training data

class PseudoView(LabelView):
    """:class:`~kdlab.pseudo.LabelView` over *every* video of ``base`` (index = position), so it can
    sit inside :class:`~kdlab.distill.CachedViews`. Items ``(clip, labels[index], index)``; a random
    flip maps the label through ``flip_map``. Its cache key leaves the labels out: the clips (and
    so a teacher's outputs on them) do not depend on them, so one teacher cache serves every rung."""

    def __init__(self, base: Dataset, labels: torch.Tensor):
        super().__init__(base, range(len(base)), labels)

    def cache_key(self) -> dict:
        return {"base": describe_dataset(self.base), "flip": self.flip, "flip_map": self.flip_map}


def training_set(splits: Splits, labels: torch.Tensor, views: int | None) -> tuple[Dataset, CachedViews | None]:
    """The labelled + unlabelled videos labelled by ``labels`` (N,) (-1: no label), with training
    augmentation; with ``views=V`` each video is one of V fixed views (items gain the view)."""
    base: Dataset = PseudoView(splits.train, labels)
    views_ds = None
    if views is not None:
        base = views_ds = CachedViews(base, views=views, seed=0)
    return Subset(base, splits.labelled + splits.unlabelled), views_ds


# ----------------------------------------------------------------------------- dense objective

class _Replay(nn.Module):
    """Stands in for the student inside :class:`DenseDistillation`: returns logits recorded from one
    real forward pass, and runs each recorded feature through an identity module of the same name
    so that a :class:`~kdlab.hooks.SubstageTap` on it sees the student's features (with their
    autograd graph)."""

    def __init__(self, names: Sequence[str]):
        super().__init__()
        self.names = list(names)
        for name in self.names:
            parent = self
            for part in name.split("."):
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Identity())
                parent = getattr(parent, part)
        self.logits: torch.Tensor | None = None
        self.features: dict[str, torch.Tensor] = {}

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        modules = dict(self.named_modules())
        for name in self.names:
            modules[name](self.features[name])
        return self.logits


class DenseDistillation(nn.Module):
    """Distil from several teachers at once (DGKD-style dense cascade).

    ``parts`` holds one :class:`~kdlab.distill.Distillation` per teacher (each with its own
    adapters, pairing and cache). The student runs forward once per batch; each part computes its
    terms on those outputs. Terms: ``"label"`` from the first part (the others are built with
    ``label_weight=0``), and every other term of part k as ``"t<k>/<term>"``, divided by the
    number of teachers: the loss is label + the *mean* over teachers of their distillation losses.
    History records from part k are prefixed ``"t<k>/"`` too (e.g. ``"t1/R/stage1-stage2"``).
    """

    def __init__(self, parts: Sequence[nn.Module]):
        super().__init__()
        if len(parts) < 2:
            raise ValueError("DenseDistillation needs at least two teachers; use the objective itself for one")
        self.parts = nn.ModuleList(parts)
        taps: list[str] = []
        for part in parts:
            for name in [*part.student_stages, *part.embed_taps]:
                taps += [name] if name not in taps else []
        self.taps = taps
        self._replay = [_Replay(taps)]  # a list: not a submodule (no state to save)

    @property
    def teachers(self) -> list[nn.Module]:
        return [part.teacher for part in self.parts]

    def on_epoch_start(self, epoch: int, model: nn.Module, loader=None) -> None:
        for part in self.parts:
            part.on_epoch_start(epoch=epoch, model=model, loader=loader)

    def epoch_record(self) -> dict[str, float]:
        record = {}
        for k, part in enumerate(self.parts):
            for name, value in part.epoch_record().items():
                if name == "phase":
                    record["phase"] = value
                else:
                    record[f"t{k}/{name}"] = value
        return record

    def forward(self, model: nn.Module, batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        clips = batch[0]
        replay = self._replay[0]
        if self.taps:
            with SubstageTap(model, self.taps) as tap:
                logits = model(clips)
            replay.features = tap.features
        else:
            logits = model(clips)
        replay.logits = logits
        terms: dict[str, torch.Tensor] = {}
        count = len(self.parts)
        try:
            for k, part in enumerate(self.parts):
                part_terms, _ = part(replay, batch)
                for name, value in part_terms.items():
                    if name == "label":
                        terms["label"] = value
                    else:
                        terms[f"t{k}/{name}"] = value / count
        finally:
            replay.features, replay.logits = {}, None
        return terms, logits


# ----------------------------------------------------------------------------- the result

@dataclass
class CascadeResult:
    """What :func:`cascade` returns.

    models: the teacher and every trained rung, in ladder order (eval mode).
    rungs: one info dict per rung, the teacher's first (``trained: False``). Each holds ``name``,
        ``rung``, ``spec``, ``params``, ``flops``, ``test_top1`` (last epoch), and for trained rungs
        ``teachers`` (names of the rungs it learned from), ``teacher_digests``, ``val_top1``,
        ``best_epoch``, ``best_val_top1``, ``best_epoch_test_top1``, ``train_seconds``,
        ``history``, ``R`` / ``R_teacher`` (substage CKA against its nearest teacher and against
        the original teacher: ``{"matrix", "student", "teacher"}``), ``W`` (the last epoch's
        pairing when the method has one), ``pseudo_in`` (metrics of the pseudo-labels it trained
        on) and, for every rung, ``pseudo_out`` (after re-refinement with it).
    pseudo: the pseudo-labels after each rung (index 0: the teacher's), or [] without them.
    out_dir: the run folder.
    """

    models: list[nn.Module]
    rungs: list[dict]
    pseudo: list[PseudoLabels] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def final(self) -> nn.Module:
        return self.models[-1]

    @property
    def final_info(self) -> dict:
        return self.rungs[-1]

    def table(self) -> str:
        """Markdown: every rung's size, cost and test accuracy."""
        return ladder_markdown(self.rungs)


# ----------------------------------------------------------------------------- helpers

def _matrix(corr) -> dict:
    return {"matrix": corr.R.tolist(), "student": list(corr.student_names), "teacher": list(corr.teacher_names)}


def _last_pairing(history: list[dict], prefix: str = "W") -> dict | None:
    from kdlab.recipes import matrices_from_history

    epochs, matrices, s, t = matrices_from_history(history, prefix)
    if not matrices:
        return None
    return {"matrix": matrices[-1].tolist(), "student": s, "teacher": t, "epoch": epochs[-1]}


def _save_state(path: Path, labeler: PseudoLabeler, temperature: float) -> None:
    s = labeler.state
    atomic_save({"probs": s.probs, "members": s.members, "embeddings": s.embeddings, "index": s.index,
                 "views": list(s.views), "clips": s.clips, "blind_flip": s.blind_flip, "rounds": labeler.rounds,
                 "temperature": temperature}, path)


def _load_state(path: Path, labeler: PseudoLabeler) -> float:
    d = load_checkpoint(path)
    labeler.state = Predictions(d["probs"], d["members"], d["embeddings"], d["index"], tuple(d["views"]),
                                d["clips"], d["blind_flip"])
    labeler.rounds = d["rounds"]
    return float(d["temperature"])


def _pseudo_metrics(pl: PseudoLabels, weak: WeakLabels) -> dict:
    keep = ("coverage", "accuracy", "pseudo_coverage", "pseudo_accuracy", "full_accuracy", "corrections",
            "corrections_right", "dropped", "noisy_given", "noisy_fixed", "given_accuracy_after", "ece")
    m = pl.metrics(weak.true)
    return {k: m[k] for k in keep}


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
        mode: "chain" (rung k learns from rung k-1) or "dense" (from every earlier rung, see
            :class:`DenseDistillation`).
        method: a key of :data:`kdlab.distill.METHODS` other than "scratch" ("kd", "skd", ...);
            ``options`` override its preset (any :class:`~kdlab.distill.Distillation` option).
        epochs: per rung (default :func:`kdlab.experiment.default_epochs` "student").
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
    labeler, temperature, pls = None, None, []
    train_videos = Subset(splits.train_eval, splits.labelled + splits.unlabelled)

    def rerefine(k: int, model: nn.Module) -> None:
        nonlocal temperature
        path = out / "pseudo" / f"after-{k}.pt"
        if path.is_file():
            temperature = _load_state(path, labeler)
        else:
            if temperature is None:
                val_true = torch.tensor([splits.labels[i] for i in splits.val])
                temperature = settings.get("temperature") or fit_temperature(
                    predict(model, splits.val_set(), clips=clips), val_true)
            labeler.update(predict(model, train_videos, clips=clips, progress=show))
            if rank == 0:
                _save_state(path, labeler, temperature)
        pl = labeler.refine(temperature=temperature)
        pls.append(pl)
        infos[k]["pseudo_out"] = _pseudo_metrics(pl, weak)

    if pseudo:
        labeler = PseudoLabeler(weak, momentum=momentum, **{k: v for k, v in settings.items() if k != "temperature"})
        rerefine(0, teacher)

    bar = tqdm(total=len(rungs) - 1, desc=f"cascade ({mode}, {method})", disable=not show)
    for k in range(1, len(rungs)):
        folder = out / f"rung-{k}"
        teacher_ids = [k - 1] if mode == "chain" else list(range(k))
        teachers = [models[j] for j in teacher_ids]
        if pseudo:
            current = pls[-1]
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
            model, info = _train_rung(
                k, rungs[k], teachers, splits, labels, weights, views=views, method=method, epochs=epochs,
                seed=seed, lr=lr, batch_size=batch_size, clip_shape=clip_shape, folder=folder,
                cache_dir=Path(cache_dir) if cache_dir is not None else runs_dir() / "teacher-cache",
                run_config={**config, "rung": k, "teachers": [weights_digest(t) for t in teachers]},
                progress=show, rank=rank, options=options, amp=amp,
                log_dir=None if log_dir is None else Path(log_dir) / f"rung-{k}")
            info.update({
                "name": names[k], "teachers": [names[j] for j in teacher_ids],
                "teacher_digests": [weights_digest(t) for t in teachers],
                "pseudo_in": _pseudo_metrics(pls[-1], weak) if pseudo else None,
            })
            val_loader = DataLoader(splits.val_set(), batch_size=32)
            # Debiased CKA (as notebooks 03 and 05) needs a few clips; tiny test sets get the plain one.
            corr = dict(loader=val_loader, batches=None, pool="mean", debiased=len(splits.val) >= 8)
            info["R"] = _matrix(substage_correlation(model, models[k - 1], **corr))
            info["R_teacher"] = _matrix(substage_correlation(model, teacher, **corr))
            info["W"] = _last_pairing(info["history"], "W" if len(teachers) == 1 else f"t{len(teachers) - 1}/W")
            if rank == 0:
                save_model(folder, model, info)
        models.append(model.eval())
        infos.append(info)
        if pseudo:
            if refine_pseudo:
                rerefine(k, model)
            else:
                pls.append(pls[-1])
                infos[k]["pseudo_out"] = infos[k - 1]["pseudo_out"]
        bar.update(1)
        bar.set_postfix({"rung": names[k], "test top-1": round(info["test_top1"], 1)})
    bar.close()
    return CascadeResult(models=models, rungs=infos, pseudo=pls, out_dir=out)


def _key(options: dict):
    from kdlab.recipes import key_of

    return key_of(options, "options")


def _train_rung(k: int, spec: VideoNetSpec, teachers: list[nn.Module], splits: Splits, labels: torch.Tensor,
                weights: torch.Tensor | None, *, views, method, epochs, seed, lr, batch_size, clip_shape,
                folder: Path, cache_dir: Path, run_config: dict, progress: bool, rank: int,
                options: dict, amp: bool = False, log_dir: Path | None = None) -> tuple[nn.Module, dict]:
    """Train one rung from ``teachers`` (fit resumes inside ``folder/fit``); returns (model, info)."""
    train_set, views_ds = training_set(splits, labels, views)
    torch.manual_seed(seed)
    student = build_model(spec, splits.num_classes)
    parts = []
    for j, t in enumerate(teachers):
        cache = None
        if views_ds is not None:
            cache = TeacherCache(t, views_ds, cache_dir, indices=splits.labelled + splits.unlabelled,
                                 progress=progress)
        settings = {"epochs": epochs, "val_data": splits.val_set(), "teacher_cache": cache, "clip_shape": clip_shape,
                    "sample_weights": weights}
        overrides = {**settings, **options}
        if j > 0:
            overrides["label_weight"] = 0.0  # the label term counts once, in the first part
        parts.append(make_objective(method, t, student, **overrides))
    objective = parts[0] if len(parts) == 1 else DenseDistillation(parts)
    tic = time.perf_counter()
    history = fit(student, train_set, splits.val_set(), objective=objective, epochs=epochs, lr=lr,
                  batch_size=batch_size, seed=seed, out_dir=folder / "fit", run_config=run_config, progress=progress,
                  amp=amp, log_dir=log_dir)
    seconds = time.perf_counter() - tic
    test = evaluate(student, splits.test)
    best = build_model(spec, splits.num_classes)
    best.load_state_dict(history.best_state)
    info = {
        "rung": k, "trained": True, "spec": spec.to_dict(), "method": method, "epochs": epochs, "seed": seed,
        "views": views, "params": count_parameters(student), "flops": count_flops(student, (1, *clip_shape)),
        "val_top1": history.last.get("val/top1"), "test_top1": test["top1"], "best_epoch": history.best_epoch,
        "best_val_top1": history.best["val/top1"], "best_epoch_test_top1": evaluate(best, splits.test)["top1"],
        "train_seconds": seconds, "history": history.records, "confusion": test["confusion"],
    }
    return student, info
