"""What the benchmark runs: :class:`BenchConfig`, its default and quick variants, TOML loading.

The default variant (``make bench``, ``kdlab bench``) is the issue's protocol: 10 % labels, seeds
0, 1, 2, every method, the label-budget sweep and the SKD ablations, all with the same student,
epochs, views, optimiser, augmentation and teacher. The quick variant (``--quick``, or
``KDLAB_QUICK=1``) keeps the schema with a few methods, two seeds and short training, and writes
``results/benchmark-quick.json``: it never overwrites the full results.

**Teacher protocol.** ``"pretrained"`` by default on the simulated data: the teacher is
pre-trained on the separate simulated *source* corpus and fine-tuned on the labelled budget, so
it has never seen a label of the unlabelled videos it teaches on (the ``"all"`` teacher has,
which flatters every method that learns from its outputs). On a real dataset (``data=PATH``) the
default is ``"all"``, since the simulated source corpus is no pre-training for real video; set
``teacher = "pretrained"`` or ``"labelled"`` to choose. Within one budget every method distils
from the same teacher; each budget of the sweep has its own (fine-tuned on that budget).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from kdlab import environment
from kdlab.distill.methods import SKD_TUNED
from kdlab.teachers import PROTOCOLS
from kdlab.io import read_toml

#: Every method of the main table, in the order of the report. ``teacher`` is reported apart.
METHODS = ("scratch", "scratch_pseudo", "kd", "dkd", "fitnet", "at", "sp", "rkd", "pkt", "nst", "takd", "dgkd", "skd")

#: Ablations of SKD: name -> (the run it differs from, what is switched off). ``no_cascade`` is
#: the full method without its cascade; the others each switch one more part off that direct
#: variant, so every comparison changes one thing (and none pays for a cascade).
ABLATIONS = {
    "no_cascade": ("skd", "cascade off: the student distils from the teacher directly"),
    "identity_pairing": ("no_cascade", "correlation pairing -> identity (stage i with stage i)"),
    "joint_schedule": ("no_cascade", "progressive schedule -> joint (every term on from the start)"),
    "mse_features": ("no_cascade", "feature-distribution loss -> plain MSE on the adapted features"),
    "raw_pseudo_labels": ("no_cascade", "pseudo-label refinement off: the raw teacher argmax of one clip"),
    "no_feature_terms": ("no_cascade", "substage feature terms off: KD and the refined pseudo-labels only, KD on "
                                       "from the first epoch"),
    "no_teacher_cache": ("no_cascade", "teacher cache off: the teacher runs on every batch (same views)"),
}

#: Reference points reported beside the methods (:func:`kdlab.bench.runner.run_reference`).
REFERENCES = ("student_all_labels", "scratch_same_steps")

SWEEP_BUDGETS = (1.0, 5.0, 10.0, 20.0, 50.0)


#: The named regimes of ``make bench`` (README, "Benchmark"). ``discriminative`` is the main
#: table: a small training pool, chosen by ``make regimes`` (``results/regimes.json``) because the
#: teacher's labels alone no longer carry the student there, and the methods' tuned settings
#: (``make tune``, ``results/tuning.json``). ``easy`` is the control: every training video in the
#: pool, where the teacher's pseudo-labels alone nearly reach the teacher and the methods cannot
#: differ (fewer seeds and methods, to keep both regimes within an hour on 2 cores).
#: The tuned settings (``make tune``, ``results/tuning.json``: the trial with the best validation
#: accuracy out of 6 per method; KD's and FitNets' presets won their own tuning). SKD's is the
#: library's one preset, :data:`kdlab.distill.SKD_TUNED` (the name TUNED_SKD stays for old imports).
TUNED_SKD = SKD_TUNED
TUNED_METHODS = {"dkd": {"dkd_beta": 2.0, "kd_temperature": 4.0, "logit_weight": 1.0}}

#: The untuned feature baselines with the slowest steps, left out of the main table to keep
#: ``make bench`` within an hour on 2 cores (about 15 of its 72 minutes; README, "Benchmark").
#: ``make bench-feature-baselines`` runs them against KD in the same regime.
SLOW_UNTUNED = ("at", "sp", "nst")

REGIMES: dict[str, dict] = {
    "discriminative": dict(pool=30, epochs=16, seeds=(0, 1, 2, 3, 4), sweep_budgets=(5.0, 20.0, 50.0),
                           methods=tuple(m for m in METHODS if m not in SLOW_UNTUNED),
                           ablations=("no_cascade", "identity_pairing", "joint_schedule", "mse_features",
                                      "raw_pseudo_labels", "no_feature_terms"),
                           skd=TUNED_SKD, method_options=TUNED_METHODS, cascade_steps=1),
    "easy": dict(pool=None, epochs=8, seeds=(0, 1, 2), methods=("scratch_pseudo", "kd"),
                 references=("student_all_labels",), ablations=(), sweep_budgets=(),
                 skd=TUNED_SKD, method_options=TUNED_METHODS, cascade_steps=1),
}
MAIN_REGIME = "discriminative"


class BenchConfigError(ValueError):
    """A benchmark configuration names an unknown method, ablation or setting."""


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one benchmark run (see the module docstring for the variants).

    data: dataset folder (UCF101/HMDB51 layout or generated); None: the generated default.
    budget: percent of training videos labelled in the main table and the ablations.
    seeds: one run per seed for every method and ablation; sweep_seeds for the sweep (None: seeds).
    epochs, views, batch_size, lr: the one training recipe of every student (views: fixed
        augmented views per video, whose teacher outputs are cached).
    teacher: protocol of :func:`kdlab.teachers.get_teacher` (None: "pretrained" on the
        simulated default, "all" on a given dataset); teacher_epochs (None: the default).
    methods, ablations: names from :data:`METHODS` and :data:`ABLATIONS`.
    sweep_budgets, sweep_methods: the label-budget sweep (methods from :data:`METHODS`).
    teacher_model, student_model: names of :data:`kdlab.models.SPECS` (the cascade's ladder
        interpolates between them).
    skd: options of the SKD objective (default :data:`kdlab.distill.SKD_TUNED`). "skd" runs through the cascade teacher -> assistant(s) ->
        student with ``cascade_steps`` assistants (0: directly), on refined pseudo-labels that are
        re-refined after every rung (:func:`kdlab.cascade.cascade`).
    method_options: per-method overrides of the presets of :data:`kdlab.distill.METHODS` (e.g.
        ``{"kd": {"kd_temperature": 2.0}}``); ``takd`` and ``dgkd`` use ``kd``'s.
    pseudo: refinement settings (:func:`kdlab.pseudo.refine` keys) for skd and scratch_pseudo.
    frames, size: clip shape. pool: training-pool videos per class (None: every training video;
        :class:`kdlab.weak_splits.DataConfig`). variant: "default" or "quick" (reported). out: the JSON path
        (None: ``results/benchmark.json``, ``results/benchmark-quick.json`` for the quick variant).
    """

    data: str | None = None
    budget: float = 10.0
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 8
    views: int = 2
    batch_size: int = 16
    lr: float = 2e-3
    teacher: str | None = None
    teacher_epochs: int | None = None
    methods: tuple[str, ...] = METHODS
    references: tuple[str, ...] = REFERENCES
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    sweep_budgets: tuple[float, ...] = SWEEP_BUDGETS
    sweep_methods: tuple[str, ...] = ("scratch", "kd", "skd")
    sweep_seeds: tuple[int, ...] | None = (0,)
    skd: dict = field(default_factory=lambda: dict(SKD_TUNED))
    method_options: dict = field(default_factory=dict)
    cascade_steps: int = 1
    teacher_model: str = "teacher"
    student_model: str = "student"
    pseudo: dict = field(default_factory=dict)
    frames: int = 8
    size: int = 32
    pool: int | None = None
    regime: str = "custom"
    variant: str = "default"
    out: str | None = None

    def __post_init__(self):
        self.validate()

    # -- derived ------------------------------------------------------------------------------
    @property
    def protocol(self) -> str:
        return self.teacher or ("all" if self.data else "pretrained")

    @property
    def seeds_for_sweep(self) -> tuple[int, ...]:
        return tuple(self.sweep_seeds) if self.sweep_seeds is not None else tuple(self.seeds)

    def out_path(self) -> Path:
        if self.out:
            return Path(self.out)
        if self.variant == "quick":
            name = "benchmark-quick.json"
        elif self.regime in REGIMES and self.regime != MAIN_REGIME:
            name = f"benchmark-{self.regime}.json"
        else:
            name = "benchmark.json"
        return environment.project_root() / "results" / name

    def options_for(self, method: str) -> dict:
        """The overrides of ``method``'s preset that this benchmark trains it with (``skd``: its
        SKD options; the notebooks use this so that they run what the benchmark runs)."""
        return dict(self.skd) if method == "skd" else dict(self.method_options.get(method, {}))

    def replace(self, **changes) -> "BenchConfig":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"] = Path(self.data).name if self.data else None  # never a path of this machine
        d.pop("out")
        d["teacher"] = self.protocol
        return d

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        def unknown(kind: str, names, valid) -> None:
            bad = [n for n in names if n not in valid]
            if bad:
                raise BenchConfigError(f"unknown {kind} {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")

        unknown("method", self.methods, METHODS)
        unknown("sweep method", self.sweep_methods, METHODS)
        unknown("ablation", self.ablations, tuple(ABLATIONS))
        unknown("reference", self.references, REFERENCES)
        unknown("method in method_options", tuple(self.method_options), METHODS)
        if self.teacher is not None and self.teacher not in PROTOCOLS:
            raise BenchConfigError(f"unknown teacher protocol {self.teacher!r}; valid: {', '.join(PROTOCOLS)}")
        if not self.seeds:
            raise BenchConfigError("seeds must name at least one seed")
        if self.epochs < 1 or self.views < 1:
            raise BenchConfigError(f"epochs and views must be >= 1, got epochs={self.epochs}, views={self.views}")
        if not all(0 < float(b) <= 100 for b in (self.budget, *self.sweep_budgets)):
            raise BenchConfigError(f"budgets are percentages in (0, 100], got {self.budget} and {self.sweep_budgets}")
        if "no_cascade" in self.ablations and self.cascade_steps < 1:
            raise BenchConfigError("ablation 'no_cascade' needs cascade_steps >= 1 (otherwise skd has no cascade)")
        if self.variant not in ("default", "quick"):
            raise BenchConfigError(f"variant must be 'default' or 'quick', got {self.variant!r}")


def default_config(regime: str = MAIN_REGIME, **changes) -> BenchConfig:
    """The full benchmark of one named regime of :data:`REGIMES` (``make bench`` runs both)."""
    if regime not in REGIMES:
        raise BenchConfigError(f"unknown regime {regime!r}; valid: {', '.join(REGIMES)}")
    return BenchConfig(**{**REGIMES[regime], "regime": regime, **changes})


def quick_config(**changes) -> BenchConfig:
    """The quick variant: the same schema, a few methods, two seeds, short training (CI, notebook 07)."""
    settings = dict(
        variant="quick", regime=MAIN_REGIME, pool=REGIMES[MAIN_REGIME]["pool"], seeds=(0, 1), epochs=4, teacher_epochs=None,
        methods=("scratch", "scratch_pseudo", "kd", "skd"),
        ablations=("no_cascade", "raw_pseudo_labels"),
        sweep_budgets=(5.0, 10.0, 20.0), sweep_methods=("scratch", "kd"), sweep_seeds=(0,),
        skd=TUNED_SKD, method_options=TUNED_METHODS,
    )
    return BenchConfig(**{**settings, **changes})


_TUPLES = {"seeds", "methods", "references", "ablations", "sweep_budgets", "sweep_methods", "sweep_seeds"}


def load_config(path: str | Path | None = None, *, quick: bool | None = None, regime: str | None = None,
                **overrides) -> BenchConfig:
    """The variant (``quick``; None: ``KDLAB_QUICK``) updated with a TOML file's keys (top level or
    a ``[bench]`` table; keys are :class:`BenchConfig` fields) and then with ``overrides``.

    Unknown keys, methods or ablations raise :class:`BenchConfigError`.
    """
    quick = environment.quick() if quick is None else quick
    settings: dict = {}
    if path is not None:
        raw = read_toml(path, BenchConfigError)
        settings = raw.get("bench", raw)
    settings = {**settings, **{k: v for k, v in overrides.items() if v is not None}}
    fields = {f.name for f in dataclasses.fields(BenchConfig)}
    bad = sorted(set(settings) - fields)
    if bad:
        raise BenchConfigError(f"unknown benchmark setting(s) {', '.join(bad)}; valid: {', '.join(sorted(fields))}")
    for key in _TUPLES & set(settings):
        value = settings[key]
        if value is not None:
            settings[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if quick:
        return quick_config(**settings)
    return default_config(regime or settings.pop("regime", MAIN_REGIME), **settings)
