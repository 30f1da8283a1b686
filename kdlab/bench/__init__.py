"""The benchmark (issue 8): every method x seeds, the label-budget sweep and the SKD ablations.

    from kdlab.bench import load_config, run_benchmark
    result = run_benchmark(load_config(quick=True))      # -> results/benchmark-quick.json and .md

- :mod:`.config`: :class:`BenchConfig`, the default and quick variants, TOML loading, the names;
- :mod:`.runner`: one trained student per (entry, budget, seed), all through the run cache;
- :mod:`.report`: statistics, the JSON schema, the Markdown report and its computed reading.

Plots are in :mod:`kdlab.viz.bench`; ``kdlab bench`` and ``make bench`` run this.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from kdlab import environment
from kdlab.io import atomic_write_text
from kdlab.progress import tqdm
from kdlab.protocol import leaked_videos

from .config import ABLATIONS, METHODS, SWEEP_BUDGETS, BenchConfig, BenchConfigError, default_config, load_config, quick_config
from .parallel import train_in_parallel
from .report import entry, markdown, mean_std, takeaways, with_reference, with_vs_kd
from .runner import Context, make_context, model_costs, run_ablation, run_method, run_reference

__all__ = ["BenchConfig", "BenchConfigError", "METHODS", "ABLATIONS", "SWEEP_BUDGETS", "default_config",
           "quick_config", "load_config", "run_benchmark", "load_results", "plan", "mean_std", "markdown", "takeaways"]


def plan(cfg: BenchConfig) -> list[tuple[str, float, str, int]]:
    """Every run the benchmark needs, in order: ``(part, budget, name, seed)`` with part "methods",
    "references", "ablations" or "sweep". Sweep runs that the main table already has are left out."""
    tasks = [("methods", cfg.budget, m, s) for m in cfg.methods for s in cfg.seeds]
    tasks += [("references", cfg.budget, r, s) for r in cfg.references for s in cfg.seeds]
    tasks += [("ablations", cfg.budget, a, s) for a in cfg.ablations for s in cfg.seeds]
    done = {(b, m, s) for _, b, m, s in tasks if _ == "methods"}
    for b in cfg.sweep_budgets:
        for m in cfg.sweep_methods:
            for s in cfg.seeds_for_sweep:
                if (float(b), m, s) not in done:
                    tasks.append(("sweep", float(b), m, s))
    return tasks


def _write(result: dict, cfg: BenchConfig) -> Path:
    out = cfg.out_path()
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    return out


def run_benchmark(cfg: BenchConfig | None = None, *, progress: bool = True, write: bool = True, jobs: int = 1) -> dict:
    """Run (or resume) the benchmark of ``cfg`` (default: :func:`load_config`, i.e. quick under
    ``KDLAB_QUICK=1``); returns the result dict and, with ``write``, writes it to ``cfg.out_path()``
    (JSON) and beside it ``.md``, after every finished entry (``"complete": false`` until the end).

    ``jobs > 1`` first trains every run in that many processes (:mod:`kdlab.bench.parallel`); the
    results are the same as with one job."""
    cfg = cfg or load_config()
    tic = time.perf_counter()
    contexts: dict[float, Context] = {}

    def context(budget: float) -> Context:
        if budget not in contexts:
            contexts[budget] = make_context(cfg, budget)
        return contexts[budget]

    main = context(float(cfg.budget))
    costs = model_costs(cfg, main.splits.num_classes)
    summary = main.splits.summary()
    t = main.teacher_info
    result = {
        "variant": cfg.variant, "regime": cfg.regime, "complete": False, "budget": float(cfg.budget),
        "seeds": list(cfg.seeds),
        "epochs": cfg.epochs, "views": cfg.views, "config": cfg.as_dict(), "quick_data": environment.quick(),
        "dataset": {"name": Path(summary.pop("root")).name, **summary},
        "teacher": {"protocol": cfg.protocol, "acc": t["test_top1"], "best_epoch_acc": t.get("best_epoch_test_top1"),
                    "params": costs["teacher"]["params"], "flops": costs["teacher"]["flops"],
                    "latency_ms": costs["teacher"]["latency_ms"], "train_seconds": t.get("train_seconds"),
                    "epochs": t.get("epochs"), "model": cfg.teacher_model,
                    # videos the student treats as unlabelled whose labels trained the teacher (0: no leak)
                    "unlabelled_labels_seen": len(leaked_videos(main.teacher, main.splits))},
        "student": costs["student"], "methods": {}, "ablations": {},
        "sweep": {"budgets": [float(b) for b in cfg.sweep_budgets], "seeds": list(cfg.seeds_for_sweep),
                  "teacher_acc": [None] * len(cfg.sweep_budgets), "methods": {}},
        "pseudo_labels": None, "wall_s": 0.0, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
    }
    if "scratch_pseudo" in cfg.methods or "skd" in cfg.methods or cfg.ablations:
        result["pseudo_labels"] = main.pseudo_summary(cfg)

    tasks = plan(cfg)
    if jobs > 1:
        for budget in {b for _, b, _, _ in tasks}:
            context(budget)
        train_in_parallel(cfg, tasks, contexts, jobs, progress=progress)
    runs: dict[tuple[str, float, str, int], object] = {}
    bar = tqdm(total=len(tasks), desc=f"benchmark ({cfg.variant})", disable=not progress)
    for i, (part, budget, name, seed) in enumerate(tasks):
        bar.set_postfix_str(f"{name} @ {budget:g}% seed {seed}")
        ctx = context(budget)
        run = {"ablations": run_ablation, "references": run_reference}.get(part, run_method)(cfg, ctx, name, seed)
        runs[(part, budget, name, seed)] = run
        bar.update(1)
        nxt = tasks[i + 1] if i + 1 < len(tasks) else None
        if nxt is None or nxt[:3] != (part, budget, name):  # this entry is finished: record it, write
            _record(result, cfg, runs, contexts, costs, part, budget, name)
            result["wall_s"] = time.perf_counter() - tic
            if write:
                _write(result, cfg)
    bar.close()
    for b in cfg.sweep_budgets:  # sweep entries that are all main-table runs
        for m in cfg.sweep_methods:
            _record(result, cfg, runs, contexts, costs, "sweep", float(b), m)
    result["complete"] = True
    result["wall_s"] = time.perf_counter() - tic
    if write:
        _write(result, cfg)
    return result


def _record(result: dict, cfg: BenchConfig, runs: dict, contexts: dict, costs: dict, part: str, budget: float,
            name: str) -> None:
    student = costs["student"]
    if part == "methods":
        seeds = list(cfg.seeds)
        result["methods"][name] = entry([runs[("methods", budget, name, s)] for s in seeds], seeds, student)
        result["methods"] = with_vs_kd(result["methods"])
    elif part == "references":
        seeds = list(cfg.seeds)
        result[name] = entry([runs[("references", budget, name, s)] for s in seeds], seeds, student)
    elif part == "ablations":
        seeds = list(cfg.seeds)
        record = entry([runs[("ablations", budget, name, s)] for s in seeds], seeds, student)
        result["ablations"][name] = with_reference(name, record, {**result["methods"], **result["ablations"]})
        for other, rec in result["ablations"].items():  # a reference that finished after its ablation
            result["ablations"][other] = with_reference(other, rec, {**result["methods"], **result["ablations"]})
    else:
        seeds = list(cfg.seeds_for_sweep)
        found = [runs.get(("sweep", budget, name, s)) or runs.get(("methods", budget, name, s)) for s in seeds]
        if any(r is None for r in found):
            return
        sweep = result["sweep"]
        rows = [r for r in sweep["methods"].get(name, []) if r["budget"] != budget]
        rows.append({"budget": budget, **entry(found, seeds, student)})
        sweep["methods"][name] = sorted(rows, key=lambda r: r["budget"])
        k = [float(b) for b in cfg.sweep_budgets].index(budget)
        sweep["teacher_acc"][k] = contexts[budget].teacher_info["test_top1"]


def load_results(path: str | Path | None = None, *, quick: bool | None = None) -> dict | None:
    """The stored results: ``path``, else ``results/benchmark.json`` (the full run) if it exists,
    else ``results/benchmark-quick.json`` unless ``quick=False``; None when there are none."""
    root = environment.project_root() / "results"
    candidates = [Path(path)] if path else [root / "benchmark.json"] + ([] if quick is False else
                                                                        [root / "benchmark-quick.json"])
    for p in candidates:
        if p.is_file():
            return json.loads(p.read_text())
    return None
