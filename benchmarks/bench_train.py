"""Training throughput of kdlab's model family: clips/s of one optimiser step, per model.

    python benchmarks/bench_train.py [--steps 20] [--batch 16] [--threads 2]

Times forward + cross-entropy + backward + AdamW step on random clips (3 x 8 x 32 x 32, batch 16)
for the teacher, assistant, student and single-frame baseline, in one run, and writes
``results/bench_train.json`` (median step time, clips/s, FLOPs, and teacher/student ratios).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from kdlab.environment import project_root
from kdlab.models import build_model, count_flops, count_parameters

MODELS = ("teacher", "assistant", "student", "frame2d")


def step_seconds(model, x, y, steps: int, warmup: int = 3) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        tic = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.is_cuda:  # CUDA runs asynchronously: time the finished step, not its launch
            torch.cuda.synchronize(x.device)
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 8, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    rows = {}
    for name in MODELS:
        model = build_model(name, 10).train()
        seconds = step_seconds(model, x, y, args.steps)
        rows[name] = {"params": count_parameters(model), "flops": count_flops(model, (1, 3, 8, 32, 32)),
                      "step_s": seconds, "train_clips_per_s": args.batch / seconds}
        print(f"{name:9s} {rows[name]['params']:>9,} params  {rows[name]['flops'] / 1e6:7.1f} MFLOPs  "
              f"{rows[name]['train_clips_per_s']:7.1f} train clips/s", flush=True)
    result = {
        "models": rows, "input": [args.batch, 3, 8, 32, 32], "threads": args.threads,
        "teacher_over_student_flops": rows["teacher"]["flops"] / rows["student"]["flops"],
        "student_over_teacher_speed": rows["student"]["train_clips_per_s"] / rows["teacher"]["train_clips_per_s"],
        "torch": torch.__version__, "machine": platform.machine(),
    }
    out = args.out or project_root() / "results" / "bench_train.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"teacher/student FLOPs {result['teacher_over_student_flops']:.1f}x; student trains "
          f"{result['student_over_teacher_speed']:.1f}x faster -> {out}")
    return result


if __name__ == "__main__":
    main()
