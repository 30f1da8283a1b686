"""bf16 mixed precision against fp32: accuracy of a short training run and the speed of a training step.

    python benchmarks/bench_amp.py [--model student] [--epochs 6] [--device cpu] [--batch 16] [--out FILE]
    python benchmarks/bench_amp.py --device cuda --steps-only --model r3d_18 --batch 32 --clip 16 112 112

Generates a small simulated dataset (``--classes`` x ``--per-class`` training videos) in a temporary
folder (or reads ``--data``), trains ``--model`` on every training label twice with the same seed,
``kdlab.train.fit(amp=False)`` and ``fit(amp=True)``, and reports each run's test top-1 (last epoch)
and last training loss; then times one optimiser step (forward + cross-entropy + backward + AdamW,
median of ``--steps``) on random clips of ``--batch`` x 3 x ``--clip`` (default 8 x 32 x 32) with and
without autocast (``--steps-only``: the step timing alone). Prints JSON (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from kdlab.data import VideoFolder, generate_dataset
from kdlab.data.synthetic import MOTION_CLASSES
from kdlab.models import build_model
from kdlab.train import autocast, evaluate, fit


def step_seconds(model, x, y, amp: bool, steps: int, warmup: int = 3) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        if x.is_cuda:
            torch.cuda.synchronize()
        tic = time.perf_counter()
        with autocast(x.device, amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="student")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clip", type=int, nargs=3, default=(8, 32, 32), metavar=("T", "H", "W"))
    parser.add_argument("--steps-only", action="store_true", help="time the optimiser step only (no training run)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    runs = {"fp32": {}, "bf16": {}}
    result = {"model": args.model, "device": str(device), "threads": args.threads, "batch": args.batch,
              "clip": [3, *args.clip], "torch": torch.__version__, "machine": platform.machine(),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "runs": runs}
    if not args.steps_only:
        result.update(train_runs(args, device, runs))
    x = torch.randn(args.batch, 3, *args.clip, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    for amp in (False, True):
        torch.manual_seed(0)
        model = build_model(args.model, 10).to(device).train()
        runs["bf16" if amp else "fp32"]["step_s"] = step_seconds(model, x, y, amp, args.steps)
    result["step_speedup"] = runs["fp32"]["step_s"] / runs["bf16"]["step_s"]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


def train_runs(args, device, runs: dict) -> dict:
    """Train ``args.model`` with and without amp into ``runs``; returns the data's description."""
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or generate_dataset(Path(tmp) / "sim", classes=list(MOTION_CLASSES[: args.classes]),
                                             train_per_class=args.per_class, test_per_class=args.per_class // 2,
                                             progress=False)
        train = VideoFolder(root, "train", sampling="random", flip=True, cache=True, progress=False)
        test = VideoFolder(root, "test", cache=True, progress=False)
        for amp in (False, True):
            torch.manual_seed(0)
            model = build_model(args.model, train.num_classes)
            history = fit(model, train, epochs=args.epochs, batch_size=args.batch, seed=0, device=device, amp=amp,
                          progress=False)
            runs["bf16" if amp else "fp32"].update({
                "test_top1": evaluate(model, test, amp=amp)["top1"], "last_train_loss": history.last["train/loss"],
                "epoch_s": statistics.median(history.series("seconds")[1:] or history.series("seconds")),
            })
        return {"epochs": args.epochs, "classes": args.classes, "train_videos": len(train), "test_videos": len(test)}


if __name__ == "__main__":
    main()
