"""The benchmark's results: per-seed lists to summary statistics, the JSON schema, the Markdown report.

``results/benchmark.json`` (``benchmark-quick.json`` for the quick variant)::

    {"variant", "complete", "budget", "seeds", "epochs", "views", "config", "dataset",
     "teacher":  {"protocol", "acc", "best_epoch_acc", "params", "flops", "latency_ms", "train_seconds"},
     "student":  {"model", "params", "flops", "latency_ms"},
     "methods":   {name: ENTRY},
     "ablations": {name: ENTRY + {"reference", "change", "delta"}},
     "sweep":     {"budgets", "seeds", "teacher_acc": [...], "methods": {name: [ENTRY + {"budget"}, ...]}},
     "pseudo_labels": {"coverage", "accuracy", ...},   # the teacher's refined labels (measured only)
     "wall_s", "torch", "threads", "date"}

    ENTRY = {"acc": [per-seed test top-1, %], "mean", "std", "best_epoch_acc": [...], "best_epoch_mean",
             "seeds", "params", "flops", "latency_ms", "train_seconds": [...], "train_seconds_mean"}

``acc`` is the last epoch's test accuracy; ``best_epoch_acc`` the test accuracy of the epoch with
the best *validation* accuracy (never a checkpoint picked on test). ``std`` is the sample standard
deviation over seeds (``numpy.std(acc, ddof=1)``; 0 for one seed).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from kdlab.bench.config import ABLATIONS

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
    """An ablation record with ``reference`` (the entry it differs from), ``change`` and ``delta``
    (its mean minus the reference's mean, in points; None when the reference did not run)."""
    ref, change = ABLATIONS[name]
    other = references.get(ref)
    delta = record["mean"] - other["mean"] if other else None
    return {**record, "reference": ref, "change": change, "delta": delta}


# ----------------------------------------------------------------------------- Markdown

def _pm(e: dict) -> str:
    if len(e.get("acc", ())) == 1:  # one seed has no spread: a "± 0.0" would claim one
        return f"{e['mean']:.1f}"
    return f"{e['mean']:.1f} ± {e['std']:.1f}"


def _num(x, fmt: str = ".1f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def markdown(result: dict) -> str:
    """The Markdown report of a benchmark result (what ``results/benchmark.md`` holds)."""
    t, s = result["teacher"], result["student"]
    seeds = ", ".join(map(str, result["seeds"]))
    lines = [
        f"# kdlab benchmark ({result['variant']} variant{'' if result.get('complete') else ', INCOMPLETE'})",
        "",
        f"Written by `kdlab bench` ({'`--quick`, ' if result['variant'] == 'quick' else ''}"
        f"{'quick-mode data, ' if result.get('quick_data') else ''}dataset `{result['dataset']['name']}`). "
        f"Label budget {result['budget']:g} %, seeds {seeds}, {result['epochs']} epochs per student, "
        f"{result['views']} fixed views per video. Teacher protocol `{t['protocol']}` (the same teacher for "
        f"every method). Accuracy is test top-1 in % after the **last** epoch, mean ± sample std over seeds; "
        f"*best-val epoch* is the test accuracy of the epoch with the best validation accuracy. "
        f"Time is training time per run (cascades: all rungs).",
    ]
    if result["variant"] == "quick":
        lines += ["", "**Quick variant**: few methods, seeds and epochs on small data, to check that the pipeline "
                  "works. Its numbers are not the benchmark's; `make bench` writes `results/benchmark.json`."]
    lines += ["", "## Methods", "",
              "| method | top-1 (%) | per seed | best-val epoch | params | MFLOPs | CPU latency (ms) | train s / run |",
              "|---|---:|---|---:|---:|---:|---:|---:|",
              f"| teacher | {_num(t['acc'])} | – | {_num(t.get('best_epoch_acc'))} | {t['params']:,} | "
              f"{t['flops'] / 1e6:.1f} | {_num(t.get('latency_ms'), '.2f')} | {_num(t.get('train_seconds'), '.0f')} |"]
    for name, e in result["methods"].items():
        lines.append(f"| {name} | {_pm(e)} | {', '.join(f'{a:.1f}' for a in e['acc'])} | {e['best_epoch_mean']:.1f} | "
                     f"{e['params']:,} | {e['flops'] / 1e6:.1f} | {_num(e['latency_ms'], '.2f')} | "
                     f"{e['train_seconds_mean']:.0f} |")
    if result.get("ablations"):
        lines += ["", "## SKD ablations", "",
                  "Each row switches one part off the run named in *vs* (`no_cascade` is the full method "
                  "without its cascade; the others switch one more part off `no_cascade`).", "",
                  "| ablation | what changes | top-1 (%) | vs | Δ (points) | train s / run |", "|---|---|---:|---|---:|---:|"]
        for name, e in result["ablations"].items():
            delta = "–" if e["delta"] is None else f"{e['delta']:+.1f}"
            lines.append(f"| {name} | {e['change']} | {_pm(e)} | {e['reference']} | {delta} | "
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


def takeaways(result: dict) -> list[str]:
    """Plain sentences computed from the numbers: where SKD wins, where it does not, by how much.

    A difference counts as *clear* only when it exceeds the larger of the two standard deviations
    (with one seed, nothing is clear).
    """
    methods = result.get("methods", {})
    out = []
    if not methods:
        return ["no method finished yet"]

    def clear(a: dict, b: dict) -> bool:
        return len(a["acc"]) > 1 and len(b["acc"]) > 1 and abs(a["mean"] - b["mean"]) > max(a["std"], b["std"])

    ranked = sorted(methods.items(), key=lambda kv: kv[1]["mean"], reverse=True)
    best_name, best = ranked[0]
    out.append(f"Best student: `{best_name}` at {_pm(best)} %; the teacher is at {result['teacher']['acc']:.1f} %.")
    if "skd" in methods:
        skd = methods["skd"]
        others = [(n, e) for n, e in ranked if n != "skd"]
        if others:
            top_name, top = others[0]
            diff = skd["mean"] - top["mean"]
            if diff > 0:
                verdict = "clearly" if clear(skd, top) else "but within the seed spread of"
                out.append(f"SKD ({_pm(skd)} %) is ahead of the best other method `{top_name}` ({_pm(top)} %) by "
                           f"{diff:.1f} points, {verdict}{' ahead' if verdict == 'clearly' else ' it'}.")
            else:
                verdict = "clearly behind" if clear(skd, top) else "within the seed spread"
                out.append(f"SKD ({_pm(skd)} %) does not beat `{top_name}` ({_pm(top)} %): {diff:+.1f} points, "
                           f"{verdict}.")
            beaten = [n for n, e in others if e["mean"] < skd["mean"] and clear(skd, e)]
            if beaten:
                out.append(f"SKD is clearly ahead of: {', '.join(f'`{n}`' for n in beaten)}.")
        if "kd" in methods:
            d = skd["mean"] - methods["kd"]["mean"]
            out.append(f"SKD vs plain KD: {d:+.1f} points"
                       f"{' (clear)' if clear(skd, methods['kd']) else ' (within the seed spread)'}.")
    if "scratch" in methods:
        s = methods["scratch"]
        gains = {n: e["mean"] - s["mean"] for n, e in methods.items() if n != "scratch"}
        if gains:
            top = max(gains, key=gains.get)
            if gains[top] > 0:
                out.append(f"All methods see the same labels, so a gain over scratch ({s['mean']:.1f} %) comes from "
                           f"the unlabelled videos; the largest is `{top}`, {gains[top]:+.1f} points.")
            else:
                out.append(f"No method beats scratch ({s['mean']:.1f} %): the unlabelled videos did not help here.")
    abl = result.get("ablations", {})
    parts = [(n, e["delta"]) for n, e in abl.items() if e.get("delta") is not None and n != "no_teacher_cache"]
    if parts:
        text = ", ".join(f"`{n}` {d:+.1f}" for n, d in parts)
        worst = min(parts, key=lambda x: x[1])
        if worst[1] < 0:
            text += f" points; the largest drop comes from `{worst[0]}`"
            text += " (every change is within 2 points)" if all(abs(d) < 2 for _, d in parts) else ""
        else:
            text += " points; switching a part off never lowered the mean accuracy here"
        out.append(f"Ablations (change in points when the part is off): {text}.")
    if "no_teacher_cache" in abl and abl["no_teacher_cache"].get("reference") in abl:
        ref = abl[abl["no_teacher_cache"]["reference"]]
        off = abl["no_teacher_cache"]
        if off["train_seconds_mean"] > 0:
            out.append(f"Teacher cache: {ref['train_seconds_mean']:.0f} s of training per run with it, "
                       f"{off['train_seconds_mean']:.0f} s without (ratio {ref['train_seconds_mean'] / off['train_seconds_mean']:.2f}; "
                       f"the one-off cache build is not counted), accuracy without it {off['delta']:+.1f} points.")
    return out
