"""Training the benchmark's runs in several processes at once (``kdlab bench --jobs N``).

Every run of the benchmark is independent once its budget's teacher exists, and every run goes
through the run cache. So :func:`train_in_parallel` first prepares what runs share (each budget's
teacher and its teacher cache, in this process), then trains the runs in ``jobs`` worker
processes, each with ``cpu_count // jobs`` threads, longest runs (cascades) first. The workers only
fill the run cache; :func:`kdlab.bench.run_benchmark` then reads every run from it in its usual
order and writes the same files as a run with one job. (A worker's thread count differs from a
single process's, and floating-point sums in another order can move a run's accuracy by a
clip or so, as any change of thread count can; the run cache keeps whichever trained first.)

Small video models use several CPU threads poorly, which is why ``make bench`` runs two one-thread
processes on two cores; that this beats one two-thread process is an expectation, not yet measured.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from kdlab.bench.config import BenchConfig
from kdlab.progress import tqdm

#: Entries that train an assistant before the student: several times a direct run's cost.
CASCADES = {"skd", "takd", "dgkd"}

_contexts: dict = {}


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _train(job: tuple) -> tuple:
    from kdlab.bench.runner import make_context, run_ablation, run_method, run_reference

    cfg, (part, budget, name, seed) = job
    if budget not in _contexts:  # one context per budget and worker: the teacher is loaded once
        _contexts[budget] = make_context(cfg, budget)
    runner = {"ablations": run_ablation, "references": run_reference}.get(part, run_method)
    runner(cfg, _contexts[budget], name, seed)
    return part, budget, name, seed


def train_in_parallel(cfg: BenchConfig, tasks: list[tuple], contexts: dict, jobs: int, progress: bool = True) -> None:
    """Train every task of ``tasks`` (``(part, budget, name, seed)``) into the run cache with
    ``jobs`` processes. ``contexts`` maps each budget to its prepared :class:`~kdlab.bench.runner.Context`."""
    from kdlab.students import teacher_cache

    for ctx in contexts.values():  # shared by many runs: built once, here, not raced by the workers
        teacher_cache(ctx.teacher, ctx.splits, cfg.views, progress=False)
    ordered = sorted(tasks, key=lambda t: t[2] not in CASCADES)  # stable: cascades first, then plan order
    threads = max(1, (os.cpu_count() or 1) // jobs)
    bar = tqdm(total=len(ordered), desc=f"benchmark runs ({jobs} jobs)", disable=not progress)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        for done in as_completed([pool.submit(_train, (cfg, task)) for task in ordered]):
            bar.set_postfix_str("{2} @ {1:g}% seed {3}".format(*done.result()))
            bar.update(1)
    bar.close()
