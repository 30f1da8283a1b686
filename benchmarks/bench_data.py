"""Data loading speed: clips/s for direct decoding vs the clip cache, in one run.

    python benchmarks/bench_data.py            # default dataset (KDLAB_QUICK=1: the quick one)

Both loaders read the training split of the default dataset through a DataLoader
(num_workers=0, shuffled, random sampling with flips, as in training), for ``--epochs`` epochs.
The cache is built first and its build time reported separately. Results go to
``results/bench_data.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
from torch.utils.data import DataLoader

from kdlab import environment
from kdlab.data import VideoFolder, default_dataset


def epoch_rate(ds: VideoFolder, batch_size: int, epochs: int) -> float:
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    clips, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, _, _ in loader:
            clips += x.shape[0]
    return clips / (time.perf_counter() - start)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=environment.pick(2, 1))
    ap.add_argument("--out", default=str(environment.project_root() / "results" / "bench_data.json"))
    args = ap.parse_args(argv)

    root = default_dataset()
    kw = dict(split="train", frames=args.frames, size=args.size, sampling="random", flip=True, progress=False)
    direct = VideoFolder(root, **kw)
    start = time.perf_counter()
    cached = VideoFolder(root, cache=True, **kw)
    cache_s = time.perf_counter() - start  # ~0 when the cache already exists
    for i in range(0, len(direct), max(1, len(direct) // 20)):  # same tensors, or the numbers mean nothing
        torch.manual_seed(i)
        a = direct[i][0]
        torch.manual_seed(i)
        assert torch.equal(a, cached[i][0]), f"cache differs from decoding at item {i}"

    rates = {"direct": epoch_rate(direct, args.batch_size, args.epochs),
             "cache": epoch_rate(cached, args.batch_size, args.epochs)}
    result = {
        "dataset": root.name, "videos": len(direct), "frames": args.frames, "size": args.size,
        "batch_size": args.batch_size, "epochs": args.epochs, "num_workers": 0,
        "clips_per_s": {k: round(v, 1) for k, v in rates.items()},
        "speedup": round(rates["cache"] / rates["direct"], 2),
        "cache_build_s": round(cache_s, 2), "cache_mib": round(cached.cache.nbytes / 2**20, 1),
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "quick": environment.quick(), "date": time.strftime("%Y-%m-%d"),
    }
    print(f"{root.name}: {len(direct)} training videos, clips {args.frames}x{args.size}x{args.size}, "
          f"batch {args.batch_size}, num_workers=0")
    print(f"  direct decoding: {rates['direct']:8.1f} clips/s")
    print(f"  clip cache:      {rates['cache']:8.1f} clips/s  ({result['speedup']}x; built in {cache_s:.1f} s, "
          f"{result['cache_mib']} MiB)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"  wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
