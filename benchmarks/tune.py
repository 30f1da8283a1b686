"""Tune SKD and the strongest baselines on validation, with the same budget of trials each (``make tune``).

Every tuned method gets :data:`TRIALS` trials in the benchmark's main regime (seed 0): the first is
the method's preset (what ``make bench`` would run untuned), the others are drawn without
replacement, with a fixed random seed, from the method's grid in :data:`SPACES`. Each trial is
one student trained through the run cache (a rerun loads it); the trial with the best
**validation** top-1 after the last epoch wins (ties: the earlier trial). The test split is
recorded for every trial but chooses nothing.

Writes ``results/tuning.json`` (every trial) and ``results/tuning.md`` (the table). The winners
are copied by hand into the regime's settings (:data:`kdlab.bench.config.REGIMES`), so that the
benchmark runs every method as tuned here; this script is not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import multiprocessing
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from kdlab import environment
from kdlab.bench import load_config
from kdlab.bench.runner import make_context, run_method
from kdlab.distill import Distillation
from kdlab.distill.methods import method_options
from kdlab.models import build_model
from kdlab.io import atomic_write_text
from kdlab.progress import tqdm

TRIALS = 6
SEED = 0
#: Where the SKD search starts (trial 0): the objective's SKD_DEFAULTS with KD's label/logit
#: balance, so that SKD differs from KD by its substage terms, schedule and pseudo-labels only.
#: Its winner is kdlab.distill.SKD_TUNED.
UNTUNED_SKD = {"label_weight": 0.1, "logit_weight": 0.9}


def _grid(**axes) -> list[dict]:
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


#: The search space of each method: options of its preset (:data:`kdlab.distill.METHODS`), and for
#: SKD also ``cascade_steps`` (0: teacher -> student directly, 1: one assistant).
SPACES = {
    "kd": _grid(kd_temperature=[1.0, 2.0, 4.0, 8.0], logit_weight=[0.5, 0.9, 1.0],
                label_weight=[0.1, 0.5, 1.0]),
    "fitnet": _grid(feature_weight=[1.0, 10.0, 30.0, 100.0, 300.0, 1000.0], label_weight=[0.5, 1.0]),
    "dkd": _grid(dkd_beta=[1.0, 2.0, 4.0, 8.0], kd_temperature=[1.0, 4.0], logit_weight=[0.5, 1.0]),
    "skd": _grid(feature_weight=[0.03, 0.1, 0.3, 1.0], tau=[0.05, 0.1, 0.3], fd_kind=["channel_softmax", "gaussian"],
                 label_weight=[0.1, 0.5, 1.0], cascade_steps=[0, 1]),
}


def trials_for(method: str, preset: dict) -> list[dict]:
    """The preset first, then ``TRIALS - 1`` distinct grid points (seeded)."""
    others = [t for t in SPACES[method] if t != preset]
    return [preset, *random.Random(f"{SEED}-{method}").sample(others, TRIALS - 1)]


def preset(method: str, cfg, ctx) -> dict:
    """The untuned values of the method's tuned options (preset, else :class:`Distillation`'s default)."""
    student = build_model(cfg.student_model, ctx.splits.num_classes)
    options = method_options(method, ctx.teacher, student)
    if method == "skd":
        options = {**options, **cfg.skd, "cascade_steps": cfg.cascade_steps}
    defaults = {k: p.default for k, p in inspect.signature(Distillation.__init__).parameters.items()}
    return {k: options.get(k, defaults.get(k)) for k in SPACES[method][0]}


def run_trial(cfg, ctx, method: str, trial: dict) -> dict:
    """Train (or load) one trial's student (seed :data:`SEED`) and return its numbers."""
    options = dict(trial)
    if method == "skd":
        steps = options.pop("cascade_steps")
        trial_cfg = cfg.replace(skd={**cfg.skd, **options}, cascade_steps=steps, ablations=())
    else:
        trial_cfg = cfg.replace(method_options={**cfg.method_options, method: options})
    run = run_method(trial_cfg, ctx, method, SEED)
    return {"options": trial, "val": run.val, "test": run.acc, "train_seconds": round(run.train_seconds, 1)}


def markdown(result: dict) -> str:
    lines = ["# Tuning on validation (`make tune`)", "",
             f"Regime `{result['regime']}`, seed {SEED}, {TRIALS} trials per method (the first is the preset). "
             "The trial with the best validation top-1 (last epoch) is chosen; test top-1 is shown for "
             "information only and chose nothing.", ""]
    for method, rows in result["methods"].items():
        lines += [f"## {method}", "", "| trial | options | val top-1 | test top-1 | chosen |", "|---:|---|---:|---:|---|"]
        for i, r in enumerate(rows["trials"]):
            if r is None:
                lines.append(f"| {i} | (not run) | – | – | |")
                continue
            opts = ", ".join(f"{k}={v}" for k, v in r["options"].items())
            lines.append(f"| {i} | {opts} | {r['val']:.1f} | {r['test']:.1f} | {'**yes**' if i == rows['chosen'] else ''} |")
        lines.append("")
    lines.append(f"Wall time: {result['wall_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="*", default=list(SPACES))
    parser.add_argument("--out", default=str(environment.project_root() / "results" / "tuning.json"))
    parser.add_argument("--jobs", type=int, default=1,
                        help="trials trained at once, in separate processes sharing the run cache (each gets "
                             "cpu_count / jobs threads); the numbers do not depend on it")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Untuned: the presets, SKD as the benchmark runs it before tuning, one assistant.
    cfg = load_config(quick=False, seeds=(SEED,)).replace(method_options={}, skd=dict(UNTUNED_SKD), cascade_steps=1)
    ctx = make_context(cfg, cfg.budget)
    tic = time.perf_counter()
    result = {"regime": cfg.regime, "trials": TRIALS, "seed": SEED, "methods": {}, "wall_s": 0.0}
    tasks = [(method, i, t) for method in args.methods for i, t in enumerate(trials_for(method, preset(method, cfg, ctx)))]
    rows: dict[int, dict] = {}

    def record(k: int, row: dict) -> None:  # written after every trial, so an interrupted run keeps its trials
        rows[k] = row
        for method in args.methods:
            mine = [rows.get(k) for k, (m, _, _) in enumerate(tasks) if m == method]
            done = [i for i, r in enumerate(mine) if r is not None]
            if not done:
                continue
            chosen = max(done, key=lambda i: (mine[i]["val"], -i))
            result["methods"][method] = {"trials": mine, "chosen": chosen, "options": mine[chosen]["options"],
                                         "complete": len(done) == len(mine)}
        result["wall_s"] = time.perf_counter() - tic
        result["machine"] = {"cpus": os.cpu_count(), "jobs": args.jobs, "torch": torch.__version__}
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
        atomic_write_text(args.out.replace(".json", ".md"), markdown(result))

    if args.jobs > 1:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            futures = {pool.submit(_worker, (cfg, m, t)): k for k, (m, _, t) in enumerate(tasks)}
            for done in tqdm(as_completed(futures), total=len(tasks), desc="trials"):
                record(futures[done], done.result())
    else:
        for k, (m, _, t) in enumerate(tqdm(tasks, desc="trials")):
            record(k, run_trial(cfg, ctx, m, t))
    for method, r in result["methods"].items():
        print(method, "->", r["options"], f"val {r['trials'][r['chosen']]['val']:.1f}", flush=True)


def _worker(job) -> dict:
    cfg, method, trial = job
    return run_trial(cfg, make_context(cfg, cfg.budget), method, trial)


if __name__ == "__main__":
    main()
