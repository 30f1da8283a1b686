"""What each ``kdlab`` command does (:mod:`kdlab.cli` parses the command line and calls these).

One function per command, ``_cmd_<name>(args) -> exit status``, and the settings they share:
the TOML file's table and the flags, checked before anything is written (a bad one is a
:class:`~kdlab.errors.UsageError`). Heavy imports stay inside the functions, so ``kdlab --help``
starts fast.
"""

from __future__ import annotations

import json
from pathlib import Path

from kdlab.errors import UsageError

TRAIN_DEFAULTS = {
    "model": "student", "data": None, "labels": "budget", "budget": 10.0, "budget_seed": 0, "epochs": 10,
    "batch_size": 16, "lr": 2e-3, "seed": 0, "frames": 8, "size": 32, "cache": True, "num_workers": 0,
    "amp": False, "log_dir": None,
}


def _cmd_data(args) -> int:
    from kdlab.data import default_dataset, generate_dataset
    from kdlab.data.check import check_dataset

    if args.action == "check":
        if not args.path:
            raise UsageError("kdlab data check needs a dataset folder: kdlab data check PATH")
        report = check_dataset(args.path, frames=args.frames, fold=args.fold)
        print(report.summary())
        for problem in report.problems:
            print(f"  - {problem}")
        return 1 if report.problems else 0
    if args.action is not None:
        raise UsageError(f"unknown data action {args.action!r}; valid: check")
    overrides = {} if args.difficulty is None else {"difficulty": args.difficulty}
    if args.root:
        root = generate_dataset(args.root, domain=args.domain, **overrides)
    else:
        root = default_dataset(domain=args.domain, **overrides)
    print(f"dataset ready: {root}")
    return 0


def _load_config(path: str | None, section: str | None = None) -> dict:
    """The ``[section]`` table (or the top level) of the TOML file at ``path``, its values checked."""
    if not path:
        return {}
    from kdlab.io import read_toml
    from kdlab.settings import check_settings

    raw = read_toml(path, UsageError)
    values = raw.get(section, raw) if section else raw
    check_settings(values, path)
    return values


def _flags(args, keys) -> dict:
    """The flags given on the command line (not None) among ``keys``, their values checked."""
    from kdlab.settings import check_settings

    values = {k: v for k, v in vars(args).items() if k in keys and v is not None}
    check_settings(values, "flag")
    return values


def _need_tensorboard(log_dir) -> None:
    if log_dir is not None:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise UsageError("--log-dir needs the tensorboard package: pip install tensorboard") from None


def _cmd_train(args) -> int:
    """One classifier with cross-entropy into ``--out``: the same splits as :class:`kdlab.weak_splits.Splits`
    (validation carved from the training videos outside the label budget), trained and tested by
    :func:`kdlab.trained.train_and_report`, in kdlab's run-folder layout (:mod:`kdlab.runfolder`:
    ``config.json``, ``fit/``, ``report.json``)."""
    import torch

    from kdlab.data import default_dataset
    from kdlab.io import atomic_write_text
    from kdlab.models import SPECS, TORCHVISION_MODELS, build_model, count_flops
    from kdlab.runfolder import check_writable, open_run
    from kdlab.settings import check_clip
    from kdlab.train import ResumeMismatchError, distributed
    from kdlab.trained import train_and_report
    from kdlab.weak_splits import DataConfig, Splits

    from_file = _load_config(args.config, "train")
    unknown = sorted(set(from_file) - set(TRAIN_DEFAULTS) - {"out"})
    if unknown:
        raise UsageError(f"unknown keys in {args.config}: {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(TRAIN_DEFAULTS))}")
    from_flags = _flags(args, TRAIN_DEFAULTS)
    cfg = {**TRAIN_DEFAULTS, **from_file, **from_flags}
    file_out = cfg.pop("out", None)
    out = args.out or file_out
    if not out:
        raise UsageError("kdlab train needs an output folder: --out DIR")
    if cfg["labels"] not in ("budget", "all"):
        raise UsageError(f"labels must be 'budget' or 'all', got {cfg['labels']!r}")
    if cfg["model"] not in (*SPECS, *TORCHVISION_MODELS):
        raise UsageError(f"unknown model {cfg['model']!r}; valid: {', '.join([*SPECS, *TORCHVISION_MODELS])}")
    check_clip(cfg["model"], cfg["frames"], "flag" if "frames" in from_flags else args.config)
    check_writable(out)
    if cfg["log_dir"] is not None:
        check_writable(cfg["log_dir"], "log folder")
    _need_tensorboard(cfg["log_dir"])
    root = Path(cfg["data"]) if cfg["data"] else default_dataset()
    if not root.is_dir():
        raise UsageError(f"dataset folder {root} does not exist (make one with: kdlab data --root {root})")
    rank, world = distributed()
    splits = Splits(DataConfig(root=str(root), frames=cfg["frames"], size=cfg["size"], budget=cfg["budget"],
                               budget_seed=cfg["budget_seed"], cache=cfg["cache"]), progress=rank == 0)
    train_set = splits.labelled_set() if cfg["labels"] == "budget" else splits.all_labels_set()
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["model"], splits.num_classes)
    # What makes the run (config.json and the checkpoints compare it on resume): not where it logs, amp only when on.
    run_config = {k: (str(v) if k == "data" else v) for k, v in {**cfg, "data": root}.items()
                  if k != "log_dir" and not (k == "amp" and not v)}
    if (Path(out) / "checkpoint.pt").is_file() and not (Path(out) / "config.json").is_file():
        raise ResumeMismatchError(f"{out} holds a run of an older kdlab train (its checkpoints at the top, validation "
                                  "from the label budget); use another output folder or delete it")
    with open_run(out, {"kind": "train", **run_config}, rank=rank, restart=args.restart, shared=(root / ".cache",)):
        run = train_and_report(model, train_set, splits.val_set(), splits.test,
                               build=lambda: build_model(cfg["model"], splits.num_classes),
                               evaluate_test=rank == 0, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                               lr=cfg["lr"], seed=cfg["seed"], out_dir=Path(out) / "fit", run_config=run_config,
                               num_workers=cfg["num_workers"], amp=cfg["amp"], log_dir=cfg["log_dir"])
        if rank == 0:
            info = run.info()
            report = {"kind": "train", "config": {**cfg, "data": str(root)}, "data": splits.summary(),
                      "test_top1": info["test_top1"], "best_epoch_test_top1": info["best_epoch_test_top1"],
                      "summary": run.history.summary(),
                      "flops": count_flops(model, (1, 3, cfg["frames"], cfg["size"], cfg["size"]))}
            atomic_write_text(Path(out) / "report.json", json.dumps(report, indent=1))
            print(f"test top-1 {info['test_top1']:.1f}% (last epoch), {info['best_epoch_test_top1']:.1f}% at the best "
                  f"validation epoch ({run.history.best_epoch}); results in {out}")
    return 0


# ----------------------------------------------------------------------------- distill, cascade, skd, report

#: Flags shared by distill, cascade and skd -> (type, help). Keys are the config keys; the help
#: shows each default (of kdlab.pipeline.SKDConfig).
RUN_FLAGS = {
    "data": (str, "dataset folder (default: the generated default dataset)"),
    "budget": (float, "percent of training videos labelled"),
    "budget_seed": (int, "seed of the label budget"),
    "pool": (int, "training-pool videos per class (default: every training video; the benchmark's main regime: 30)"),
    "frames": (int, "frames per clip"),
    "size": (int, "clip height and width"),
    "teacher": (str, "teacher protocol: all, labelled or pretrained"),
    "teacher_epochs": (int, "epochs of the teacher (default: kdlab.teachers.default_epochs)"),
    "epochs": (int, "epochs per student / rung (default: kdlab.teachers.default_epochs)"),
    "seed": (int, "initialisation and data order"),
    "views": (int, "fixed augmented views per video, teacher outputs cached; 0: fresh clips"),
    "lr": (float, "learning rate"),
    "batch_size": (int, "batch size per process"),
}
CASCADE_FLAGS = {
    "mode": (str, "a cascade mode of kdlab.cascade.MODES"),
    "steps": (int, "assistants between teacher and student"),
    "teacher_model": (str, "the ladder's top spec"),
    "student_model": (str, "the ladder's bottom spec"),
    "noise_rate": (float, "share of the budget's labels made wrong"),
    "noise_mode": (str, "symmetric, mirror or pairflip"),
    "clips": (int, "clips per view in the pseudo-label ensemble"),
}
#: Flags of the commands that train, beside their settings.
OUTPUT_FLAGS = ("amp", "log_dir")


def _parse_value(text: str):
    """A TOML value (``3``, ``0.1``, ``true``, ``"joint"``) or, failing that, the plain string."""
    from kdlab.io import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _run_settings(args, section: str) -> dict:
    """The config file's ``[section]`` (or top level), then flags; ``--option K=V`` into ``options``.
    Values of the wrong type or range are refused naming the file or the flag."""
    values = _load_config(args.config, section)
    values.update(_flags(args, (*RUN_FLAGS, *CASCADE_FLAGS, *OUTPUT_FLAGS, "out", "method", "model", "pseudo",
                                "refine_pseudo")))
    options = dict(values.get("options") or {})
    for item in args.option or []:
        if "=" not in item:
            raise UsageError(f"--option needs KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        options[key.strip()] = _parse_value(text.strip())
    if options:
        values["options"] = options
    return values


def _run(kind: str, values: dict, restart: bool) -> dict:
    from kdlab import pipeline

    _need_tensorboard(values.get("log_dir"))
    cls = pipeline.DistillConfig if kind == "distill" else pipeline.SKDConfig
    cfg = pipeline.make_config(cls, values)
    return (pipeline.run_distill if kind == "distill" else pipeline.run_skd)(cfg, restart=restart)


def _print_done(report: dict, out) -> None:
    if not report:  # ranks other than 0
        return
    if report["kind"] == "distill":
        s = report["student"]
        print(f"{s['method']} -> {s['model']}: test top-1 {s['test_top1']:.1f}% (last epoch), "
              f"{s['best_epoch_test_top1']:.1f}% at the best validation epoch; report in {out}")
    else:
        for r in report["rungs"]:
            print(f"{r['name']:>12s}: {r['params']:>9,} params, test top-1 {r['test_top1']:5.1f}%")
        print(f"report in {out}/report.md")


def _cmd_distill(args) -> int:
    values = _run_settings(args, "distill")
    _print_done(_run("distill", values, args.restart), values.get("out"))
    return 0


def _cmd_cascade(args) -> int:
    values = _run_settings(args, "cascade")
    _print_done(_run("skd", values, args.restart), values.get("out"))
    return 0


def _cmd_skd(args) -> int:
    values = _run_settings(args, "skd")
    if values.get("method", "skd") != "skd":
        raise UsageError(f"kdlab skd runs method 'skd' (got {values['method']!r}); use kdlab cascade for others")
    _print_done(_run("skd", values, args.restart), values.get("out"))
    return 0


def _cmd_report(args) -> int:
    from kdlab.pipeline import CONFIG_JSON, REPORT_JSON, render_markdown

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} does not exist")
    if not (folder / REPORT_JSON).is_file():
        if (folder / CONFIG_JSON).is_file():
            raise UsageError(f"{folder} holds an unfinished run: run the same command again to resume it")
        raise UsageError(f"{folder} is not a kdlab distill/cascade/skd output folder (no {REPORT_JSON})")
    report = json.loads((folder / REPORT_JSON).read_text())
    print(json.dumps(report, indent=1) if args.json else render_markdown(report))
    return 0


def _cmd_artifacts(args) -> int:
    from kdlab.artifacts import pack, unpack

    if args.action == "pack":
        pack(args.file, runs=args.runs, series=args.series, teacher_cache=args.teacher_cache)
    else:
        unpack(args.file, runs=args.runs)
    return 0


def _cmd_export(args) -> int:
    from kdlab.export import export_student

    try:
        record = export_student(args.folder, args.format, args.out)
    except ImportError as exc:  # the optional onnx packages
        raise UsageError(str(exc)) from None
    print(f"exported the student ({record['params']:,} params) to {record['export']}; parity on "
          f"{record['clips']} test clips: max |logit difference| {record['max_abs_logit_diff']:.2e}, top-1 "
          f"agreement {record['top1_agreement']:.1f}% (top-1 {record['top1_pytorch']:.1f}% PyTorch, "
          f"{record['top1_export']:.1f}% export)")
    return 0
