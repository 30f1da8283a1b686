"""Execute numbered notebooks, each in a fresh kernel, and write executed copies and HTML.

usage: python scripts/run_notebooks.py [--out build/notebooks] [--timeout 900] NB.ipynb ...

Prints each notebook's wall time and writes them to ``<out>/timings.json``. Exits non-zero if
any notebook fails (the others still run, so one broken notebook does not hide the rest).

The copies are for reading, so progress is ``KDLAB_PROGRESS=summary`` (one line per finished
training instead of bars frozen at "0%"; :mod:`kdlab.progress`) unless the environment says
otherwise. Checks are not strict here (a class sees ✗ lines, :mod:`kdlab.checks`); the claims
that failed are counted per notebook and listed at the end. The names of the run folders the
series used are written to ``runs/series-runs.txt`` (``kdlab artifacts pack --series``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbclient.exceptions import CellTimeoutError
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

from kdlab.artifacts import SERIES_LOG
from kdlab.checks import FAIL
from kdlab.environment import runs_dir
from kdlab.io import atomic_write_text


def run(path: Path, out: Path, timeout: int) -> tuple[float, str | None, list[str]]:
    nb = nbformat.read(path, as_version=4)
    executor = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    start = time.perf_counter()
    error = None
    try:
        executor.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    except CellExecutionError as exc:
        error = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
    except CellTimeoutError:  # the executed part is still written, and the other notebooks still run
        error = f"a cell ran over {timeout} s (--timeout)"
    seconds = time.perf_counter() - start
    failed = [line for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              for line in output.get("text", "").splitlines() if line.startswith(FAIL + " ")]
    nbformat.write(nb, out / path.name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (out / path.with_suffix(".html").name).write_text(html, encoding="utf-8")
    return seconds, error, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/notebooks"))
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mode = "quick" if os.environ.get("KDLAB_QUICK") else "default"
    os.environ.setdefault("KDLAB_PROGRESS", "summary")  # the kernels inherit the environment
    runs_dir().mkdir(parents=True, exist_ok=True)
    os.environ["KDLAB_RUN_LOG"] = str(runs_dir() / SERIES_LOG)
    (runs_dir() / SERIES_LOG).write_text("")
    timings, failures, claims = {}, [], {}
    total = time.perf_counter()
    for path in args.notebooks:
        print(f"running {path} ({mode} mode) ...", flush=True)
        seconds, error, failed_claims = run(path, args.out, args.timeout)
        timings[path.name] = round(seconds, 1)
        status = "ok" if error is None else f"FAILED: {error}"
        if failed_claims:
            claims[path.name] = failed_claims
            status += f" ({len(failed_claims)} claim(s) did not hold: {'; '.join(failed_claims)})"
        print(f"  {seconds:7.1f} s  {status}", flush=True)
        if error:
            failures.append(path.name)
    timings["total"] = round(time.perf_counter() - total, 1)
    timings["mode"] = mode
    timings["failed"] = failures  # a series with failures is not a time of the series (benchmarks/perf.py)
    timings["failed_checks"] = claims
    atomic_write_text(args.out / "timings.json", json.dumps(timings, indent=1))
    print(f"executed notebooks and HTML are in {args.out}/ (total {timings['total']} s, {mode} mode)")
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
