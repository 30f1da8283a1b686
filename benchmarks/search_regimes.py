"""Search for a benchmark regime in which the methods can differ (``make regimes``).

For each candidate setting (training-pool size, label budget, epochs, student) this trains, for
seed 0 and through the run cache, the teacher of the benchmark's protocol and five students:
KD, scratch (same epochs), scratch with the budget repeated to the same optimiser steps, the
student on the teacher's refined pseudo-labels alone, and the student on every label of the pool.
It then checks the four criteria of a *discriminative* regime:

- the teacher reaches at least 85 % test top-1;
- the student on all labels of the pool stays at least 10 points below the teacher (capacity gap);
- KD beats scratch at the same number of optimiser steps by at least 15 points;
- the student on the teacher's refined pseudo-labels alone stays at least 5 points below the
  teacher (the teacher's labels alone do not carry the student).

Every setting, its numbers and its verdict go to ``results/regimes.json`` (rewritten after each
setting; a rerun loads finished runs from ``runs/``). The README's "Benchmark regimes" table is
read from it. Seed 0 only: this chooses a regime, the benchmark then measures it over 5 seeds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from kdlab import environment
from kdlab.bench import default_config
from kdlab.bench.runner import make_context, run_method, run_reference
from kdlab.io import atomic_write_text
from kdlab.progress import tqdm

#: The candidates, in the order they were tried. Epochs shrink as the pool grows so that no
#: setting is far more expensive than today's benchmark; every student of one setting gets the
#: same epochs (scratch_same_steps the same optimiser steps).
SETTINGS = [
    {"pool": None, "epochs": 8},                                   # today's benchmark ("easy")
    {"pool": 45, "epochs": 12},
    {"pool": 30, "epochs": 16},
    {"pool": 20, "epochs": 20},
    {"pool": None, "epochs": 8, "student_model": "student-small"},
    {"pool": 30, "epochs": 16, "student_model": "student-small"},
    {"pool": 30, "epochs": 16, "budget": 20.0},
    {"pool": 10, "epochs": 30},
]

CRITERIA = ("teacher >= 85", "student_all_labels <= teacher - 10", "kd >= scratch_same_steps + 15",
            "scratch_pseudo <= teacher - 5")

STUDENTS = ("kd", "scratch", "scratch_same_steps", "scratch_pseudo", "student_all_labels")


def margins(r: dict) -> dict[str, float]:
    """How far each criterion of :data:`CRITERIA` is met (>= 0) or missed (< 0), in points."""
    values = (r["teacher"] - 85, r["teacher"] - 10 - r["student_all_labels"],
              r["kd"] - r["scratch_same_steps"] - 15, r["teacher"] - 5 - r["scratch_pseudo"])
    return dict(zip(CRITERIA, values))


def evaluate_setting(settings: dict, seed: int = 0) -> dict:
    cfg = default_config(seeds=(seed,), **settings)
    tic = time.perf_counter()
    ctx = make_context(cfg, cfg.budget)
    row = {"settings": {"pool": cfg.pool, "budget": cfg.budget, "epochs": cfg.epochs, "views": cfg.views,
                        "student": cfg.student_model, "teacher_model": cfg.teacher_model,
                        "protocol": cfg.protocol, "seed": seed, **ctx.splits.summary()},
           "teacher": ctx.teacher_info["test_top1"]}
    row["settings"].pop("root")
    train_s = float(ctx.teacher_info.get("train_seconds") or 0.0)
    for name in STUDENTS:
        runner = run_reference if name in ("scratch_same_steps", "student_all_labels") else run_method
        run = runner(cfg, ctx, name, seed)
        row[name] = run.acc
        train_s += run.train_seconds
    # wall_s: this call (runs found in runs/ are loaded); train_s: the stored training times of the
    # teacher's fine-tuning and the five students, i.e. what the setting costs from an empty runs/
    row["wall_s"] = round(time.perf_counter() - tic, 1)
    row["train_s"] = round(train_s, 1)
    row["margins"] = {k: round(v, 2) for k, v in margins(row).items()}
    row["meets_all"] = all(v >= 0 for v in row["margins"].values())
    return row


def _evaluate(index: int) -> dict:
    row = evaluate_setting(SETTINGS[index])
    # where it ran: the 2-core development machine, or a larger one running several settings at once
    row["machine"] = {"cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    return {"index": index, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(environment.project_root() / "results" / "regimes.json"))
    parser.add_argument("--only", type=int, nargs="*", help="indices into SETTINGS (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="settings evaluated at once, one process each")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    indices = args.only if args.only is not None else list(range(len(SETTINGS)))
    rows = []

    def record(row: dict) -> None:
        rows.append(row)
        rows.sort(key=lambda r: r["index"])
        print(json.dumps({k: row[k] for k in ("settings", "teacher", *STUDENTS, "meets_all", "train_s")}), flush=True)
        atomic_write_text(args.out, json.dumps({"criteria": list(CRITERIA), "settings": rows}, indent=1) + "\n")

    if args.jobs > 1:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            for done in as_completed([pool.submit(_evaluate, i) for i in indices]):
                record(done.result())
    else:
        for i in tqdm(indices, desc="regimes"):
            record(_evaluate(i))


if __name__ == "__main__":
    main()
