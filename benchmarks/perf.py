"""One performance report: every cost ratio of the issue, measured side by side, in ``results/perf.json``.

    python benchmarks/perf.py [--threads N] [--out results/perf.json]      (make perf)

Reuses the measuring functions of the other benchmarks (nothing is re-implemented here):

- ``tap_overhead``: training step with a SubstageTap / without (``bench_tap``; target <= 1.03);
- ``skd_step_over_floor``: SKD step / (teacher forward without grad + student step)
  (``bench_distill.step_ratio``; target <= 1.10);
- ``cached_over_uncached_epoch``: SKD epoch with the teacher cache / without
  (``bench_distill.epoch_ratio``; target <= 0.6);
- ``loader_over_student``: loader clips/s (``bench_data``) / student training clips/s
  (``bench_train.step_seconds``), ``{"direct", "cached"}`` (target >= 3 with the clip cache);
- ``teacher_over_student_flops`` (target >= 10);
- ``notebooks_quick_s`` / ``notebooks_default_s``: the notebook series' total time, read from the
  ``timings.json`` that ``scripts/run_notebooks.py`` writes under ``build/notebooks*/`` (null,
  with a note, when the series has not been run in that mode).

With CUDA present it also writes ``results/perf-gpu.json``: the student's training clips/s on the
GPU (the same step), the GPU's utilisation and memory sampled by ``nvidia-smi`` during one student
training (``scripts/gpu_check.py``'s step) and, with ``--gpu-bench``, the wall time of the full
default benchmark (``kdlab bench`` into an empty run cache; minutes even on a GPU).

Targets are benchmark figures, reported beside each ratio; nothing here fails on a miss. The
sub-benchmarks' own JSON files go to a temporary folder, so this run changes only ``perf.json``.
KDLAB_QUICK=1 makes every part shorter (fewer steps, the quick dataset).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_data  # noqa: E402
import bench_distill  # noqa: E402
import bench_tap  # noqa: E402
import bench_train  # noqa: E402

from kdlab import environment  # noqa: E402
from kdlab.io import atomic_write_text  # noqa: E402
from kdlab.models import build_model, count_flops  # noqa: E402

TARGETS = {"tap_overhead": ("<=", 1.03), "skd_step_over_floor": ("<=", 1.10),
           "cached_over_uncached_epoch": ("<=", 0.6), "loader_over_student.cached": (">=", 3.0),
           "teacher_over_student_flops": (">=", 10.0)}


def notebook_times(build: Path) -> dict:
    """``{"quick": seconds | None, "default": seconds | None, "sources": {...}}`` from the newest
    ``build/notebooks*/timings.json`` of each mode that ran every numbered notebook without a failure."""
    series = {p.name for p in (build.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    found: dict[str, tuple[float, float, str]] = {}
    for path in sorted(build.glob("notebooks*/timings.json")):
        try:
            t = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        mode, total = t.get("mode"), t.get("total")
        whole = series <= set(t) and not t.get("failed", True)  # older files without "failed" do not count
        if whole and mode in ("quick", "default") and isinstance(total, (int, float)):
            mtime = path.stat().st_mtime
            if mode not in found or mtime > found[mode][0]:
                found[mode] = (mtime, float(total), str(path.relative_to(build.parent)))
    return {"quick": found.get("quick", (0, None))[1], "default": found.get("default", (0, None))[1],
            "sources": {m: v[2] for m, v in found.items()}}


def student_clips_per_s(batch: int, frames: int, size: int, steps: int) -> float:
    """Training clips/s of the student (forward, loss, backward, AdamW), ``bench_train.step_seconds``."""
    torch.manual_seed(0)
    model = build_model("student", 10).train()
    x = torch.randn(batch, 3, frames, size, size)
    y = torch.randint(0, 10, (batch,))
    return batch / bench_train.step_seconds(model, x, y, steps)


def gpu_part(batch: int, frames: int, size: int, steps: int, full_bench: bool, out: Path) -> dict:
    """The GPU figures of the module docstring, written to ``out``."""
    sys.path.insert(0, str(environment.project_root() / "scripts"))
    import gpu_check

    torch.manual_seed(0)
    device = torch.device("cuda")
    model = build_model("student", 10).train().to(device)
    x = torch.randn(batch, 3, frames, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    result = {"device": torch.cuda.get_device_name(device), "student_train_clips_per_s":
              batch / bench_train.step_seconds(model, x, y, steps), "student_run": gpu_check.training_step(600)}
    if full_bench:
        with tempfile.TemporaryDirectory() as tmp:
            status, seconds, tail = gpu_check.run([sys.executable, "-m", "kdlab", "bench", "--no-plots", "--out",
                                                   f"{tmp}/bench.json"], 3600, env={**os.environ, "KDLAB_RUNS": tmp})
        result["full_bench"] = {"status": status, "seconds": seconds, "tail": tail[-500:]}
    result.update(torch=torch.__version__, cuda=torch.version.cuda, date=time.strftime("%Y-%m-%d"))
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"GPU: student {result['student_train_clips_per_s']:.0f} clips/s, utilisation during a student run "
          f"{result['student_run']['gpu_util_percent']} -> {out}")
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="JSON path (default: results/perf.json)")
    parser.add_argument("--gpu-bench", action="store_true",
                        help="with CUDA: also time the full default benchmark into an empty run cache")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = ["--threads", str(torch.get_num_threads())]
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tap = bench_tap.main(["--out", f"{tmp}/tap.json"])
        distill = bench_distill.main(["--out", f"{tmp}/distill.json", *threads])
        data = bench_data.main(["--out", f"{tmp}/data.json"])
    student = student_clips_per_s(batch=data["batch_size"], frames=data["frames"], size=data["size"],
                                  steps=environment.pick(20, 8))
    shape = (1, 3, data["frames"], data["size"], data["size"])
    flops = {name: count_flops(build_model(name, 10), shape) for name in ("teacher", "student")}
    notebooks = notebook_times(environment.project_root() / "build")
    result = {
        "tap_overhead": tap["ratio_tapped_over_plain"],
        "skd_step_over_floor": distill["skd_step_over_floor"],
        "cached_over_uncached_epoch": distill["cached_over_uncached_epoch"],
        "loader_over_student": {"direct": data["clips_per_s"]["direct"] / student,
                                "cached": data["clips_per_s"]["cache"] / student},
        "teacher_over_student_flops": flops["teacher"] / flops["student"],
        "notebooks_quick_s": notebooks["quick"],
        "notebooks_default_s": notebooks["default"],
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "details": {
            "student_train_clips_per_s": student, "loader_clips_per_s": data["clips_per_s"],
            "skd_identity_step_over_floor": distill["skd_identity_step_over_floor"],
            "teacher_cache_build_s": distill["cache_build_s"], "flops": flops, "notebook_timings": notebooks["sources"],
            "dataset": data["dataset"],
        },
        "notes": [] if notebooks["quick"] is not None and notebooks["default"] is not None else [
            "notebook times are null for a mode whose series has not run: run `KDLAB_QUICK=1 python "
            "scripts/run_notebooks.py --out build/notebooks-quick notebooks/*.ipynb` (quick) or `make notebooks` "
            "(default), then `make perf` again"],
        "quick": environment.quick(), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0], "torch": torch.__version__, "machine": platform.machine(),
        "seconds": time.perf_counter() - tic, "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out or environment.project_root() / "results" / "perf.json")
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print("\nperf summary (targets are figures, not assertions):")
    for key, (op, target) in TARGETS.items():
        value = result
        for part in key.split("."):
            value = value[part]
        ok = value <= target if op == "<=" else value >= target
        print(f"  {key:32s} {value:8.3f}   target {op} {target:<5}  {'met' if ok else 'MISSED'}")
    print(f"  {'loader_over_student.direct':32s} {result['loader_over_student']['direct']:8.3f}")
    for mode in ("quick", "default"):
        s = result[f"notebooks_{mode}_s"]
        print(f"  notebooks_{mode}_s{'':19s} {'null (not run)' if s is None else f'{s:8.1f}'}")
    print(f"-> {out}")
    if torch.cuda.is_available():
        result["gpu"] = gpu_part(data["batch_size"], data["frames"], data["size"], environment.pick(50, 10),
                                 args.gpu_bench, out.with_name("perf-gpu.json"))
    return result


if __name__ == "__main__":
    main()
