"""The benchmark's results: per-seed lists to summary statistics, the JSON schema, the Markdown report.

``results/benchmark.json`` (``benchmark-quick.json`` for the quick variant)::

    {"variant", "complete", "budget", "seeds", "epochs", "views", "config", "dataset",
     "teacher":  {"protocol", "acc", "best_epoch_acc", "params", "flops", "latency_ms", "train_seconds"},
     "student":  {"model", "params", "flops", "latency_ms"},
     "regime":    the named regime of kdlab.bench.config.REGIMES ("discriminative", "easy", ...),
     "student_all_labels", "scratch_same_steps": ENTRY   # reference points, kdlab.bench.runner
     "methods":   {name: ENTRY + {"vs_kd": COMPARISON}},
     "ablations": {name: ENTRY + {"reference", "change", "delta", "ci95", "verdict"}},
     "sweep":     {"budgets", "seeds", "teacher_acc": [...], "methods": {name: [ENTRY + {"budget"}, ...]}},
     "pseudo_labels": {"coverage", "accuracy", ...},   # the teacher's refined labels (measured only)
     "wall_s", "torch", "threads", "date"}

    ENTRY = {"acc": [per-seed test top-1, %], "mean", "std", "best_epoch_acc": [...], "best_epoch_mean",
             "seeds", "params", "flops", "latency_ms", "train_seconds": [...], "train_seconds_mean"}

``acc`` is the last epoch's test accuracy; ``best_epoch_acc`` the test accuracy of the epoch with
the best *validation* accuracy (never a checkpoint picked on test). ``std`` is the sample standard
deviation over seeds (``numpy.std(acc, ddof=1)``; 0 for one seed). ``COMPARISON = {"diff", "ci95",
"verdict", "seeds"}``: the mean of the per-seed differences to the reference (points), its 95 %
paired-bootstrap interval and the reading of that interval (:mod:`kdlab.bench.stats`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from kdlab.bench.config import ABLATIONS
from kdlab.bench.stats import compare

STD_DDOF = 1


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value) of ``values``."""
    a = np.asarray(list(values), dtype=float)
    if a.size == 0:
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=STD_DDOF)) if a.size > 1 else 0.0


def entry(runs: Sequence, seeds: Sequence[int], costs: dict) -> dict:
    """One method's (or ablation's) record from its per-seed :class:`~kdlab.bench.runner.Run` s."""
    acc = [float(r.acc) for r in runs]
    best = [float(r.best_epoch_acc) for r in runs]
    seconds = [float(r.train_seconds) for r in runs]
    mean, std = mean_std(acc)
    return {
        "acc": acc, "mean": mean, "std": std, "best_epoch_acc": best, "best_epoch_mean": mean_std(best)[0],
        "seeds": list(seeds), "params": int(runs[0].params) if runs else costs["params"], "flops": costs["flops"],
        "latency_ms": costs["latency_ms"], "train_seconds": seconds, "train_seconds_mean": mean_std(seconds)[0],
    }


def with_reference(name: str, record: dict, references: dict[str, dict]) -> dict:
    """An ablation record with ``reference`` (the entry it differs from), ``change``, ``delta``
    (its mean minus the reference's mean, in points), and ``ci95`` and ``verdict`` of the paired
    difference over the seeds (all None when the reference did not run)."""
    ref, change = ABLATIONS[name]
    other = references.get(ref)
    paired = compare(record, other) if other else None
    delta = record["mean"] - other["mean"] if other else None
    return {**record, "reference": ref, "change": change, "delta": delta,
            "ci95": paired["ci95"] if paired else None, "verdict": paired["verdict"] if paired else None}


def with_vs_kd(methods: dict[str, dict]) -> dict[str, dict]:
    """Every method record with ``vs_kd``: the paired comparison with ``kd`` (None until kd ran)."""
    kd = methods.get("kd")
    return {name: {**e, "vs_kd": compare(e, kd) if kd else None} for name, e in methods.items()}


# ----------------------------------------------------------------------------- Markdown

def _pm(e: dict) -> str:
    if len(e.get("acc", ())) == 1:  # one seed has no spread: a "± 0.0" would claim one
        return f"{e['mean']:.1f}"
    return f"{e['mean']:.1f} ± {e['std']:.1f}"


def _pool(result: dict) -> str:
    pool = result.get("dataset", {}).get("pool")
    return "every training video" if pool is None else f"{pool} videos per class"


def _num(x, fmt: str = ".1f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def markdown(result: dict) -> str:
    """The Markdown report of a benchmark result (what ``results/benchmark.md`` holds)."""
    t = result["teacher"]
    seeds = ", ".join(map(str, result["seeds"]))
    lines = [
        f"# kdlab benchmark ({result['variant']} variant{'' if result.get('complete') else ', INCOMPLETE'})",
        "",
        f"Written by `kdlab bench` ({'`--quick`, ' if result['variant'] == 'quick' else ''}"
        f"{'quick-mode data, ' if result.get('quick_data') else ''}dataset `{result['dataset']['name']}`). "
        f"Label budget {result['budget']:g} %, seeds {seeds}, {result['epochs']} epochs per student, "
        f"{result['views']} fixed views per video. Regime `{result.get('regime', '–')}` (training pool: "
        f"{_pool(result)}). Teacher protocol `{t['protocol']}` (the same teacher for "
        f"every method). Accuracy is test top-1 in % after the **last** epoch, mean ± sample std over seeds; "
        f"*best-val epoch* is the test accuracy of the epoch with the best validation accuracy. "
        f"Time is training time per run (cascades: all rungs).",
    ]
    if result["variant"] == "quick":
        lines += ["", "**Quick variant**: few methods, seeds and epochs on small data, to check that the pipeline "
                  "works. Its numbers are not the benchmark's; `make bench` writes `results/benchmark.json`."]
    lines += ["", "## Methods", "",
              "*vs KD*: the mean of the per-seed differences to KD (points) with its 95 % paired-bootstrap "
              "interval; *reading*: better or worse only when the interval excludes zero.", "",
              "| method | top-1 (%) | per seed | vs KD [95 % CI] | reading | best-val epoch | params | MFLOPs | "
              "CPU latency (ms) | train s / run |",
              "|---|---:|---|---:|---|---:|---:|---:|---:|---:|",
              f"| teacher | {_num(t['acc'])} | – | – | – | {_num(t.get('best_epoch_acc'))} | {t['params']:,} | "
              f"{t['flops'] / 1e6:.1f} | {_num(t.get('latency_ms'), '.2f')} | {_num(t.get('train_seconds'), '.0f')} |"]
    for name, e in result["methods"].items():
        c = e.get("vs_kd")
        reading = "–" if c is None or name == "kd" or c.get("seeds", 0) < 2 else c["verdict"]
        lines.append(f"| {name} | {_pm(e)} | {', '.join(f'{a:.1f}' for a in e['acc'])} | "
                     f"{'–' if name == 'kd' else _ci(c)} | {reading} | {e['best_epoch_mean']:.1f} | "
                     f"{e['params']:,} | {e['flops'] / 1e6:.1f} | {_num(e['latency_ms'], '.2f')} | "
                     f"{e['train_seconds_mean']:.0f} |")
    refs = [(n, result[n]) for n in ("student_all_labels", "scratch_same_steps") if result.get(n)]
    if refs:
        lines += ["", "Reference points (no teacher): `student_all_labels` is the student trained on every label of "
                  "the pool (its capacity); `scratch_same_steps` is scratch on the labelled budget repeated to the "
                  "same optimiser steps as a distillation run (`scratch` passes the unlabelled videos through "
                  "the loop and so visits its labelled clips less often).", "",
                  "| reference | top-1 (%) | per seed |", "|---|---:|---|"]
        lines += [f"| {n} | {_pm(e)} | {', '.join(f'{a:.1f}' for a in e['acc'])} |" for n, e in refs]
    if result.get("ablations"):
        lines += ["", "## SKD ablations", "",
                  "Each row switches one part off the run named in *vs* (`no_cascade` is the full method "
                  "without its cascade; the others switch one more part off `no_cascade`).", "",
                  "| ablation | what changes | top-1 (%) | vs | Δ [95 % CI] | reading | train s / run |",
                  "|---|---|---:|---|---:|---|---:|"]
        for name, e in result["ablations"].items():
            paired = None if e["delta"] is None else {"diff": e["delta"], "ci95": e.get("ci95") or [e["delta"]] * 2,
                                                      "seeds": len(e["acc"])}
            reading = "–" if paired is None or len(e["acc"]) < 2 else e.get("verdict") or "–"
            lines.append(f"| {name} | {e['change']} | {_pm(e)} | {e['reference']} | {_ci(paired)} | {reading} | "
                         f"{e['train_seconds_mean']:.0f} |")
    sweep = result.get("sweep") or {}
    if sweep.get("methods"):
        budgets = sweep["budgets"]
        lines += ["", "## Label-budget sweep", "",
                  f"Seeds {', '.join(map(str, sweep['seeds']))}; each budget has its own teacher "
                  f"(protocol `{t['protocol']}`).", "",
                  "| method | " + " | ".join(f"{b:g} %" for b in budgets) + " |",
                  "|---|" + "---:|" * len(budgets)]
        lines.append("| teacher | " + " | ".join(_num(a) for a in sweep["teacher_acc"]) + " |")
        for name, rows in sweep["methods"].items():
            by_budget = {r["budget"]: r for r in rows}
            cells = [_pm(by_budget[b]) if b in by_budget else "–" for b in budgets]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.get("pseudo_labels"):
        p = result["pseudo_labels"]
        lines += ["", f"Refined pseudo-labels of the teacher (measured against the hidden labels): "
                  f"{p['pseudo_coverage']:.0%} of the unlabelled videos covered, {p['pseudo_accuracy']:.1%} of those "
                  f"right; {p['corrections']} given labels corrected."]
    lines += ["", "## Reading", "", *[f"- {line}" for line in takeaways(result)], "",
              f"Total wall time of this run: {result['wall_s']:.0f} s (runs found in `runs/` are loaded, not "
              f"retrained). torch {result['torch']}, {result['threads']} thread(s), {result['date']}.", ""]
    return "\n".join(lines)


def _ci(c: dict | None) -> str:
    if c is None:
        return "–"
    lo, hi = c["ci95"]
    if c.get("seeds", 2) < 2:
        return f"{c['diff']:+.1f}"
    return f"{c['diff']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def takeaways(result: dict) -> list[str]:
    """Plain sentences computed from the numbers. A difference is called "better" or "worse" only
    when its 95 % paired-bootstrap interval excludes zero (:mod:`kdlab.bench.stats`), never from the
    means alone; with one seed nothing is called either."""
    methods = result.get("methods", {})
    out = []
    if not methods:
        return ["no method finished yet"]
    several = len(result.get("seeds", ())) > 1
    teacher = result["teacher"]["acc"]
    ranked = sorted(methods.items(), key=lambda kv: kv[1]["mean"], reverse=True)
    best_name, best = ranked[0]
    out.append(f"Highest mean: `{best_name}` at {_pm(best)} %; the teacher is at {teacher:.1f} %.")
    everyone = result.get("student_all_labels")
    if everyone:
        out.append(f"The student trained on every label of the pool reaches {_pm(everyone)} % "
                   f"({everyone['mean'] - teacher:+.1f} points from the teacher): "
                   + ("a real capacity gap." if everyone["mean"] <= teacher - 10 else
                      "its capacity is not what holds it back."))
    if "kd" in methods and several:
        groups: dict[str, list[str]] = {"better": [], "worse": [], "not distinguishable": []}
        for name, e in methods.items():
            if name != "kd" and e.get("vs_kd"):
                groups[e["vs_kd"]["verdict"]].append(f"`{name}` {_ci(e['vs_kd'])}")
        kd = methods["kd"]
        for word, names in groups.items():
            if names:
                out.append(f"Against plain KD ({_pm(kd)} %), {word} (paired difference, 95 % CI): {', '.join(names)}.")
        if "skd" in methods and methods["skd"].get("vs_kd"):
            c = methods["skd"]["vs_kd"]
            out.append(f"SKD vs KD: {_ci(c)} points, {c['verdict']}.")
    elif "kd" in methods:
        out.append("One seed: no method is called better or worse than KD (no interval to read).")
    same_steps = result.get("scratch_same_steps")
    if "scratch" in methods:
        s = methods["scratch"]
        line = f"Scratch on the labelled budget: {_pm(s)} % at the same epochs"
        if same_steps:
            line += f", {_pm(same_steps)} % with the budget repeated to the same optimiser steps"
        if "kd" in methods:
            base = max([s, same_steps] if same_steps else [s], key=lambda e: e["mean"])
            line += f"; KD is {methods['kd']['mean'] - base['mean']:+.1f} points above the stronger scratch"
        out.append(line + ".")
    if "scratch_pseudo" in methods:
        sp = methods["scratch_pseudo"]
        out.append(f"The teacher's refined pseudo-labels alone (`scratch_pseudo`) give {_pm(sp)} %, "
                   f"{sp['mean'] - teacher:+.1f} points from the teacher: "
                   + ("they carry the student nearly all the way." if sp["mean"] > teacher - 5 else
                      "they leave room for what the other methods add."))
    abl = result.get("ablations", {})
    parts = [(n, e) for n, e in abl.items() if e.get("delta") is not None and n != "no_teacher_cache"]
    if parts:
        if several and all(e.get("ci95") for _, e in parts):
            text = "; ".join(f"`{n}` {e['delta']:+.1f} [{e['ci95'][0]:+.1f}, {e['ci95'][1]:+.1f}] "
                             f"({'no difference shown' if e['verdict'] == 'not distinguishable' else e['verdict'] + ' without the part'})"
                             for n, e in parts)
        else:
            text = "; ".join(f"`{n}` {e['delta']:+.1f}" for n, e in parts)
        out.append(f"Ablations (points when the part is switched off, 95 % CI): {text}.")
    if "no_teacher_cache" in abl and abl["no_teacher_cache"].get("reference") in abl:
        ref = abl[abl["no_teacher_cache"]["reference"]]
        off = abl["no_teacher_cache"]
        if off["train_seconds_mean"] > 0:
            out.append(f"Teacher cache: {ref['train_seconds_mean']:.0f} s of training per run with it, "
                       f"{off['train_seconds_mean']:.0f} s without (ratio {ref['train_seconds_mean'] / off['train_seconds_mean']:.2f}; "
                       f"the one-off cache build is not counted), accuracy without it {off['delta']:+.1f} points.")
    return out
