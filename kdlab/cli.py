"""The ``kdlab`` command for scripted runs.

    kdlab data [--domain target|source] [--root DIR] [--difficulty X]   generate a simulated dataset
    kdlab data check PATH [--frames 8]                                    list every problem of a dataset
    kdlab train --out DIR [--config FILE.toml] [--model student] ...      train a classifier; resumes on DIR
    kdlab distill --out DIR [--method kd] [--teacher all] ...             one distilled student (any method)
    kdlab cascade --out DIR [--mode chain|dense] [--steps 1] ...          a cascade over a capacity ladder
    kdlab skd --out DIR ...                                               the whole SKD method, with a report
    kdlab report DIR [--json]                                             print the report of a finished run
    kdlab export DIR --format onnx|pt2                                    the student alone, with a parity check
    kdlab bench [--data PATH] [--config FILE.toml] [--quick]              the benchmark (kdlab.bench)

Settings come from a TOML file (``--config``; its keys are the long flag names with ``_``) and
flags (flags win). Every setting, the output folder and the dataset's split files are checked
before an output folder is claimed. Every command that trains runs unchanged under
``torchrun --nproc_per_node=N``, locks its output folder while it writes it, and resumes when run
again on the same folder (``--restart`` starts the folder over).

Exit status: 0 done; 1 a bug in kdlab (a traceback: please report it); 2 bad input (a setting,
an option value, the output folder, the dataset, a checkpoint; one line on stderr); 3 a loss
became NaN or infinite; 4 the disk is full. ``kdlab data check`` exits 1 when it lists problems.
``--debug`` (anywhere on the line) shows the traceback of any error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import sys
from pathlib import Path

from kdlab import __version__
from kdlab.errors import UsageError

TRAIN_DEFAULTS = {
    "model": "student", "data": None, "labels": "budget", "budget": 10.0, "budget_seed": 0, "epochs": 10,
    "batch_size": 16, "lr": 2e-3, "seed": 0, "frames": 8, "size": 32, "cache": True, "num_workers": 0,
    "amp": False, "log_dir": None,
}
EXIT_USAGE, EXIT_NON_FINITE, EXIT_DISK_FULL = 2, 3, 4

__all__ = ["UsageError", "build_parser", "main"]


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
    import torch

    from kdlab.data import VideoFolder, default_dataset, label_budget, read_budget, train_val_split
    from kdlab.io import atomic_write_text
    from kdlab.models import SPECS, TORCHVISION_MODELS, build_model, count_flops
    from kdlab.runfolder import check_writable, clear_run, locked, remove_stale
    from kdlab.settings import check_clip
    from kdlab.train import distributed, evaluate, fit

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
    clip = dict(frames=cfg["frames"], size=cfg["size"], cache=cfg["cache"], progress=rank == 0)
    train = VideoFolder(root, "train", sampling="random", flip=True, **clip)
    train_eval = VideoFolder(root, "train", **clip)
    test = VideoFolder(root, "test", **clip)
    indices = list(range(len(train)))
    if cfg["labels"] == "budget":
        keep = {rel for rel, _ in read_budget(label_budget(root, cfg["budget"], seed=cfg["budget_seed"]))}
        indices = [i for i, (rel, _) in enumerate(train.samples) if rel in keep]
    fit_idx, val_idx = train_val_split([train.labels[i] for i in indices], 0.1, seed=cfg["seed"])
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["model"], train.num_classes)
    # What makes the run (checkpoints compare it on resume): not where it logs, amp only when on.
    run_config = {k: (str(v) if k == "data" else v) for k, v in {**cfg, "data": root}.items()
                  if k != "log_dir" and not (k == "amp" and not v)}
    with locked(out) if rank == 0 else contextlib.nullcontext():
        if rank == 0:
            remove_stale(out, owned=True)
            remove_stale(root / ".cache")  # a killed clip-cache build's files (dead writers only)
            if args.restart:
                clear_run(out)
        if world > 1:
            torch.distributed.barrier()
        history = fit(
            model, torch.utils.data.Subset(train, [indices[i] for i in fit_idx]),
            torch.utils.data.Subset(train_eval, [indices[i] for i in val_idx]),
            epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], seed=cfg["seed"], out_dir=out,
            run_config=run_config, num_workers=cfg["num_workers"], amp=cfg["amp"], log_dir=cfg["log_dir"],
        )
        if rank == 0:
            metrics = evaluate(model, test, amp=cfg["amp"])
            report = {"config": {**cfg, "data": str(root)}, "test_top1": metrics["top1"],
                      "summary": history.summary(),
                      "flops": count_flops(model, (1, 3, cfg["frames"], cfg["size"], cfg["size"]))}
            atomic_write_text(Path(out) / "report.json", json.dumps(report, indent=1))
            print(f"test top-1 {metrics['top1']:.1f}% (last epoch); best validation epoch {history.best_epoch}; "
                  f"results in {out}")
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
    "teacher_epochs": (int, "epochs of the teacher (default: kdlab.experiment.default_epochs)"),
    "epochs": (int, "epochs per student / rung (default: kdlab.experiment.default_epochs)"),
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


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    """--restart, --amp and --log-dir: the flags of every command that trains."""
    parser.add_argument("--restart", action="store_true",
                        help="empty the output folder first and start over (e.g. after a NaN, or to change a "
                             "setting); refused for a folder holding files kdlab did not write")
    parser.add_argument("--amp", action="store_const", const=True,
                        help="bf16 mixed precision (autocast) while training (default: off)")
    parser.add_argument("--log-dir", dest="log_dir",
                        help="write TensorBoard logs here (every loss term, metric, learning rate, R and W per "
                             "epoch; e.g. OUT/tensorboard); view with: tensorboard --logdir DIR")


def _add_run_flags(parser: argparse.ArgumentParser, cascade: bool) -> None:
    parser.add_argument("--out", help="output folder (config.json, checkpoints, report.json, report.md)")
    parser.add_argument("--config", help="TOML file with any of the settings below (flags win)")
    for key, (kind, text) in {**RUN_FLAGS, **(CASCADE_FLAGS if cascade else {})}.items():
        if key == "mode":
            from kdlab.cascade import MODES  # the help lists the table's modes

            text = "; ".join(f"{name}: {mode.help}" for name, mode in MODES.items())
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, help=text)
    parser.add_argument("--option", action="append", metavar="KEY=VALUE",
                        help="an objective option, e.g. --option schedule='\"joint\"' or --option label_weight=0.1 "
                             "(repeatable; TOML: an [options] table)")
    _add_output_flags(parser)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default. Flags whose argparse default is None (so that a config file can set
    them) get theirs from :func:`_show_defaults`."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _RawHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The top-level help: the module docstring's layout kept."""


def _show_defaults(parser: argparse.ArgumentParser, defaults: dict) -> None:
    for action in parser._actions:
        value = defaults.get(action.dest)
        if value is not None and action.help and "default" not in action.help:
            action.help += f" (default: {value})"


def build_parser() -> argparse.ArgumentParser:
    import dataclasses

    from kdlab.pipeline import DistillConfig, SKDConfig

    parser = argparse.ArgumentParser(prog="kdlab", description=__doc__, formatter_class=_RawHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kdlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of any error (also after the command)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate the simulated dataset, or check a dataset folder",
                          formatter_class=HelpFormatter,
                          description="Generate a simulated motion dataset (idempotent: an existing complete "
                                      "dataset is kept), or `kdlab data check PATH` to read the split files, "
                                      "decode every video once (writing the frame-count manifest) and list every "
                                      "problem: missing or undecodable videos, bad split lines and labels, missing "
                                      "class folders, videos shorter than --frames. Exit status 1 when it lists "
                                      "any, 2 when PATH is not a dataset.")
    data.add_argument("action", nargs="?", help="'check' to check a dataset folder")
    data.add_argument("path", nargs="?", help="the dataset folder to check")
    data.add_argument("--root", help="where to generate (default: data/simmotion under the project)")
    data.add_argument("--domain", default="target", choices=("target", "source"),
                      help="target: the default dataset; source: the separate corpus for teacher pre-training")
    data.add_argument("--difficulty", type=float, help="noise/clutter/occlusion level (default 0.6; 1.0 in quick mode)")
    data.add_argument("--frames", type=int, default=8, help="with check: videos shorter than this are problems")
    data.add_argument("--fold", type=int, default=1, help="with check: the split files' fold")
    data.add_argument("--skip-errors", action="store_true", help=argparse.SUPPRESS)  # check always lists them now
    data.set_defaults(func=_cmd_data)

    train = sub.add_parser("train", help="train a classifier with cross-entropy into an output folder",
                           formatter_class=HelpFormatter,
                           description="Train a classifier on a dataset folder (UCF101/HMDB51 layout or generated). "
                                       "Run again with the same --out to resume after the last finished epoch. "
                                       "Runs unchanged under torchrun --nproc_per_node=N.")
    train.add_argument("--out", help="output folder (checkpoints, history.json, report.json)")
    train.add_argument("--config", help="TOML file with any of the settings below (flags win)")
    train.add_argument("--model", help="teacher, assistant, student, student-small, frame2d, r3d_18, mc3_18, r2plus1d_18")
    train.add_argument("--data", help="dataset folder (default: the generated default dataset)")
    train.add_argument("--labels", choices=("budget", "all"), help="train on the label budget or on all labels")
    train.add_argument("--budget", type=float, help="percent of training videos labelled")
    train.add_argument("--budget-seed", dest="budget_seed", type=int, help="seed of the label budget")
    train.add_argument("--epochs", type=int, help="epochs")
    train.add_argument("--batch-size", dest="batch_size", type=int, help="batch size per process")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--seed", type=int, help="initialisation and data order")
    train.add_argument("--frames", type=int, help="frames per clip")
    train.add_argument("--size", type=int, help="clip height and width")
    train.add_argument("--num-workers", dest="num_workers", type=int, help="data loader processes")
    _add_output_flags(train)
    _show_defaults(train, TRAIN_DEFAULTS)
    train.set_defaults(func=_cmd_train)

    epilog = ("Run it again with the same --out to resume (after the last finished epoch / rung). A different "
              "configuration on an existing folder is refused (--restart starts it over). Under torchrun every "
              "process trains its share and rank 0 writes: "
              "torchrun --standalone --nproc_per_node=2 -m kdlab.cli COMMAND ...")
    run_defaults = {f.name: f.default for f in dataclasses.fields(SKDConfig)}
    distill = sub.add_parser("distill", help="distil one student from a teacher with one method",
                             description="Distil one student with one method (scratch, kd, dkd, fitnet, at, sp, rkd, "
                                         "pkt, nst or skd) from the teacher of a protocol, on the weak setting "
                                         "(labelled budget + unlabelled videos).", epilog=epilog,
                             formatter_class=HelpFormatter)
    _add_run_flags(distill, cascade=False)
    distill.add_argument("--method", help="the distillation method")
    distill.add_argument("--model", help="the student: a kdlab spec name")
    _show_defaults(distill, {**run_defaults, **{f.name: f.default for f in dataclasses.fields(DistillConfig)}})
    distill.set_defaults(func=_cmd_distill)

    cascade = sub.add_parser("cascade", help="a progressive cascade teacher -> assistants -> student",
                             description="Train a capacity ladder (teacher -> STEPS assistants -> student), each rung "
                                         "distilled with METHOD from the previous rung (chain) or all earlier rungs "
                                         "(dense), with pseudo-labels re-refined after each rung. Writes "
                                         "report.json and report.md.", epilog=epilog,
                             formatter_class=HelpFormatter)
    _add_run_flags(cascade, cascade=True)
    cascade.add_argument("--method", help="the distillation method of every rung")
    cascade.add_argument("--no-pseudo", dest="pseudo", action="store_const", const=False,
                         help="train on the given labels only (no pseudo-labels)")
    cascade.add_argument("--no-refine", dest="refine_pseudo", action="store_const", const=False,
                         help="keep the teacher's pseudo-labels (no re-refinement after each rung)")
    _show_defaults(cascade, run_defaults)
    cascade.set_defaults(func=_cmd_cascade)

    skd = sub.add_parser("skd", help="the whole SKD method (teacher, pseudo-labels, cascade) with a report",
                         description="The whole method: the teacher of a protocol, refined pseudo-labels, a "
                                     "progressive cascade distilled with SKD (substage feature-distribution terms, "
                                     "progressive schedule; the options of kdlab.distill.SKD_TUNED, which the "
                                     "benchmark runs and `make tune` chose on validation; --option overrides), "
                                     "pseudo-labels re-refined after every rung. Writes "
                                     "report.json and report.md. kdlab's reading of the paper's abstract, "
                                     "not a reproduction.", epilog=epilog,
                         formatter_class=HelpFormatter)
    _add_run_flags(skd, cascade=True)
    _show_defaults(skd, run_defaults)
    skd.set_defaults(func=_cmd_skd)

    report = sub.add_parser("report", help="print the report of a distill/cascade/skd output folder",
                            description="Print the Markdown report (or --json) of a finished run's folder.")
    report.add_argument("folder", help="the --out folder of kdlab distill, cascade or skd")
    report.add_argument("--json", action="store_true", help="print report.json instead of Markdown")
    report.set_defaults(func=_cmd_report)

    from kdlab.export import FORMATS

    export = sub.add_parser("export", help="export the student of a run (ONNX or torch.export) with a parity check",
                            formatter_class=HelpFormatter,
                            description="Export the student of a kdlab train, distill, cascade or skd output folder "
                                        "(the last rung of a cascade; the weights of the last epoch) alone, as ONNX "
                                        "or a torch.export program (.pt2), then run both on the run's test split and "
                                        "print and store the parity: the largest logit difference and the top-1 "
                                        "agreement (<export>.parity.json beside the export).")
    export.add_argument("folder", help="the --out folder of a kdlab run")
    export.add_argument("--format", default="onnx", choices=FORMATS, help="onnx (needs pip install 'kdlab[export]') "
                                                                          "or pt2")
    export.add_argument("--out", help="the export's path (default: FOLDER/export/student.onnx or .pt2)")
    export.set_defaults(func=_cmd_export)

    from kdlab.bench.cli import add_bench_parser  # last: the benchmark's own module owns its flags
    add_bench_parser(sub)
    return parser


def _exit_status(exc: BaseException) -> int | None:
    """The exit status of a user-facing error; None for anything else (a bug: its traceback shows)."""
    from kdlab.data.errors import VideoError
    from kdlab.io import CheckpointError, DiskFullError
    from kdlab.runfolder import FolderError
    from kdlab.settings import SettingError
    from kdlab.train import NonFiniteLossError, ResumeMismatchError

    if isinstance(exc, NonFiniteLossError):
        return EXIT_NON_FINITE
    if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        return EXIT_DISK_FULL
    if isinstance(exc, (UsageError, SettingError, VideoError, CheckpointError, FolderError, ResumeMismatchError)):
        return EXIT_USAGE
    return None


def _message(exc: BaseException) -> str:
    """The error as one line, with what to do next where the command line has an answer."""
    from kdlab.train import NonFiniteLossError, ResumeMismatchError

    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, OSError) and not str(exc).strip():
        text = exc.strerror or type(exc).__name__
    if isinstance(exc, (NonFiniteLossError, ResumeMismatchError)):
        text += " (--restart starts the output folder over)"
    return text


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    try:
        return args.func(args)
    except Exception as exc:
        status = _exit_status(exc)
        if status is None or debug:
            raise
        print(f"kdlab {args.command}: error: {_message(exc)}", file=sys.stderr)
        return status
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
