"""kdlab's GPU checks in one run (``make gpu-check``), for a machine that has a GPU for a few minutes.

    python scripts/gpu_check.py [--budget 540] [--notebooks] [--out results/gpu-check.json]

Runs, each step under its share of ``--budget`` seconds (a step over its share is stopped and
reported as such, the others still run):

1. the environment: torch, CUDA, the device kdlab chooses (:func:`kdlab.train.default_device`);
2. the test suite without the slow tests, in quick mode, on that device (pytest's JUnit XML gives
   the failing tests by name), then the slow tests if time is left;
3. with ``--notebooks``: nbval on every numbered notebook in quick mode;
4. one student training of the command line (``kdlab train``) with the GPU's utilisation and
   memory sampled every 0.5 s by ``nvidia-smi``: the figures of ``make perf``'s GPU part.

Prints one summary line per step and writes them to ``--out`` (JSON). CI never runs this: it has no
GPU. On a machine without CUDA it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = {**os.environ, "KDLAB_QUICK": "1", "KDLAB_STRICT": "1", "KDLAB_PROGRESS": "0"}


def run(cmd: list[str], timeout: float, env: dict | None = None) -> tuple[int | None, float, str]:
    """Run ``cmd`` from the project root; (exit status or None if stopped at ``timeout``, seconds, output tail)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env or QUICK, capture_output=True, text=True, timeout=timeout)
        return done.returncode, time.perf_counter() - start, (done.stdout + done.stderr)[-2000:]
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return None, time.perf_counter() - start, out.decode(errors="replace")[-2000:]


def pytest_step(name: str, args: list[str], timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        status, seconds, tail = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     f"--junitxml={xml}", *args], timeout)
        failed, counts = [], {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if xml.is_file():
            for suite in ET.parse(xml).getroot().iter("testsuite"):
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
                failed += [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
                           if case.find("failure") is not None or case.find("error") is not None]
    return {"step": name, "status": status, "seconds": round(seconds, 1), **counts, "failed": failed,
            "stopped_at_timeout": status is None, "tail": tail if status else ""}


def training_step(timeout: float) -> dict:
    """One student training (``kdlab train``) with ``nvidia-smi`` sampling the GPU beside it."""
    smi = shutil.which("nvidia-smi")
    sampler = subprocess.Popen([smi, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                "-lms", "500"], stdout=subprocess.PIPE, text=True) if smi else None
    with tempfile.TemporaryDirectory() as tmp:
        status, seconds, tail = run([sys.executable, "-m", "kdlab", "train", "--model", "student", "--epochs", "4", "--labels", "all",
                                     "--out", str(Path(tmp) / "student")], timeout)
    util, memory = [], []
    if sampler:
        sampler.terminate()
        for line in sampler.communicate()[0].splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                util.append(int(parts[0]))
                memory.append(int(parts[1]))
    busy = {"mean": round(statistics.fmean(util), 1), "median": statistics.median(util), "max": max(util)} if util else None
    return {"step": "student training (kdlab train, 4 epochs)", "status": status, "seconds": round(seconds, 1),
            "gpu_util_percent": busy, "gpu_memory_mib_max": max(memory) if memory else None,
            "tail": tail if status else tail[-500:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=540, help="seconds for every step together")
    parser.add_argument("--notebooks", action="store_true", help="also nbval every numbered notebook")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu-check.json")
    args = parser.parse_args()

    import torch

    from kdlab.train import default_device

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; nothing to check (CI and CPU machines run `make test`)")
        return 2
    deadline = time.monotonic() + args.budget
    left = lambda share: max(10.0, min(share * args.budget, deadline - time.monotonic()))  # noqa: E731
    steps = [{"step": "environment", "torch": torch.__version__, "cuda": torch.version.cuda,
              "device": torch.cuda.get_device_name(0), "kdlab_device": str(default_device())}]
    run([sys.executable, "-m", "kdlab", "data"], left(0.1))  # the quick dataset, shared by every step
    steps.append(pytest_step("tests (not slow)", ["tests", "-m", "not slow"], left(0.4)))
    steps.append(training_step(left(0.15)))
    if args.notebooks:
        notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        steps.append(pytest_step("notebooks (nbval, quick)", ["--nbval-lax", "--nbval-cell-timeout=600", *notebooks],
                                 left(0.5)))
    steps.append(pytest_step("tests (slow)", ["tests", "-m", "slow"], left(1.0)))
    for s in steps:
        extra = {k: v for k, v in s.items() if k not in ("step", "tail", "failed")}
        print(f"{s['step']}: {extra}" + (f"\n  failed: {s['failed']}" if s.get("failed") else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from kdlab.io import atomic_write_text

    atomic_write_text(args.out, json.dumps({"date": time.strftime("%Y-%m-%d"), "steps": steps}, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0 if all(s.get("status", 0) == 0 for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
