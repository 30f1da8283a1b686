"""The distillation objective: one class for substage distillation (SKD) and every baseline.

:class:`Distillation` is an objective for :func:`kdlab.train.fit`: called as
``objective(model, (clips, labels, index[, view]))`` it returns ``(terms, student_logits)``.
Its terms, each already multiplied by its weight (so the training loss is their sum):

- ``"label"``: :func:`kdlab.train.label_loss` on labelled samples (label -1 is ignored), or on
  pseudo-label ``soft_targets`` with ``sample_weights``. Always on.
- ``"kd"``, ``"dkd"`` (a name of :data:`kdlab.losses.LOGIT_LOSSES`): the logit loss on *every*
  sample, labelled or not: this is how unlabelled videos reach the student, through the
  teacher's soft outputs.
- ``"feat/<student stage>"``, one per distilled student stage i:
  ``sum_j W[i, j] * D(adapter_ij(F_s^i), F_t^j)`` over teacher stages j, with W the pairing.
- ``"embed"``: a relational loss (RKD, PKT) between the head embeddings ``head.embed`` (B, C).

Which feature/logit terms are on depends on the epoch (:class:`~kdlab.distill.schedule.Schedule`);
a term that is off is absent. The pairing W comes from the substage correlation R (linear CKA
of mean-pooled stage features on a fixed probe set of clips), recomputed at every epoch start for
the correlation-based rules; the teacher's side of R is computed once, since the teacher never
changes.

The teacher runs in eval mode under ``torch.no_grad()``, once per batch (or not at all: with a
:class:`~kdlab.distill.teacher_cache.TeacherCache` its outputs are read back). It is kept out of
the registered submodules, so it is neither saved in the objective's state dict nor optimised;
``objective.to(device)`` still moves it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from kdlab.evaluation import evaluate
from kdlab.hooks import SubstageTap
from kdlab.losses import DEFAULT_FD_KIND, EMBEDDING_LOSSES, FD_KINDS, FEATURE_LOSSES, LOGIT_LOSSES
from kdlab.pairing import PAIRING_RULES, identity_pairing, make_pairing
from kdlab.supervised import label_loss

from .pairs import (check_cache_data, check_cache_teacher, check_stages, feature_fn, logit_settings, pair_adapter,
                    pair_grid, stage_shapes, teacher_on_grid)
from .probe import CorrelationProbe, device_of
from .schedule import Schedule
from .teacher_cache import TeacherCache

FEATURE_LOSS_NAMES = ("fd", *FEATURE_LOSSES)
LOGIT_LOSS_NAMES = tuple(LOGIT_LOSSES)  # as registered at import; the check reads the registry
GRIDS = ("coarser", "teacher")
EMBED = "head.embed"


class Distillation(nn.Module):
    """Label + logit + feature (+ embedding) distillation terms for :func:`kdlab.train.fit`.

    Args:
        teacher: the frozen teacher (None for label-only training, ``make_objective("scratch")``).
        student: the model that will be trained (read for its stage names and shapes only).
        label_weight, soft_targets, sample_weights, label_smoothing: the label term
            (:func:`kdlab.train.label_loss`; soft targets (N, K) and weights (N,) are indexed by
            each batch's video index).
        logit_loss: a name of :data:`kdlab.losses.LOGIT_LOSSES` ("kd", "dkd") or None;
            logit_weight; kd_temperature (T of both), dkd_alpha, dkd_beta: each registered loss
            gets the ones its signature names (:func:`kdlab.losses.logit_loss_options`);
            logit_options: any further keyword settings of the chosen loss. The target (B,) a
            logit loss gets is the label, or the teacher's argmax for unlabelled videos.
        feature_loss: D, a name of ``FEATURE_LOSS_NAMES`` ("fd" is
            :func:`kdlab.losses.fd_loss` with ``fd_kind``/``fd_temperature``), a callable
            ``(f_s, f_t) -> scalar``, or None. feature_weight multiplies every feature term.
        student_stages, teacher_stages: distilled stage names (default: every stage of each).
        pairing: "identity", "cka_softmax", "monotone", "learned", or a fixed matrix W
            (S_student, S_teacher). tau: softmax temperature of "cka_softmax" (and the
            initial logits R / tau of "learned"). The correlation-based rules set W at each
            ``on_epoch_start``; before the first one W is the identity pairing.
        min_pair_weight: pairs with W[i, j] below it are skipped (not for "learned", whose
            weights need every pair's gradient); 0.01 drops contributions under 1 %.
        grid: where a pair is compared. "coarser" (default): on the coarser of the two (T, H, W)
            grids, the finer side average-pooled (the teacher's without gradient), so nothing
            is upsampled; "teacher": the student is resampled to the teacher's grid, as the
            guide first described. They agree on equal grids; "coarser" halves the cost of the
            16 feature pairs of an SKD step (measured on the CPU, 32 x 32 clips).
        max_positions: a pair's grid is halved in H and W until it has at most this many
            positions (T*H*W; None: no cap). The feature terms of the first stages are
            memory-bound work on the largest maps; 128 compares them on 8 x 4 x 4 (at 32 x 32
            input), keeps every frame, and leaves the deeper stages (<= 4 x 4 x 4) as they are.
        embedding_loss: "rkd", "pkt" or None, on ``head.embed``; embedding_weight.
        schedule: "progressive" or "joint"; phase_epochs, epochs, logits_from as in :class:`Schedule`.
        probe: clips for the correlation R: a Dataset (``probe_size`` videos drawn with
            ``probe_seed``), a DataLoader (its first ``probe_size`` clips), or None (the training
            data given to ``on_epoch_start``). Drawn once, so R is comparable across epochs.
        val_data: if given, the teacher is evaluated on it before distillation starts.
        teacher_cache: a :class:`TeacherCache` of this teacher; batches must then carry the view
            (``(clips, labels, index, view)``, from a :class:`CachedViews` dataset).
        clip_shape: (3, T, H, W) of the training clips, to size the adapters.

    Each adapter is a :class:`kdlab.losses.StageAdapter` (1x1x1 conv + BN + resampling) per
    (student stage, teacher stage) pair that may get weight; the channel-free losses AT and NST
    only resample positions, SP needs nothing.
    """

    def __init__(
        self, teacher: nn.Module | None, student: nn.Module, *,
        label_weight: float = 1.0, soft_targets: torch.Tensor | None = None,
        sample_weights: torch.Tensor | None = None, label_smoothing: float = 0.0,
        logit_loss: str | None = "kd", logit_weight: float = 1.0, kd_temperature: float = 4.0,
        dkd_alpha: float = 1.0, dkd_beta: float = 8.0, logit_options: dict | None = None,
        feature_loss: str | Callable | None = None, feature_weight: float = 1.0,
        fd_kind: str = DEFAULT_FD_KIND, fd_temperature: float = 1.0,
        student_stages: Sequence[str] | None = None, teacher_stages: Sequence[str] | None = None,
        pairing: str | torch.Tensor = "identity", tau: float = 0.1, min_pair_weight: float = 0.01,
        grid: str = "coarser", max_positions: int | None = 128,
        embedding_loss: str | None = None, embedding_weight: float = 1.0,
        schedule: str = "joint", phase_epochs: int | Sequence[int] | None = None, epochs: int | None = None,
        logits_from: str = "last",
        probe: Dataset | DataLoader | None = None, probe_size: int = 64, probe_seed: int = 0,
        val_data: Dataset | None = None, teacher_cache: TeacherCache | None = None,
        clip_shape: Sequence[int] = (3, 8, 32, 32),
    ):
        super().__init__()
        if logit_loss not in (None, *LOGIT_LOSSES):
            raise ValueError(f"unknown logit_loss {logit_loss!r}; valid: {', '.join(LOGIT_LOSSES)} or None")
        if embedding_loss not in (None, *EMBEDDING_LOSSES):
            raise ValueError(f"unknown embedding_loss {embedding_loss!r}; valid: {', '.join(EMBEDDING_LOSSES)} or None")
        if isinstance(feature_loss, str) and feature_loss not in FEATURE_LOSS_NAMES:
            raise ValueError(f"unknown feature_loss {feature_loss!r}; valid: {', '.join(FEATURE_LOSS_NAMES)}, "
                             "a callable (f_s, f_t) -> scalar, or None")
        if feature_loss == "fd" and fd_kind not in FD_KINDS:
            raise ValueError(f"unknown fd_kind {fd_kind!r}; valid: {', '.join(FD_KINDS)}")
        if grid not in GRIDS:
            raise ValueError(f"unknown grid {grid!r}; valid: {', '.join(GRIDS)}")
        self.grid, self.max_positions = grid, max_positions
        if isinstance(pairing, str) and pairing not in PAIRING_RULES:
            raise ValueError(f"unknown pairing {pairing!r}; valid: {', '.join(PAIRING_RULES)} or a matrix W")
        uses_teacher = logit_loss or feature_loss is not None or embedding_loss
        if uses_teacher and teacher is None:
            raise ValueError("this objective has distillation terms, so it needs a teacher (got teacher=None)")
        self._teacher = [teacher]  # a list keeps it out of the submodules: not saved, not optimised
        self.label_weight, self.label_smoothing = label_weight, label_smoothing
        self.register_buffer("soft_targets", soft_targets, persistent=False)
        self.register_buffer("sample_weights", sample_weights, persistent=False)
        self.logit_loss, self.logit_weight, self.kd_temperature = logit_loss, logit_weight, kd_temperature
        self.dkd_alpha, self.dkd_beta = dkd_alpha, dkd_beta
        self.logit_options = logit_settings(logit_loss, logit_options, kd_temperature=kd_temperature,
                                                 dkd_alpha=dkd_alpha, dkd_beta=dkd_beta)
        self.embedding_loss, self.embedding_weight = embedding_loss, embedding_weight
        self.feature_weight, self.min_pair_weight, self.tau = feature_weight, min_pair_weight, tau
        self.clip_shape = tuple(int(s) for s in clip_shape)
        self.teacher_cache, self.val_data = teacher_cache, val_data
        self.probe, self.probe_size, self.probe_seed = probe, probe_size, probe_seed

        # -- stages, shapes, pairing, adapters
        self.feature_loss = feature_loss
        if feature_loss is None:
            self.student_stages, self.teacher_stages = [], []
        else:
            self.student_stages = check_stages("student", student_stages, student, teacher)
            self.teacher_stages = check_stages("teacher", teacher_stages, student, teacher)
        self._loss_fn, self.feature_loss_name = feature_fn(feature_loss, fd_kind, fd_temperature)
        S_s, S_t = len(self.student_stages), len(self.teacher_stages)
        self.pairing_rule = pairing if isinstance(pairing, str) else "fixed"
        self.learned = None
        if self.pairing_rule == "fixed":
            W = torch.as_tensor(pairing, dtype=torch.float32)
            if tuple(W.shape) != (S_s, S_t):
                raise ValueError(f"pairing matrix has shape {tuple(W.shape)}, but student stages {self.student_stages} "
                                 f"x teacher stages {self.teacher_stages} need ({S_s}, {S_t})")
        else:
            W = identity_pairing(S_s, S_t) if S_s and S_t else torch.zeros(S_s, S_t)
            if self.pairing_rule == "learned" and S_s:
                self.learned = make_pairing("learned", num_student=S_s, num_teacher=S_t, tau=tau)
        self.register_buffer("W", W, persistent=False)
        self.R: torch.Tensor | None = None
        self.adapters = nn.ModuleDict()
        self.student_shapes, self.teacher_shapes = {}, {}
        if S_s:
            self.student_shapes = stage_shapes(student, self.student_stages, self.clip_shape)
            self.teacher_shapes = stage_shapes(teacher, self.teacher_stages, self.clip_shape)
            fixed = self.pairing_rule in ("fixed", "identity")
            for i, s in enumerate(self.student_stages):
                for j, t in enumerate(self.teacher_stages):
                    if not fixed or W[i, j] != 0:
                        s_shape, t_shape = self.student_shapes[s], self.teacher_shapes[t]
                        self.adapters[f"{i}_{j}"] = pair_adapter(s_shape, t_shape, self.feature_loss_name,
                                                                 self._pair_grid(s_shape, t_shape))
        self.embed_taps = [EMBED] if embedding_loss else []
        if embedding_loss:
            check_stages("student", self.embed_taps, student, teacher)
            check_stages("teacher", self.embed_taps, student, teacher)

        self.schedule = Schedule(schedule, self.student_stages, phase_epochs=phase_epochs, epochs=epochs,
                                 logits_from=logits_from)
        self.epoch = 0
        if teacher_cache is not None:
            check_cache_teacher(teacher_cache, teacher, [*self.teacher_stages, *self.embed_taps])
        # Records for plots and the history.
        self.teacher_metrics: dict | None = None
        self.correlation_history: list[torch.Tensor] = []
        self.pairing_history: list[torch.Tensor] = []
        self.history_epochs: list[int] = []
        self._probe: CorrelationProbe | None = None
        self._learned_started = False

    # -- the teacher, kept outside the module tree --------------------------------------------
    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):
        # .to() / .cuda() / .float() move the teacher too, though it is not a submodule.
        super()._apply(fn, *args, **kwargs)
        if self.teacher is not None:
            self.teacher._apply(fn, *args, **kwargs)
        return self

    # -- a pair's grid (kdlab.distill.pairs) ----------------------------------------------------
    def _pair_grid(self, s_shape: tuple[int, ...], t_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The (T, H, W) grid on which a pair is compared."""
        return pair_grid(s_shape, t_shape, self.grid, self.max_positions)

    def _teacher_on_grid(self, f_t: torch.Tensor, s_shape, t_shape) -> torch.Tensor:
        """Teacher features average-pooled onto the pair's grid (a no-op when it is their own)."""
        return teacher_on_grid(f_t, self.feature_loss_name, self._pair_grid(s_shape, t_shape))

    # -- schedule and pairing -----------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def phase(self):
        return self.schedule.phase(self.epoch)

    def pairing_weights(self) -> torch.Tensor:
        """W (S_student, S_teacher) in use now (differentiable for the learned pairing)."""
        return self.learned.weights() if self.learned is not None else self.W

    def correlation(self, model: nn.Module, data=None) -> torch.Tensor:
        """R (S_student, S_teacher), float64: linear CKA of mean-pooled stage features on the probe
        clips (:class:`~kdlab.distill.probe.CorrelationProbe`), drawn on the first call from
        ``probe`` (else from ``data``, a Dataset or the training DataLoader's dataset)."""
        if self._probe is None:
            source = self.probe if self.probe is not None else data
            if isinstance(source, DataLoader) and self.probe is None:
                source = source.dataset  # draw videos with our own seed, not the loader's order
            if source is None:
                raise ValueError(f"pairing={self.pairing_rule!r} needs probe clips: pass probe= (a Dataset or "
                                 "DataLoader) or call on_epoch_start with the training loader")
            self._probe = CorrelationProbe(self.teacher, self.teacher_stages, source, self.probe_size, self.probe_seed)
        return self._probe.correlation(model, self.student_stages)

    def update_pairing(self, model: nn.Module, data=None) -> torch.Tensor:
        """Recompute R on the probe and, for "cka_softmax" / "monotone", W from it. Returns W."""
        R = self.correlation(model, data)
        self.R = R
        if self.pairing_rule in ("cka_softmax", "monotone"):
            self.W = make_pairing(self.pairing_rule, R, tau=self.tau).to(self.W.device)
        return self.pairing_weights().detach()

    # -- hooks called by fit -------------------------------------------------------------------
    def evaluate_teacher(self, val_data) -> dict:
        """Top-1 etc. of the teacher on ``val_data`` (:func:`kdlab.train.evaluate`); recorded."""
        metrics = evaluate(self.teacher, val_data, device=device_of(self.teacher))
        self.teacher_metrics = {"top1": metrics["top1"], "loss": metrics["loss"], "n": metrics["n"]}
        return metrics

    def on_epoch_start(self, epoch: int, model: nn.Module, loader=None) -> None:
        """Set the phase; check the cache against the data; evaluate the teacher (first call);
        recompute the pairing. Runs with the global RNG forked, so it does not shift the
        epoch's random stream (a resumed run matches an uninterrupted one)."""
        self.set_epoch(epoch)
        with torch.random.fork_rng(devices=[]):
            if self.teacher_cache is not None and loader is not None:
                check_cache_data(self.teacher_cache, loader)
            if self.val_data is not None and self.teacher is not None and self.teacher_metrics is None:
                self.evaluate_teacher(self.val_data)
            if self.student_stages and self.pairing_rule in ("cka_softmax", "monotone", "learned"):
                W = self.update_pairing(model, loader)
                if self.learned is not None and epoch == 0 and not self._learned_started:
                    # Start the learned logits at R / tau (on a resumed run they come from the checkpoint).
                    self.learned.logits.data.copy_((self.R / self.tau).to(self.learned.logits))
                    self._learned_started = True
                    W = self.pairing_weights().detach()
                self.correlation_history.append(self.R.clone())
                self.pairing_history.append(W.cpu().clone())
                self.history_epochs.append(epoch)

    def epoch_record(self) -> dict[str, float]:
        """Floats merged into fit's history: ``phase``, ``teacher/val_top1``, and R and W as
        ``R/<student stage>-<teacher stage>`` and ``W/<student stage>-<teacher stage>``."""
        record = {"phase": float(self.phase.index)}
        if self.teacher_metrics is not None:
            record["teacher/val_top1"] = float(self.teacher_metrics["top1"])
        if self.student_stages:
            W = self.pairing_weights().detach().cpu()
            for i, s in enumerate(self.student_stages):
                for j, t in enumerate(self.teacher_stages):
                    record[f"W/{s}-{t}"] = float(W[i, j])
                    if self.R is not None:
                        record[f"R/{s}-{t}"] = float(self.R[i, j])
        return record

    # -- the terms -----------------------------------------------------------------------------
    @torch.no_grad()
    def teacher_outputs(self, batch, taps: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Teacher logits (B, K) and tapped features, from the cache or one no-grad forward."""
        clips = batch[0]
        if self.teacher_cache is not None:
            if len(batch) < 4:
                raise ValueError("teacher_cache needs batches (clips, labels, index, view): wrap the training "
                                 "dataset in CachedViews")
            return self.teacher_cache.lookup(batch[2], batch[3], device=clips.device, stages=taps)
        teacher = self.teacher
        teacher.eval()  # every call: fit's model.train() or a user may have flipped it
        device = device_of(teacher)
        if not taps:
            return teacher(clips.to(device)).to(clips.device), {}
        with SubstageTap(teacher, taps, detach=True) as tap:
            logits = teacher(clips.to(device))
        return logits.to(clips.device), {n: f.to(clips.device) for n, f in tap.features.items()}

    def forward(self, model: nn.Module, batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        clips, labels, index = batch[0], batch[1], batch[2]
        if tuple(clips.shape[1:]) != self.clip_shape and self.adapters:
            raise ValueError(f"clips of shape {tuple(clips.shape[1:])}, but the adapters were sized for "
                             f"clip_shape={self.clip_shape}: pass the right clip_shape")
        phase = self.phase
        stages = [s for s in self.student_stages if s in phase.stages]
        use_logits = phase.logits and self.logit_loss is not None
        use_embed = phase.logits and self.embedding_loss is not None
        s_taps = stages + (self.embed_taps if use_embed else [])
        if s_taps:
            with SubstageTap(model, s_taps) as tap:
                logits = model(clips)
            s_feats = tap.features
        else:
            logits, s_feats = model(clips), {}
        terms = {}
        if self.label_weight:
            terms["label"] = self.label_weight * label_loss(logits, labels, index, self.soft_targets,
                                                           self.sample_weights, self.label_smoothing)
        if not (stages or use_logits or use_embed):
            return terms, logits
        t_taps = (self.teacher_stages if stages else []) + (self.embed_taps if use_embed else [])
        t_logits, t_feats = self.teacher_outputs(batch, t_taps)
        if use_logits:
            # The label where there is one, the teacher's argmax elsewhere (None: the loss decides).
            target = torch.where(labels >= 0, labels, t_logits.argmax(1)) if labels.dim() == 1 else None
            loss = LOGIT_LOSSES[self.logit_loss](logits, t_logits, target, **self.logit_options)
            terms[self.logit_loss] = self.logit_weight * loss
        if stages:
            W = self.pairing_weights()
            # One host copy of the mask (not one device sync per pair); "learned" needs every pair.
            keep = torch.ones(W.shape, dtype=torch.bool)
            if self.learned is None:
                keep = (W.detach() >= self.min_pair_weight).cpu()
            on_grid = {}  # teacher stage and grid -> pooled teacher features, shared by the pairs
            for i, s in enumerate(self.student_stages):
                if s not in phase.stages:
                    continue
                total = logits.new_zeros(())
                for j, t in enumerate(self.teacher_stages):
                    key = f"{i}_{j}"
                    if key not in self.adapters or not keep[i, j]:
                        continue
                    grid = self._pair_grid(self.student_shapes[s], self.teacher_shapes[t])
                    if (t, grid) not in on_grid:
                        on_grid[t, grid] = self._teacher_on_grid(t_feats[t], self.student_shapes[s],
                                                                 self.teacher_shapes[t])
                    f_t = on_grid[t, grid]
                    total = total + W[i, j] * self._loss_fn(self.adapters[key](s_feats[s]), f_t)
                terms[f"feat/{s}"] = self.feature_weight * total
        if use_embed:
            e_s, e_t = s_feats[EMBED].flatten(1), t_feats[EMBED].flatten(1)
            terms["embed"] = self.embedding_weight * EMBEDDING_LOSSES[self.embedding_loss](e_s, e_t)
        return terms, logits

    def extra_repr(self) -> str:
        return (f"logit={self.logit_loss}, feature={self.feature_loss_name}, embedding={self.embedding_loss}, "
                f"pairing={self.pairing_rule}, schedule={self.schedule}")
