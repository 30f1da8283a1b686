"""The ``kdlab`` command for scripted runs.

    kdlab data [--domain target|source] [--root DIR] [--difficulty X]   generate a simulated dataset
    kdlab data check PATH [--skip-errors]                                 scan a dataset, write its manifest
    kdlab train --out DIR [--config FILE.toml] [--model student] ...      train a classifier; resumes on DIR

Settings come from a TOML file (``--config``; its keys are the long flag names with ``_``) and
flags (flags win). Every command exits non-zero with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
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
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
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
    data.add_argument("--difficulty", type=float, help="noise/clutter/occlusion level (default 1.0)")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"kdlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
