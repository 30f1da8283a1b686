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
import errno
import sys

from kdlab import __version__
from kdlab.commands import (CASCADE_FLAGS, RUN_FLAGS, TRAIN_DEFAULTS, _cmd_cascade, _cmd_data, _cmd_distill,
                            _cmd_artifacts, _cmd_export, _cmd_report, _cmd_skd, _cmd_train)
from kdlab.errors import UsageError

EXIT_USAGE, EXIT_NON_FINITE, EXIT_DISK_FULL = 2, 3, 4

__all__ = ["UsageError", "TRAIN_DEFAULTS", "build_parser", "main"]


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

    artifacts = sub.add_parser("artifacts", help="pack the trained runs into one file, or unpack such a file",
                               formatter_class=HelpFormatter,
                               description="Share a run cache: an instructor runs the notebooks once and packs "
                                           "runs/ into one .tar.gz; students unpack it into their checkout, and "
                                           "every training call finds its model instead of training. Run keys hold "
                                           "the dataset's content fingerprint, not its path, so the data may live "
                                           "anywhere; unpack says whether this checkout has the same data.")
    actions = artifacts.add_subparsers(dest="action", required=True, metavar="{pack,unpack}")
    pack = actions.add_parser("pack", help="write the finished runs of runs/ to FILE (.tar.gz)")
    pack.add_argument("file", help="the artifact file to write, e.g. kdlab-runs.tar.gz")
    pack.add_argument("--series", action="store_true",
                      help="only the runs the last `make notebooks` used (runs/series-runs.txt)")
    pack.add_argument("--teacher-cache", action="store_true", help="add the teachers' cached outputs (large)")
    pack.add_argument("--runs", help="the run folder to pack (default: runs/ or $KDLAB_RUNS)")
    pack.set_defaults(func=_cmd_artifacts)
    unpack = actions.add_parser("unpack", help="put the runs of FILE into runs/ (entries already there are kept)")
    unpack.add_argument("file", help="an artifact file from `kdlab artifacts pack`")
    unpack.add_argument("--runs", help="the run folder to fill (default: runs/ or $KDLAB_RUNS)")
    unpack.set_defaults(func=_cmd_artifacts)

    from kdlab.bench.cli import add_bench_parser  # last: the benchmark's own module owns its flags
    add_bench_parser(sub)
    return parser


def _exit_status(exc: BaseException) -> int | None:
    """The exit status of a user-facing error; None for anything else (a bug: its traceback shows)."""
    from kdlab.data.errors import VideoError
    from kdlab.io import CheckpointError, DiskFullError
    from kdlab.runfolder import FolderError
    from kdlab.settings import SettingError
    from kdlab.train import NonFiniteLossError, ResumeMismatchError, TrainingDisabledError

    if isinstance(exc, NonFiniteLossError):
        return EXIT_NON_FINITE
    if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        return EXIT_DISK_FULL
    if isinstance(exc, (UsageError, SettingError, VideoError, CheckpointError, FolderError, ResumeMismatchError,
                        TrainingDisabledError)):
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
