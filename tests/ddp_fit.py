"""Run by tests/test_train.py under torchrun: trains with DDP and saves each rank's weights."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from toydata import MovingBar  # noqa: E402

from kdlab.models import build_model  # noqa: E402
from kdlab.train import distributed, fit  # noqa: E402

out = Path(sys.argv[1])
rank, world = distributed()
torch.manual_seed(0)
model = build_model("student", 2, widths=(4, 8, 8, 8), stem_width=4)
history = fit(model, MovingBar(64), MovingBar(16, seed=1), epochs=2, batch_size=8, progress=False,
              out_dir=out / "run")
torch.save({k: v.clone() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
if rank == 0:
    (out / "val.txt").write_text(str(history.last["val/top1"]))
torch.distributed.destroy_process_group()
