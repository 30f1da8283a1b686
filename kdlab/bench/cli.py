"""``kdlab bench``: the benchmark from the command line (wired into :mod:`kdlab.cli`).

    kdlab bench [--regime discriminative|easy] [--data PATH] [--config FILE.toml] [--quick] [--out FILE.json]
                [--no-plots]

Runs (or resumes) the benchmark and writes the JSON, the Markdown report beside it and the plots
(``<stem>-flops.png``, ``-budgets.png``, ``-ablations.png``). A configuration error (an unknown
method, ablation or setting) is a :class:`kdlab.errors.UsageError`: one line, exit status 2.
"""

from __future__ import annotations

import argparse

from kdlab.bench.config import MAIN_REGIME, REGIMES
from kdlab.errors import UsageError


def _cmd_bench(args) -> int:
    from kdlab.bench import BenchConfigError, load_config, run_benchmark

    if args.data is not None:
        from pathlib import Path

        if not Path(args.data).is_dir():
            raise UsageError(f"dataset folder {args.data} does not exist")
    try:
        cfg = load_config(args.config, quick=True if args.quick else None, regime=args.regime, data=args.data,
                          out=args.out)
    except BenchConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    result = run_benchmark(cfg, progress=True, jobs=args.jobs)
    out = cfg.out_path()
    if not args.no_plots:
        from kdlab.viz.bench import save_plots

        save_plots(result, out.parent, stem=out.stem)
    print(f"benchmark ({cfg.variant} variant, regime {cfg.regime}): {len(result['methods'])} methods, {len(result['ablations'])} "
          f"ablations, {len(result['sweep']['methods'])} swept methods in {result['wall_s']:.0f} s -> {out} "
          f"and {out.with_suffix('.md').name}")
    return 0


def add_bench_parser(sub) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``kdlab``'s subparsers."""
    bench = sub.add_parser(
        "bench", help="every method x seeds, the label-budget sweep and the SKD ablations",
        description="Run (or resume: finished runs are loaded from runs/) the benchmark: every method at the "
                    "configured label budget over several seeds, the budget sweep and the SKD ablations. Writes "
                    "results/benchmark.json, .md and plots (the quick variant: results/benchmark-quick.*).")
    bench.add_argument("--regime", choices=list(REGIMES),
                       help=f"the named regime (default: {MAIN_REGIME}; 'easy' writes results/benchmark-easy.*)")
    bench.add_argument("--data", help="dataset folder in the UCF101/HMDB51 layout (default: the generated one)")
    bench.add_argument("--config", help="TOML file with BenchConfig settings (top level or a [bench] table)")
    bench.add_argument("--quick", action="store_true", help="the quick variant (also under KDLAB_QUICK=1)")
    bench.add_argument("--out", help="JSON path (default: results/benchmark.json or benchmark-quick.json)")
    bench.add_argument("--jobs", type=int, default=1,
                       help="runs trained at once in separate processes (each cpu_count/jobs threads); same results")
    bench.add_argument("--no-plots", dest="no_plots", action="store_true", help="skip the PNG plots")
    bench.set_defaults(func=_cmd_bench)
    return bench
