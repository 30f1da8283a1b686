"""The capacity ladder: specs between a teacher and a student, and their size and cost.

:func:`capacity_ladder` interpolates :class:`~kdlab.models.VideoNetSpec` s between a teacher and a
student: widths (and the stem's) geometrically, depths linearly, so parameter counts fall roughly
geometrically. :func:`ladder_table` gives params and FLOPs per rung.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from kdlab.hooks import unwrap
from kdlab.models import VideoNetSpec, build_model, count_flops, count_parameters, efficiency


def _geometric(a: float, b: float, t: float) -> int:
    """The point a fraction ``t`` of the way from ``a`` to ``b`` in log space, rounded (>= 1)."""
    return max(1, round(math.exp((1 - t) * math.log(a) + t * math.log(b))))


def capacity_ladder(teacher_spec: VideoNetSpec, student_spec: VideoNetSpec, steps: int = 1) -> list[VideoNetSpec]:
    """``steps`` assistant specs between teacher and student: ``[teacher, A_1 .. A_steps, student]``.

    Assistant k of ``steps`` sits at ``t = k / (steps + 1)``: each stage width and the stem width
    are ``exp((1 - t) log w_teacher + t log w_student)`` (rounded), depths and dropout are
    interpolated linearly. A conv layer's parameters scale with width², so parameter counts
    fall roughly geometrically from rung to rung. ``steps=0`` is one-step distillation.

    Teacher and student must share block type, number of stages and strides (so every rung has
    the same feature grids), and parameters must fall strictly from rung to rung: too many steps
    for too small a width gap raise a ValueError.
    """
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0 (the number of assistants), got {steps!r}")
    for name in ("block", "temporal_strides", "spatial_strides"):
        if getattr(teacher_spec, name) != getattr(student_spec, name):
            raise ValueError(f"teacher and student differ in {name} ({getattr(teacher_spec, name)} vs "
                             f"{getattr(student_spec, name)}): a ladder interpolates widths and depths only")
    if len(teacher_spec.widths) != len(student_spec.widths):
        raise ValueError(f"teacher has {len(teacher_spec.widths)} stages, student {len(student_spec.widths)}")
    ladder = [teacher_spec]
    for k in range(1, int(steps) + 1):
        t = k / (steps + 1)
        ladder.append(teacher_spec.replace(
            widths=tuple(_geometric(a, b, t) for a, b in zip(teacher_spec.widths, student_spec.widths)),
            stem_width=_geometric(teacher_spec.stem_width, student_spec.stem_width, t),
            depths=tuple(max(1, round(a + (b - a) * t)) for a, b in zip(teacher_spec.depths, student_spec.depths)),
            dropout=teacher_spec.dropout + (student_spec.dropout - teacher_spec.dropout) * t,
        ))
    ladder.append(student_spec)
    params = [count_parameters(build_model(spec, 10)) for spec in ladder]
    if any(b >= a for a, b in zip(params, params[1:])):
        raise ValueError(f"parameters must fall from rung to rung, got {params}: the student is not smaller "
                         f"than the teacher, or {steps} steps are too many for their width gap")
    return ladder


def rung_names(count: int) -> list[str]:
    """``["teacher", "assistant", "student"]`` for 3 rungs; ``assistant1..`` when there are several."""
    if count < 2:
        raise ValueError(f"a ladder has at least 2 rungs (teacher and student), got {count}")
    middle = ["assistant"] if count == 3 else [f"assistant{i}" for i in range(1, count - 1)]
    return ["teacher", *middle, "student"]


def ladder_table(rungs: Sequence[VideoNetSpec | nn.Module], num_classes: int = 10,
                 input_shape: Sequence[int] = (1, 3, 8, 32, 32), latency: bool = False) -> list[dict]:
    """One row per rung: ``name``, ``widths``, ``stem_width``, ``params``, ``flops`` (one clip of
    ``input_shape`` (1, 3, T, H, W)) and the ratios to the teacher; with ``latency=True`` the
    full :func:`kdlab.models.efficiency` (latency, memory) instead of parameters and FLOPs only."""
    rows = []
    for name, rung in zip(rung_names(len(rungs)), rungs):
        model = build_model(rung, num_classes) if isinstance(rung, VideoNetSpec) else rung
        spec = rung if isinstance(rung, VideoNetSpec) else getattr(unwrap(rung), "spec", None)
        stats = efficiency(model, input_shape) if latency else {
            "params": count_parameters(model), "flops": count_flops(model, input_shape)}
        rows.append({"name": name, "widths": list(spec.widths) if spec else None,
                     "stem_width": spec.stem_width if spec else None, **stats})
    for row in rows:
        row["params_ratio"] = row["params"] / rows[0]["params"]
        row["flops_ratio"] = row["flops"] / rows[0]["flops"]
    return rows


def ladder_markdown(rows: Sequence[dict]) -> str:
    """A Markdown table of :func:`ladder_table` rows (and any ``test_top1`` they carry)."""
    acc = any("test_top1" in r for r in rows)
    head = "| rung | widths | params | MFLOPs / clip | params / teacher |" + (" test top-1 (%) |" if acc else "")
    lines = [head, "|---|---|---:|---:|---:|" + ("---:|" if acc else "")]
    for r in rows:
        widths = r.get("widths") or (r.get("spec") or {}).get("widths")
        line = (f"| {r['name']} | {widths} | {r['params']:,} | {r['flops'] / 1e6:.1f} | "
                f"{r['params'] / rows[0]['params']:.3f} |")
        if acc:
            line += f" {r['test_top1']:.1f} |" if r.get("test_top1") is not None else " |"
        lines.append(line)
    return "\n".join(lines)
