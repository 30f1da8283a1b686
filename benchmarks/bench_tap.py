"""How much does a SubstageTap add to a training step?

Times one SGD step (forward, cross-entropy, backward, update) of the same model with and
without a tap on its stages. The tapped step opens and closes the tap every step, the most
expensive way to use it. Steps alternate (plain, tapped, tapped, plain, ...) so that drift in
machine load hits both equally; the ratio of the two medians is reported (target <= 1.03) and
written to ``results/bench_tap.json``.

    python benchmarks/bench_tap.py [--steps 40] [--batch 16] [--model student]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from kdlab.environment import pick, project_root
from kdlab.hooks import SubstageTap
from kdlab.models import build_model


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=pick(40, 12), help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--model", default="student")
    parser.add_argument("--out", default=None, help="JSON path (default: results/bench_tap.json)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    num_classes = 10
    model, model_desc = build_model(args.model, num_classes), f"kdlab.models.build_model({args.model!r})"
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    y = torch.randint(0, num_classes, (args.batch,))

    def step(tapped: bool) -> float:
        t0 = time.perf_counter()
        if tapped:
            with SubstageTap(model) as tap:
                loss = nn.functional.cross_entropy(model(x), y)
            assert len(tap.features) == len(model.stage_names)
        else:
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        step(False)
        step(True)
    plain, tapped = [], []
    for k in range(args.steps):
        order = (False, True) if k % 2 == 0 else (True, False)
        for t in order:
            (tapped if t else plain).append(step(t))

    med_plain, med_tapped = statistics.median(plain), statistics.median(tapped)
    result = {
        "model": model_desc,
        "stages": list(model.stage_names),
        "input": [args.batch, 3, args.frames, args.size, args.size],
        "steps_per_variant": args.steps,
        "median_step_s_plain": med_plain,
        "median_step_s_tapped": med_tapped,
        "ratio_tapped_over_plain": med_tapped / med_plain,
        "median_pairwise_ratio": statistics.median(t / p for t, p in zip(tapped, plain)),
        "target_ratio": 1.03,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
    }
    out = args.out or project_root() / "results" / "bench_tap.json"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{model_desc}, input {tuple(result['input'])}: plain {med_plain * 1e3:.2f} ms, "
        f"tapped {med_tapped * 1e3:.2f} ms, ratio {result['ratio_tapped_over_plain']:.3f} "
        f"(target <= 1.03) -> {out}"
    )
    return result


if __name__ == "__main__":
    main()
