"""The ``kdlab`` command for scripted runs.

    kdlab data [--domain target|source] [--root DIR] [--difficulty X]   generate a simulated dataset
    kdlab data check PATH [--skip-errors]                                 scan a dataset, write its manifest
    kdlab train --out DIR [--config FILE.toml] [--model student] ...      train a classifier; resumes on DIR
    kdlab distill --out DIR [--method kd] [--teacher all] ...             one distilled student (any method)
    kdlab cascade --out DIR [--mode chain|dense] [--steps 1] ...          a cascade over a capacity ladder
    kdlab skd --out DIR ...                                               the whole SKD method, with a report
    kdlab report DIR [--json]                                             print the report of a finished run
    kdlab bench [--data PATH] [--config FILE.toml] [--quick]              the benchmark (kdlab.bench)

Settings come from a TOML file (``--config``; its keys are the long flag names with ``_``) and
flags (flags win). Every command exits non-zero with a one-line message on bad input. Every
command that trains runs unchanged under ``torchrun --nproc_per_node=N`` and resumes when run
again on the same output folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TRAIN_DEFAULTS = {
    "model": "student", "data": None, "labels": "budget", "budget": 10.0, "budget_seed": 0, "epochs": 10,
    "batch_size": 16, "lr": 2e-3, "seed": 0, "frames": 8, "size": 32, "cache": True, "num_workers": 0,
}


class UsageError(Exception):
    """A bad command line or configuration: printed as one line, exit status 2."""


def _cmd_data(args) -> int:
    from kdlab.data import default_dataset, generate_dataset, scan_dataset

    if args.action == "check":
        if not args.path:
            raise UsageError("kdlab data check needs a dataset folder: kdlab data check PATH")
        manifest = scan_dataset(args.path, on_error="skip" if args.skip_errors else "raise")
        bad = manifest.get("errors", {})
        print(f"{args.path}: {len(manifest.get('videos', {}))} videos decoded, {len(bad)} could not be decoded")
        for rel, entry in bad.items():
            print(f"  {rel}: {entry.get('error', entry)}")
        return 1 if bad else 0
    if args.action is not None:
        raise UsageError(f"unknown data action {args.action!r}; valid: check")
    overrides = {} if args.difficulty is None else {"difficulty": args.difficulty}
    if args.root:
        root = generate_dataset(args.root, domain=args.domain, **overrides)
    else:
        root = default_dataset(domain=args.domain, **overrides)
    print(f"dataset ready: {root}")
    return 0


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    from kdlab.io import read_toml

    raw = read_toml(path, UsageError)
    cfg = raw.get("train", raw)
    unknown = sorted(set(cfg) - set(TRAIN_DEFAULTS) - {"out"})
    if unknown:
        raise UsageError(f"unknown keys in {path}: {', '.join(unknown)}; valid: {', '.join(sorted(TRAIN_DEFAULTS))}")
    return cfg


def _cmd_train(args) -> int:
    import torch

    from kdlab.data import VideoFolder, default_dataset, label_budget, read_budget, train_val_split
    from kdlab.models import build_model, count_flops
    from kdlab.train import distributed, evaluate, fit

    cfg = {**TRAIN_DEFAULTS, **_load_config(args.config)}
    cfg.update({k: v for k, v in vars(args).items() if k in TRAIN_DEFAULTS and v is not None})
    out = args.out or cfg.get("out")
    if not out:
        raise UsageError("kdlab train needs an output folder: --out DIR")
    if cfg["labels"] not in ("budget", "all"):
        raise UsageError(f"labels must be 'budget' or 'all', got {cfg['labels']!r}")
    root = Path(cfg["data"]) if cfg["data"] else default_dataset()
    if not root.is_dir():
        raise UsageError(f"dataset folder {root} does not exist (make one with: kdlab data --root {root})")
    rank, _ = distributed()
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
    try:
        model = build_model(cfg["model"], train.num_classes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    history = fit(
        model, torch.utils.data.Subset(train, [indices[i] for i in fit_idx]),
        torch.utils.data.Subset(train_eval, [indices[i] for i in val_idx]),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], seed=cfg["seed"], out_dir=out,
        run_config={k: (str(v) if k == "data" else v) for k, v in {**cfg, "data": root}.items()},
        num_workers=cfg["num_workers"],
    )
    if rank == 0:
        metrics = evaluate(model, test)
        report = {"config": {**cfg, "data": str(root)}, "test_top1": metrics["top1"], "summary": history.summary(),
                  "flops": count_flops(model, (1, 3, cfg["frames"], cfg["size"], cfg["size"]))}
        (Path(out) / "report.json").write_text(json.dumps(report, indent=1))
        print(f"test top-1 {metrics['top1']:.1f}% (last epoch); best validation epoch {history.best_epoch}; "
              f"results in {out}")
    return 0


# ----------------------------------------------------------------------------- distill, cascade, skd, report

#: Flags shared by distill, cascade and skd -> (type, help). Keys are the config keys.
RUN_FLAGS = {
    "data": (str, "dataset folder (default: the generated default dataset)"),
    "budget": (float, "percent of training videos labelled (default 10)"),
    "budget_seed": (int, "seed of the label budget"),
    "frames": (int, "frames per clip (default 8)"),
    "size": (int, "clip height and width (default 32)"),
    "teacher": (str, "teacher protocol: all, labelled or pretrained (default all)"),
    "teacher_epochs": (int, "epochs of the teacher (default: kdlab.experiment.default_epochs)"),
    "epochs": (int, "epochs per student / rung (default: kdlab.experiment.default_epochs)"),
    "seed": (int, "initialisation and data order (default 0)"),
    "views": (int, "fixed augmented views per video, teacher outputs cached; 0: fresh clips (default 2)"),
    "lr": (float, "learning rate (default 2e-3)"),
    "batch_size": (int, "batch size per process (default 16)"),
}
CASCADE_FLAGS = {
    "mode": (str, "chain (each rung learns from the previous one) or dense (from all earlier ones)"),
    "steps": (int, "assistants between teacher and student (default 1)"),
    "teacher_model": (str, "the ladder's top spec (default teacher)"),
    "student_model": (str, "the ladder's bottom spec (default student)"),
    "noise_rate": (float, "share of the budget's labels made wrong (default 0)"),
    "noise_mode": (str, "symmetric, mirror or pairflip (default mirror)"),
    "clips": (int, "clips per view in the pseudo-label ensemble (default 2)"),
}


def _parse_value(text: str):
    """A TOML value (``3``, ``0.1``, ``true``, ``"joint"``) or, failing that, the plain string."""
    from kdlab.io import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _run_settings(args, section: str) -> dict:
    """The config file's ``[section]`` (or top level), then flags; ``--option K=V`` into ``options``."""
    values: dict = {}
    if args.config:
        from kdlab.io import read_toml

        raw = read_toml(args.config, UsageError)
        values.update(raw.get(section, raw))
    for key, value in vars(args).items():
        if key in (*RUN_FLAGS, *CASCADE_FLAGS, "out", "method", "model", "pseudo", "refine_pseudo") and value is not None:
            values[key] = value
    options = dict(values.get("options") or {})
    for item in args.option or []:
        if "=" not in item:
            raise UsageError(f"--option needs KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        options[key.strip()] = _parse_value(text.strip())
    if options:
        values["options"] = options
    return values


def _run(kind: str, values: dict) -> dict:
    from kdlab import pipeline
    from kdlab.train import ResumeMismatchError

    cls = pipeline.DistillConfig if kind == "distill" else pipeline.SKDConfig
    try:
        cfg = pipeline.make_config(cls, values)
        return (pipeline.run_distill if kind == "distill" else pipeline.run_skd)(cfg)
    except (pipeline.ConfigError, ResumeMismatchError) as exc:
        raise UsageError(str(exc)) from None
    except TypeError as exc:  # an options key the objective does not know
        if "unexpected keyword argument" in str(exc) or "unknown" in str(exc):
            raise UsageError(f"bad option: {exc}") from None
        raise


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
    _print_done(_run("distill", values), values.get("out"))
    return 0


def _cmd_cascade(args) -> int:
    values = _run_settings(args, "cascade")
    _print_done(_run("skd", values), values.get("out"))
    return 0


def _cmd_skd(args) -> int:
    values = _run_settings(args, "skd")
    if values.get("method", "skd") != "skd":
        raise UsageError(f"kdlab skd runs method 'skd' (got {values['method']!r}); use kdlab cascade for others")
    _print_done(_run("skd", values), values.get("out"))
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


def _add_run_flags(parser: argparse.ArgumentParser, cascade: bool) -> None:
    parser.add_argument("--out", help="output folder (config.json, checkpoints, report.json, report.md)")
    parser.add_argument("--config", help="TOML file with any of the settings below (flags win)")
    for key, (kind, text) in {**RUN_FLAGS, **(CASCADE_FLAGS if cascade else {})}.items():
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, help=text)
    parser.add_argument("--option", action="append", metavar="KEY=VALUE",
                        help="an objective option, e.g. --option schedule='\"joint\"' or --option label_weight=0.1 "
                             "(repeatable; TOML: an [options] table)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdlab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate the simulated dataset, or check a dataset folder",
                          description="Generate a simulated motion dataset (idempotent: an existing complete "
                                      "dataset is kept), or `kdlab data check PATH` to decode every video once, "
                                      "write the frame-count manifest and list undecodable files.")
    data.add_argument("action", nargs="?", help="'check' to scan a dataset folder")
    data.add_argument("path", nargs="?", help="the dataset folder to check")
    data.add_argument("--root", help="where to generate (default: data/simmotion under the project)")
    data.add_argument("--domain", default="target", choices=("target", "source"),
                      help="target: the default dataset; source: the separate corpus for teacher pre-training")
    data.add_argument("--difficulty", type=float, help="noise/clutter/occlusion level (default 0.6; 1.0 in quick mode)")
    data.add_argument("--skip-errors", action="store_true", help="with check: list bad videos instead of stopping")
    data.set_defaults(func=_cmd_data)

    train = sub.add_parser("train", help="train a classifier with cross-entropy into an output folder",
                           description="Train a classifier on a dataset folder (UCF101/HMDB51 layout or generated). "
                                       "Run again with the same --out to resume after the last finished epoch. "
                                       "Runs unchanged under torchrun --nproc_per_node=N.")
    train.add_argument("--out", help="output folder (checkpoints, history.json, report.json)")
    train.add_argument("--config", help="TOML file with any of the settings below (flags win)")
    train.add_argument("--model", help="teacher, assistant, student, frame2d, r3d_18, mc3_18, r2plus1d_18")
    train.add_argument("--data", help="dataset folder (default: the generated default dataset)")
    train.add_argument("--labels", choices=("budget", "all"), help="train on the label budget or on all labels")
    train.add_argument("--budget", type=float, help="percent of training videos labelled (default 10)")
    train.add_argument("--budget-seed", dest="budget_seed", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", dest="batch_size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--frames", type=int)
    train.add_argument("--size", type=int)
    train.add_argument("--num-workers", dest="num_workers", type=int)
    train.set_defaults(func=_cmd_train)

    epilog = ("Run it again with the same --out to resume (after the last finished epoch / rung). A different "
              "configuration on an existing folder is refused. Under torchrun every process trains its share "
              "and rank 0 writes: torchrun --standalone --nproc_per_node=2 -m kdlab.cli %(prog)s ...")
    distill = sub.add_parser("distill", help="distil one student from a teacher with one method",
                             description="Distil one student with one method (scratch, kd, dkd, fitnet, at, sp, rkd, "
                                         "pkt, nst or skd) from the teacher of a protocol, on the weak setting "
                                         "(labelled budget + unlabelled videos).", epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_flags(distill, cascade=False)
    distill.add_argument("--method", help="the distillation method (default kd)")
    distill.add_argument("--model", help="the student: a kdlab spec name (default student)")
    distill.set_defaults(func=_cmd_distill)

    cascade = sub.add_parser("cascade", help="a progressive cascade teacher -> assistants -> student",
                             description="Train a capacity ladder (teacher -> STEPS assistants -> student), each rung "
                                         "distilled with METHOD from the previous rung (chain) or all earlier rungs "
                                         "(dense), with pseudo-labels re-refined after each rung. Writes "
                                         "report.json and report.md.", epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_flags(cascade, cascade=True)
    cascade.add_argument("--method", help="the distillation method of every rung (default skd)")
    cascade.add_argument("--no-pseudo", dest="pseudo", action="store_const", const=False,
                         help="train on the given labels only (no pseudo-labels)")
    cascade.add_argument("--no-refine", dest="refine_pseudo", action="store_const", const=False,
                         help="keep the teacher's pseudo-labels (no re-refinement after each rung)")
    cascade.set_defaults(func=_cmd_cascade)

    skd = sub.add_parser("skd", help="the whole SKD method (teacher, pseudo-labels, cascade) with a report",
                         description="The whole method: the teacher of a protocol, refined pseudo-labels, a "
                                     "progressive cascade distilled with SKD (substage feature-distribution terms, "
                                     "progressive schedule), pseudo-labels re-refined after every rung. Writes "
                                     "report.json and report.md. kdlab's reading of the paper's abstract, "
                                     "not a reproduction.", epilog=epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_flags(skd, cascade=True)
    skd.set_defaults(func=_cmd_skd)

    report = sub.add_parser("report", help="print the report of a distill/cascade/skd output folder",
                            description="Print the Markdown report (or --json) of a finished run's folder.")
    report.add_argument("folder", help="the --out folder of kdlab distill, cascade or skd")
    report.add_argument("--json", action="store_true", help="print report.json instead of Markdown")
    report.set_defaults(func=_cmd_report)
    from kdlab.bench.cli import add_bench_parser  # last: the benchmark's own module owns its flags
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"kdlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
