"""The one training engine every kdlab method runs through.

:func:`fit` trains a model with an *objective*: a module called as ``objective(model, batch)`` that
returns ``(terms, logits)``, a dict of named scalar loss terms (summed for the backward pass) and
the student's logits ``(B, classes)`` for the training accuracy. Plain cross-entropy
(:class:`Supervised`) is one objective; the distillation objectives in :mod:`kdlab.distill` are
others, so every method is compared with the same loop, optimiser and schedule.

What :func:`fit` guarantees:

- a history of every loss term and metric per epoch, with the last and the best-on-validation
  epoch (the test split is never seen here);
- a checkpoint after every epoch, written atomically and loaded with ``weights_only=True``; run
  again on the same ``out_dir`` it resumes after the last finished epoch. Every epoch reseeds all
  random generators from ``(seed, epoch)``, so on the CPU a killed-and-resumed run ends with the
  same weights as an uninterrupted one;
- a NaN/inf guard that names the loss term, the epoch and the step, and says whether a
  checkpoint is kept;
- PyTorch's usual shapes at the edges: datasets of ``(x, y)`` or ``(x, y, index, ...)`` items, or
  a ready DataLoader; a model without ``num_classes`` (read from its output);
- optional bf16 mixed precision (``amp=True``) and TensorBoard logs (``log_dir=``, :mod:`kdlab.tblog`);
- the same code under ``torchrun --nproc_per_node=N`` (DDP; gloo on the CPU, NCCL on GPUs), where
  rank 0 alone logs and writes.

The pieces around the loop live beside it: :mod:`kdlab.runtime` (device, seeds, torchrun,
autocast), :mod:`kdlab.supervised` (:class:`Supervised`, :func:`label_loss`), :mod:`kdlab.history`
(:class:`History`) and :mod:`kdlab.evaluation` (:func:`evaluate`). Every one of their public names
is importable from here too, as before the split.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from kdlab.evaluation import evaluate
from kdlab.history import History
from kdlab.hooks import unwrap
from kdlab.environment import display_path
from kdlab.io import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from kdlab.progress import summary, tqdm
from kdlab.resident import resident_loader
from kdlab.runtime import autocast, default_device, deterministic, distributed, epoch_seed, seed_everything, to_device
from kdlab.supervised import Supervised, label_loss

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
HISTORY = "history.json"


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; the message names the term, epoch and step."""


class ResumeMismatchError(RuntimeError):
    """``out_dir`` holds a run with another configuration than the one asked for."""


class TrainingDisabledError(RuntimeError):
    """``KDLAB_NO_TRAINING`` is set and a call would train: the run it needs is not in ``runs/``."""


#: Set (to anything but "" or "0") where nothing may train, e.g. a class that unpacked the
#: instructor's artifacts (README, "Teaching with kdlab"): a run missing from the cache then stops
#: with :class:`TrainingDisabledError` instead of quietly training for minutes.
NO_TRAINING = "KDLAB_NO_TRAINING"


def _refuse_training_if_disabled(model: nn.Module, out: Path | None, start_epoch: int, epochs: int) -> None:
    if os.environ.get(NO_TRAINING, "") in ("", "0") or start_epoch >= epochs:
        return
    where = f" into {display_path(out)}" if out is not None else ""
    raise TrainingDisabledError(
        f"{NO_TRAINING} is set, but this would train a {type(unwrap(model)).__name__} for {epochs - start_epoch} "
        f"epoch(s){where}: the run it needs is not in the run cache. Unpack the artifacts that hold it "
        f"(kdlab artifacts unpack FILE) or unset {NO_TRAINING} to train it here.")


# ----------------------------------------------------------------------------- fit

def _optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    raise ValueError(f"unknown optimizer {name!r}; valid: adamw, sgd")


def _scheduler(name: str, optimizer, total_steps: int, warmup_steps: int):
    """Per-step learning-rate schedule: linear warm-up, then cosine to 0 (or constant)."""
    if name not in ("cosine", "constant"):
        raise ValueError(f"unknown scheduler {name!r}; valid: cosine, constant")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if name == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, rank: int, world: int,
            num_workers: int, drop_last: bool, pin_memory: bool = False) -> DataLoader:
    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle,
                                                      seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, drop_last=drop_last, persistent_workers=False, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(seed))


def _check_finite(terms: dict[str, torch.Tensor], epoch: int, step: int, kept: str) -> None:
    """Raise :class:`NonFiniteLossError` naming the first term that is NaN or infinite. One read
    of the device per step (all terms at once); the names are looked up only after a failure."""
    if not terms or bool(torch.stack([torch.isfinite(v).all() for v in terms.values()]).all()):
        return
    for name, value in terms.items():
        if not torch.isfinite(value).all():
            raise NonFiniteLossError(
                f"loss term {name!r} is {value.item() if value.numel() == 1 else value} at epoch {epoch}, "
                f"step {step}; {kept}. Lower the learning rate or check the inputs."
            )


def _kept(out: Path | None, history: "History") -> str:
    """What a NaN leaves behind, for its message."""
    if out is None:
        return "nothing was saved (no out_dir)"
    if history.records and (out / CHECKPOINT).is_file():
        return f"the checkpoint of epoch {history.records[-1]['epoch']} in {out} is kept"
    return f"no checkpoint was written to {out}"


def _differences(stored: dict, asked: dict, prefix: str = "") -> str:
    """``"lr: stored 0.002, asked 0.001; run.frames: ..."``: the keys whose values differ."""
    parts = []
    for key in sorted(set(stored) | set(asked)):
        a, b = stored.get(key), asked.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            parts.append(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            parts.append(f"{prefix}{key}: stored {a!r}, asked {b!r}")
    return "; ".join(p for p in parts if p)


def _with_index(batch):
    """``(x, y)`` -> ``(x, y, None)``: objectives read ``batch[2]`` (the sample index) when they need it."""
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return (batch[0], batch[1], None)
    return batch


def fit(
    model: nn.Module,
    train_data: Dataset | DataLoader,
    val_data: Dataset | DataLoader | None = None,
    *,
    objective: nn.Module | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 2e-3,
    weight_decay: float = 5e-4,
    optimizer: str = "adamw",
    scheduler: str = "cosine",
    warmup_epochs: float = 0.5,
    grad_clip: float | None = 5.0,
    seed: int = 0,
    out_dir: str | Path | None = None,
    run_config: dict | None = None,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    stop_after_epoch: int | None = None,
    amp: bool = False,
    log_dir: str | Path | None = None,
) -> History:
    """Train ``model`` on ``train_data`` with ``objective`` (default :class:`Supervised`).

    ``train_data``/``val_data`` are map-style datasets whose items are ``(clip, label)`` or start
    with ``(clip, label, index)`` (objectives with per-sample targets need the index), or
    DataLoaders of such batches (then ``batch_size``, shuffling and seeding of the training order
    are the loader's; under torchrun pass a Dataset, which fit shards). Validation runs after
    every epoch (top-1 on ``val_data``, never the test split).
    ``out_dir`` keeps ``checkpoint.pt`` (after each epoch), ``best.pt`` (best validation epoch)
    and ``history.json``; a run started again on it resumes after the last finished epoch, and
    fails with :class:`ResumeMismatchError` if ``run_config`` or the training settings differ.
    Returns the :class:`History`; ``history.best_state`` holds the best-validation weights.
    ``stop_after_epoch`` ends the call early (as an interruption would), for demonstrations.
    ``amp``: bf16 autocast for the forward passes (off by default: on the CPU it is mostly
    slower; measured in the README). ``log_dir``: a TensorBoard log of every record (rank 0).
    """
    rank, world = distributed()
    device = torch.device(device) if device is not None else default_device()
    objective = objective if objective is not None else Supervised()
    deterministic(device)
    model.to(device)
    objective.to(device)
    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                    scheduler=scheduler, warmup_epochs=warmup_epochs, grad_clip=grad_clip, seed=seed,
                    world_size=world, objective=type(objective).__name__, run=run_config or {})
    if amp:  # only when on, so checkpoints written before amp existed still resume
        settings["amp"] = True
    seed_everything(seed)
    if isinstance(train_data, DataLoader):
        if world > 1:
            raise ValueError("under torchrun pass fit a Dataset (it shards it across processes), not a DataLoader")
        train_loader = train_data
    else:
        drop_last = len(train_data) > batch_size * world
        # Fixed views go onto the device once and batches are drawn there (the same batches, bit for bit)
        train_loader = resident_loader(train_data, batch_size, seed, drop_last, device, world) if num_workers == 0 else None
        if train_loader is None:
            train_loader = _loader(train_data, batch_size, True, seed, rank, world, num_workers, drop_last=drop_last,
                                   pin_memory=device.type == "cuda")
    steps_per_epoch = len(train_loader)
    trainable = [p for p in (*model.parameters(), *objective.parameters()) if p.requires_grad]
    opt = _optimizer(optimizer, trainable, lr, weight_decay)
    sched = _scheduler(scheduler, opt, epochs * steps_per_epoch, int(warmup_epochs * steps_per_epoch))
    history = History()
    start_epoch = 0

    out = Path(out_dir) if out_dir is not None else None
    if out is not None and (out / CHECKPOINT).exists():
        state = load_checkpoint(out / CHECKPOINT)
        asked = json.loads(json.dumps(settings))
        if state["settings"] != asked:
            raise ResumeMismatchError(f"{out} holds a run with other settings ({_differences(state['settings'], asked)}); "
                                      "use another out_dir or delete it")
        model.load_state_dict(state["model"])
        objective.load_state_dict(state["objective"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = History.from_records(state["history"])
        start_epoch = state["epoch"] + 1
        if (out / BEST).exists():
            history.best_state = load_checkpoint(out / BEST)["model"]

    _refuse_training_if_disabled(model, out, start_epoch, epochs)
    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    show = progress and rank == 0
    board = None
    if log_dir is not None and rank == 0:
        from kdlab.tblog import EpochLog

        board = EpochLog(log_dir, start_epoch)
    bar = tqdm(total=epochs, initial=start_epoch, desc="epochs", disable=not show)
    for epoch in range(start_epoch, epochs):
        tic = time.perf_counter()
        seed_everything(epoch_seed(seed, epoch))
        if train_loader.generator is not None:
            train_loader.generator.manual_seed(epoch_seed(seed, epoch))
        if isinstance(train_loader.sampler, torch.utils.data.DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        if hasattr(objective, "on_epoch_start"):
            objective.on_epoch_start(epoch=epoch, model=model, loader=train_loader)
        model.train()
        # Running sums stay on the device (float64, so the CPU's numbers are those of a Python float
        # sum) and are read once per epoch: no host synchronisation per step beyond the NaN guard.
        sums: dict[str, torch.Tensor] = {}
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = torch.zeros((), dtype=torch.long, device=device)
        kept = _kept(out, history)
        for step, batch in enumerate(tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not show)):
            batch = to_device(_with_index(batch), device)
            with autocast(device, amp):
                terms, logits = objective(train_model, batch)
            _check_finite(terms, epoch, step, kept)
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                _average_objective_grads(objective, world)
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
            opt.step()
            sched.step()
            for name, value in {**terms, "loss": loss}.items():
                value = value.detach().double()
                sums[name] = sums[name] + value if name in sums else value
            labels = batch[1]
            mask = labels >= 0
            correct += ((logits.argmax(1) == labels) & mask).sum()  # no boolean indexing: it would sync
            seen += mask.sum()
        if world > 1:
            _average_buffers(model, world)
        record = {"epoch": epoch}
        totals = torch.stack([*sums.values(), correct.double(), seen.double(),
                              torch.tensor(float(len(train_loader)), dtype=torch.float64, device=device)])
        if world > 1:
            dist.all_reduce(totals)
        *term_sums, correct_all, seen_all, steps_all = totals.tolist()
        record.update({f"train/{k}": v / max(steps_all, 1) for k, v in zip(sums, term_sums)})
        record["train/acc"] = 100.0 * correct_all / max(seen_all, 1)
        if val_data is not None:
            metrics = evaluate(model, val_data, batch_size=batch_size, device=device, amp=amp)
            record.update({"val/top1": metrics["top1"], "val/loss": metrics["loss"]})
        record["lr"] = opt.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - tic
        if hasattr(objective, "epoch_record"):
            record.update(objective.epoch_record())
        history.records.append(record)
        if history.best_epoch == epoch:
            history.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if out is not None and rank == 0:
                atomic_save({"model": history.best_state, "epoch": epoch, "arch": getattr(unwrap(model), "arch", {})}, out / BEST)
        if out is not None and rank == 0:
            atomic_save({
                "model": model.state_dict(), "objective": objective.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "epoch": epoch, "history": history.records,
                "settings": json.loads(json.dumps(settings)), "arch": getattr(unwrap(model), "arch", {}),
            }, out / CHECKPOINT)
            atomic_write_text(out / HISTORY, history.to_json())
        if board is not None:
            board.write(record)
        if world > 1:
            dist.barrier()
        bar.update(1)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if k in ("train/loss", "train/acc", "val/top1")})
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    bar.close()
    if history.records and epochs > start_epoch:
        last = history.records[-1]
        seconds = sum(r.get("seconds", 0.0) for r in history.records[start_epoch:])
        shown = ", ".join(f"{k} {last[k]:.3g}" for k in ("train/loss", "train/acc", "val/top1") if k in last)
        summary(f"fit: epochs {start_epoch + 1}-{last['epoch'] + 1} of {epochs} in {seconds:.0f} s | {shown}", show=show)
    if board is not None:
        board.close()
    if history.best_state is None and history.records:
        history.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return history


def _average_buffers(model: nn.Module, world: int) -> None:
    """Each rank updates BatchNorm running statistics on its own shard; averaging them after each
    epoch keeps every rank's model identical (and the statistics closer to the full data's)."""
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= world


def _average_objective_grads(objective: nn.Module, world: int) -> None:
    """DDP averages the model's gradients; trainable parts of the objective (adapters, learned
    pairings) are averaged here so every rank keeps identical weights."""
    for p in objective.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= world


__all__ = [
    "CheckpointError", "History", "NonFiniteLossError", "ResumeMismatchError", "Supervised", "TrainingDisabledError",
    "autocast", "default_device", "distributed", "epoch_seed", "evaluate", "fit", "label_loss", "seed_everything", "to_device", "unwrap",
]
