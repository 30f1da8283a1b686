"""benchmarks/perf.py reads the notebook series' time only from a complete, successful run."""

import importlib.util
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_perf():
    spec = importlib.util.spec_from_file_location("kdlab_perf", ROOT / "benchmarks" / "perf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_timings(folder: Path, mtime: float, **timings) -> None:
    folder.mkdir(parents=True)
    path = folder / "timings.json"
    path.write_text(json.dumps(timings))
    os.utime(path, (mtime, mtime))


def test_notebook_times_skip_partial_and_failed_series(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for name in ("00_a.ipynb", "01_b.ipynb"):
        (tmp_path / "notebooks" / name).write_text("{}")
    build = tmp_path / "build"
    both = {"00_a.ipynb": 1.0, "01_b.ipynb": 2.0}
    write_timings(build / "notebooks", 1000, **both, total=3.5, mode="default", failed=[])
    # newer, but one notebook only, or with a failure, or from before "failed" was written: ignored
    write_timings(build / "notebooks-one", 2000, **{"00_a.ipynb": 1.0}, total=1.0, mode="default", failed=[])
    write_timings(build / "notebooks-failed", 3000, **both, total=9.0, mode="default", failed=["01_b.ipynb"])
    write_timings(build / "notebooks-old", 4000, **both, total=7.0, mode="default")
    times = load_perf().notebook_times(build)
    assert times["default"] == 3.5 and times["quick"] is None
    assert times["sources"] == {"default": "build/notebooks/timings.json"}
