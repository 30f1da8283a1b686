"""Export the student of a finished run alone (``kdlab export RUN --format onnx|pt2``), with a parity check.

:func:`find_student` reads the student of any kdlab output folder: ``kdlab train`` and ``kdlab
distill`` (``fit/checkpoint.pt``; an older ``kdlab train``'s ``checkpoint.pt``), ``kdlab cascade``/``skd`` (the last
rung, ``cascade/rung-<n>/model.pt``) or a run-cache folder (``model.pt``), always the weights of the
last epoch (the ones the reports' "test top-1 (last epoch)" measures). :func:`export_student`
writes it as

- ``onnx``: an ONNX graph (``torch.onnx.export``; input ``clips`` (B, 3, T, H, W), output
  ``logits`` (B, classes), B dynamic), checked with onnxruntime. Needs the optional packages
  ``onnx``, ``onnxscript`` and ``onnxruntime`` (``pip install 'kdlab[export]'``);
- ``pt2``: a ``torch.export`` program (``torch.export.load(path).module()(clips)``).

The parity check runs the PyTorch student and the export on every clip of the run's test split
and reports the largest absolute logit difference and the top-1 agreement (percent); it is
printed by the CLI and stored as ``<export>.parity.json`` beside the export (e.g.
``student.onnx.parity.json``). Both files are written atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from kdlab.io import atomic_write_bytes, atomic_write_text, load_checkpoint
from kdlab.models import count_parameters, model_from_arch
from kdlab.runfolder import FolderError, locked

FORMATS = ("onnx", "pt2")


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def find_student(folder: str | Path) -> tuple[nn.Module, dict]:
    """``(student in eval mode, where)``; ``where`` has ``checkpoint`` (its path), ``data`` (the
    dataset folder or None for the default one), ``frames`` and ``size`` of the run's clips."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderError(f"{folder} does not exist")
    config, report = _json(folder / "config.json"), _json(folder / "report.json")
    kind = config.get("kind") or ("old-train" if (folder / "checkpoint.pt").is_file() else None)
    if kind in ("skd", "distill", "train", "old-train") and not report:
        raise FolderError(f"{folder} holds an unfinished {kind} run: run the same command again to finish it")
    if kind == "skd":
        path = folder / "cascade" / f"rung-{len(report['rungs']) - 1}" / "model.pt"
        data = config
    elif kind in ("distill", "train"):
        path, data = folder / "fit" / "checkpoint.pt", config
    elif kind == "old-train":  # kdlab train before it used the run-folder layout of the other commands
        path, data = folder / "checkpoint.pt", report["config"]
    elif (folder / "model.pt").is_file():  # a run-cache folder (kdlab.runs)
        path, data = folder / "model.pt", config.get("data", {})
        data = {**data, "data": data.get("root") or _dataset_of(data.get("dataset"))}
    else:
        raise FolderError(f"{folder} is not a kdlab output folder (no config.json, checkpoint.pt or model.pt)")
    state = load_checkpoint(path)
    if not state.get("arch"):
        raise FolderError(f"{path} does not record its model's architecture, so the student cannot be rebuilt")
    model = model_from_arch(state["arch"])
    model.load_state_dict(state["model"])
    return model.eval(), {"checkpoint": str(path), "data": data.get("data"), "frames": int(data.get("frames", 8)),
                          "size": int(data.get("size", 32))}


def _dataset_of(fingerprint: str | None) -> str | None:
    """The dataset under the data folder with this content fingerprint (run keys hold no paths)."""
    if not fingerprint:
        return None
    from kdlab.environment import data_dir
    from kdlab.data.fingerprint import find_dataset

    found = find_dataset(fingerprint, data_dir())
    return None if found is None else str(found)


def _batch_dim() -> tuple[dict, ...]:
    return ({0: torch.export.Dim.DYNAMIC},)


def export_onnx(model: nn.Module, example: torch.Tensor, out: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Write ``model`` as ONNX to ``out``; returns a function running the file with onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(f"--format onnx needs onnx, onnxscript and onnxruntime: pip install 'kdlab[export]' "
                          f"({exc})") from None
    program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=_batch_dim(), verbose=False,
                                input_names=["clips"], output_names=["logits"])
    atomic_write_bytes(out, program.model_proto.SerializeToString())  # a student is far below protobuf's 2 GB
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return lambda clips: torch.from_numpy(session.run(None, {"clips": clips.numpy()})[0])


def export_pt2(model: nn.Module, example: torch.Tensor, out: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """Write ``model`` as a ``torch.export`` program to ``out``; returns the reloaded program."""
    program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim())
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    loaded = torch.export.load(str(out)).module()
    return lambda clips: loaded(clips).detach()


@torch.no_grad()
def parity(model: nn.Module, exported: Callable[[torch.Tensor], torch.Tensor], data, batch_size: int = 16) -> dict:
    """Max |logit difference| and top-1 agreement (percent) of ``model`` and ``exported`` on ``data``
    (items ``(clip (3, T, H, W), label, ...)``), and each one's top-1 accuracy."""
    diff, agree, right_model, right_export, n = 0.0, 0, 0, 0, 0
    for batch in DataLoader(data, batch_size=batch_size):
        clips, labels = batch[0], batch[1]
        a, b = model(clips), exported(clips).to(torch.float32)
        diff = max(diff, (a - b).abs().max().item())
        agree += (a.argmax(1) == b.argmax(1)).sum().item()
        right_model += (a.argmax(1) == labels).sum().item()
        right_export += (b.argmax(1) == labels).sum().item()
        n += len(labels)
    return {"clips": n, "max_abs_logit_diff": diff, "top1_agreement": 100.0 * agree / n,
            "top1_pytorch": 100.0 * right_model / n, "top1_export": 100.0 * right_export / n}


def export_student(folder: str | Path, format: str = "onnx", out: str | Path | None = None,
                   progress: bool = False) -> dict:
    """Export the student of the run in ``folder`` (see the module docstring); returns the parity
    record, also written to ``<out>.parity.json``. ``out`` defaults to
    ``<folder>/export/student.<format>``. The run folder is locked meanwhile."""
    from kdlab.data import VideoFolder, default_dataset

    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; valid: {', '.join(FORMATS)}")
    folder = Path(folder)
    model, where = find_student(folder)
    out = Path(out) if out is not None else folder / "export" / f"student.{format}"
    root = Path(where["data"]) if where["data"] else default_dataset()
    test = VideoFolder(root, "test", frames=where["frames"], size=where["size"], progress=progress)
    example = torch.zeros(2, 3, where["frames"], where["size"], where["size"])
    with locked(folder):
        exported = (export_onnx if format == "onnx" else export_pt2)(model, example, out)
        record = {"format": format, "export": str(out), "checkpoint": where["checkpoint"],
                  "arch": getattr(model, "arch", {}), "params": count_parameters(model), "test_data": str(root),
                  **parity(model, exported, test)}
        atomic_write_text(out.with_name(out.name + ".parity.json"), json.dumps(record, indent=1))
    return record
