"""Which feature-distribution loss should SKD use by default? (kdlab's FD ablation)

Trains the SKD student with each ``fd_kind`` (channel softmax, Gaussian moments, MMD) on the
default dataset at 10 % labels, same teacher (protocol "all"), epochs, views and seeds, through
the run cache (a finished run is loaded, not retrained), and reports the test top-1 of the last
epoch (and of the best-on-validation epoch beside it) as mean +- std over seeds. The kind with the
best mean validation accuracy is the one :data:`kdlab.losses.DEFAULT_FD_KIND` should name: the
choice is made on validation, the test column only reports.

Writes ``results/bench_fd.json`` (``results/bench_fd-quick.json`` under ``KDLAB_QUICK=1``).

    python benchmarks/bench_fd.py [--seeds 0 1 2] [--epochs 10] [--views 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from kdlab.environment import pick, project_root, quick
from kdlab.teachers import get_teacher
from kdlab.weak_splits import DataConfig, Splits
from kdlab.io import atomic_write_text
from kdlab.losses import DEFAULT_FD_KIND, FD_KINDS
from kdlab.students import distill_student


def summary(values: list[float]) -> dict:
    return {"values": values, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=pick(10, 8))
    parser.add_argument("--views", type=int, default=2)
    args = parser.parse_args()

    splits = Splits(DataConfig(budget=10.0))
    teacher, teacher_info = get_teacher("all", splits)
    rows = {}
    for kind in FD_KINDS:
        runs = []
        for seed in args.seeds:
            tic = time.perf_counter()
            _, info = distill_student("skd", splits, teacher, epochs=args.epochs, views=args.views, seed=seed,
                                      fd_kind=kind)
            runs.append(info)
            print(f"fd_kind={kind:15s} seed {seed}: val {info['val_top1']:5.1f}  test {info['test_top1']:5.1f}  "
                  f"({time.perf_counter() - tic:.0f} s)", flush=True)
        rows[kind] = {"val_top1": summary([r["val_top1"] for r in runs]),
                      "test_top1": summary([r["test_top1"] for r in runs]),
                      "best_epoch_test_top1": summary([r["best_epoch_test_top1"] for r in runs]),
                      "train_seconds": summary([r["train_seconds"] for r in runs])}
    best = max(rows, key=lambda k: rows[k]["val_top1"]["mean"])
    result = {"budget": 10.0, "seeds": args.seeds, "epochs": args.epochs, "views": args.views, "quick": quick(),
              "teacher": {"protocol": "all", "test_top1": teacher_info["test_top1"]},
              "kinds": rows, "best_on_val": best, "current_default": DEFAULT_FD_KIND}
    print(f"\n{'fd_kind':16s} {'val top-1':>14s} {'test top-1':>14s} {'best-val epoch, test':>22s}")
    for kind, r in rows.items():
        fmt = lambda s: f"{s['mean']:5.1f} +- {s['std']:4.1f}"  # noqa: E731
        print(f"{kind:16s} {fmt(r['val_top1']):>14s} {fmt(r['test_top1']):>14s} {fmt(r['best_epoch_test_top1']):>22s}")
    print(f"best on validation: {best} (kdlab's default: {DEFAULT_FD_KIND})")
    name = "bench_fd-quick.json" if quick() else "bench_fd.json"
    atomic_write_text(project_root() / "results" / name, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
