"""Stage-structured video classifiers: teacher, assistants, student, a single-frame baseline and
torchvision's video ResNets, all with the same named parts.

Every model here is ``stem -> stage1 .. stageS -> head`` and lists its stages in ``stage_names``,
so that hooks (:mod:`kdlab.hooks`) and the distillation objective can address *substages* by name
whatever the architecture. Inputs are clips ``(B, 3, T, H, W)``; outputs are logits ``(B, classes)``.
The head's ``embed`` child outputs the pooled embedding ``(B, C_last)`` (used by RKD and PKT).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from kdlab.modes import eval_mode

BLOCKS = ("3d", "2plus1d", "2d")


@dataclass(frozen=True)
class VideoNetSpec:
    """Width, depth and block type of one member of the family.

    ``block``: ``"3d"`` (3x3x3 convolutions), ``"2plus1d"`` (1x3x3 spatial then 3x1x1 temporal)
    or ``"2d"`` (1x3x3 only: every frame is seen alone and frames are pooled at the end, the
    single-frame baseline). ``temporal_strides``/``spatial_strides`` give each stage's stride.
    """

    widths: tuple[int, ...] = (16, 32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    block: str = "3d"
    stem_width: int = 16
    temporal_strides: tuple[int, ...] = (1, 1, 2, 2)
    spatial_strides: tuple[int, ...] = (2, 2, 2, 1)
    dropout: float = 0.0

    def __post_init__(self):
        n = len(self.widths)
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block {self.block!r}; valid: {', '.join(BLOCKS)}")
        for field in ("depths", "temporal_strides", "spatial_strides"):
            if len(getattr(self, field)) != n:
                raise ValueError(
                    f"VideoNetSpec.{field} has {len(getattr(self, field))} entries but widths has {n}"
                )

    def replace(self, **changes) -> "VideoNetSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "VideoNetSpec":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# The default family, sized for a 2-core CPU at clips of 3 x 8 x 32 x 32 (README: efficiency table).
SPECS: dict[str, VideoNetSpec] = {
    "teacher": VideoNetSpec(widths=(24, 48, 96, 192), stem_width=16),
    "assistant": VideoNetSpec(widths=(16, 32, 64, 96), stem_width=12),
    "student": VideoNetSpec(widths=(8, 12, 24, 48), stem_width=6),
    # Half the student's widths (a quarter of its parameters): one knob of the regime search.
    "student-small": VideoNetSpec(widths=(4, 6, 12, 24), stem_width=4),
    # Same widths as the student, but every conv is 1x3x3: frames are seen one at a time.
    "frame2d": VideoNetSpec(widths=(8, 12, 24, 48), stem_width=6, block="2d", temporal_strides=(1, 1, 1, 1)),
}
TORCHVISION_MODELS = ("r3d_18", "mc3_18", "r2plus1d_18")


def _conv(c_in: int, c_out: int, block: str, stride: tuple[int, int, int]) -> nn.Module:
    """One 'conv' of the given block type; ``stride`` is (t, h, w)."""
    st, sh, sw = stride
    if block == "3d":
        return nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    spatial = nn.Conv3d(c_in, c_out, (1, 3, 3), stride=(1, sh, sw), padding=(0, 1, 1), bias=False)
    if block == "2d":
        return spatial
    # (2+1)D: factorise into spatial then temporal, with a BN+ReLU between the two.
    return nn.Sequential(
        spatial, nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
        nn.Conv3d(c_out, c_out, (3, 1, 1), stride=(st, 1, 1), padding=(1, 0, 0), bias=False),
    )


class BasicBlock(nn.Module):
    """Residual block: conv-BN-ReLU-conv-BN plus a (projected) shortcut. ``(B, C_in, T, H, W) ->
    (B, C_out, T/st, H/ss, W/ss)``."""

    def __init__(self, c_in: int, c_out: int, block: str, stride=(1, 1, 1)):
        super().__init__()
        self.conv1 = _conv(c_in, c_out, block, stride)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = _conv(c_out, c_out, block, (1, 1, 1))
        self.bn2 = nn.BatchNorm3d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if c_in != c_out or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(
                nn.Conv3d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm3d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Head(nn.Module):
    """Global average pool -> ``embed`` (B, C) -> dropout -> linear logits (B, classes)."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.embed = nn.Flatten(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.embed(self.pool(x))))


class StagedVideoNet(nn.Module):
    """Base class: ``stem``, ``stage1..S``, ``head`` called in that order.

    Subclasses set these children and ``stage_names``. ``forward`` takes ``(B, 3, T, H, W)`` and
    returns logits ``(B, num_classes)``.
    """

    stage_names: list[str]
    num_classes: int
    arch: dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"expected clips of shape (B, 3, T, H, W), got {tuple(x.shape)}")
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.head(x)


class VideoNet(StagedVideoNet):
    """A member of kdlab's family, built from a :class:`VideoNetSpec`.

    Shapes for input ``(B, 3, T, H, W)``: the stem keeps ``T, H, W`` (3x3x3 conv, or 1x3x3 for the
    2D baseline); stage k divides them by its strides; the head pools everything.
    """

    def __init__(self, spec: VideoNetSpec, num_classes: int):
        super().__init__()
        self.spec, self.num_classes = spec, num_classes
        self.arch = {"kind": "videonet", "spec": spec.to_dict(), "num_classes": num_classes}
        stem_kernel = (1, 3, 3) if spec.block == "2d" else (3, 3, 3)
        self.stem = nn.Sequential(
            nn.Conv3d(3, spec.stem_width, stem_kernel, padding=tuple(k // 2 for k in stem_kernel), bias=False),
            nn.BatchNorm3d(spec.stem_width),
            nn.ReLU(inplace=True),
        )
        self.stage_names = []
        c_in = spec.stem_width
        for i, (width, depth, st, ss) in enumerate(
            zip(spec.widths, spec.depths, spec.temporal_strides, spec.spatial_strides), start=1
        ):
            blocks = [BasicBlock(c_in, width, spec.block, (st, ss, ss))]
            blocks += [BasicBlock(width, width, spec.block) for _ in range(depth - 1)]
            setattr(self, f"stage{i}", nn.Sequential(*blocks))
            self.stage_names.append(f"stage{i}")
            c_in = width
        self.head = Head(c_in, num_classes, spec.dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class TorchvisionVideoNet(StagedVideoNet):
    """torchvision's ``r3d_18``, ``mc3_18`` or ``r2plus1d_18`` with kdlab's part names.

    ``layer1..4`` become ``stage1..4`` and ``avgpool + fc`` the :class:`Head` (same weights), so
    taps, correlation and distillation work unchanged. The state dict keeps torchvision's key
    names (``layer1.0.conv1.0.weight``, ``fc.weight``): ``model.state_dict()`` loads into
    ``torchvision.models.video.r3d_18(num_classes=...)`` and back (kdlab's names load too).
    Randomly initialised unless ``weights_path`` names a local state dict (torchvision's key
    names, e.g. a downloaded Kinetics checkpoint): kdlab never downloads at run time. A
    checkpoint's ``fc`` is kept only when its class count matches ``num_classes`` (else the new
    head starts random).
    """

    def __init__(self, name: str, num_classes: int, weights_path: str | Path | None = None):
        super().__init__()
        import torchvision.models.video as tvv

        if name not in TORCHVISION_MODELS:
            raise ValueError(f"unknown torchvision video model {name!r}; valid: {', '.join(TORCHVISION_MODELS)}")
        net = getattr(tvv, name)(weights=None, num_classes=num_classes)
        if weights_path is not None:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            if state.get("fc.weight") is not None and state["fc.weight"].shape[0] != num_classes:
                state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing, unexpected = net.load_state_dict(state, strict=False)
            if unexpected or [k for k in missing if not k.startswith("fc.")]:
                raise ValueError(
                    f"{weights_path} does not match {name}: missing {missing[:5]}, unexpected {unexpected[:5]}"
                )
        self.num_classes = num_classes
        self.arch = {"kind": "torchvision", "name": name, "num_classes": num_classes}
        self.stem = net.stem
        self.stage_names = [f"stage{i}" for i in range(1, 5)]
        for i in range(1, 5):
            setattr(self, f"stage{i}", getattr(net, f"layer{i}"))
        self.head = Head(net.fc.in_features, num_classes)
        self.head.fc = net.fc
        # Public since torch 2.5; the private name before (the same hook).
        (getattr(self, "register_state_dict_post_hook", None) or self._register_state_dict_hook)(_to_torchvision_names)
        self.register_load_state_dict_pre_hook(_from_torchvision_names)


# kdlab part name -> torchvision's, for the state dict of a TorchvisionVideoNet.
_TV_NAMES = {**{f"stage{i}.": f"layer{i}." for i in range(1, 5)}, "head.fc.": "fc."}


def _rename(state: dict, prefix: str, names: dict[str, str]) -> None:
    for key in list(state):
        for old, new in names.items():
            if key.startswith(prefix + old):
                state[prefix + new + key[len(prefix + old):]] = state.pop(key)
                break


def _to_torchvision_names(module, state_dict, prefix, local_metadata):
    _rename(state_dict, prefix, _TV_NAMES)


def _from_torchvision_names(module, state_dict, prefix, *args):
    _rename(state_dict, prefix, {new: old for old, new in _TV_NAMES.items()})


def min_frames(model: str | VideoNetSpec) -> int:
    """The shortest clip ``model`` can learn motion from: 1 frame for a single-frame ("2d") model,
    2 for one that convolves over time (a 1-frame clip holds no motion, so it trains to chance)."""
    spec = model if isinstance(model, VideoNetSpec) else SPECS.get(model)
    return 1 if spec is not None and spec.block == "2d" else 2


def build_model(name: str | VideoNetSpec, num_classes: int, *, weights_path=None, **overrides) -> StagedVideoNet:
    """A model by name (``teacher``, ``assistant``, ``student``, ``frame2d``, ``r3d_18``,
    ``mc3_18``, ``r2plus1d_18``) or from a :class:`VideoNetSpec`; ``overrides`` change spec
    fields (e.g. ``widths=(8, 16, 32, 64)``)."""
    if isinstance(name, VideoNetSpec):
        return VideoNet(name.replace(**overrides), num_classes)
    if name in SPECS:
        return VideoNet(SPECS[name].replace(**overrides), num_classes)
    if name in TORCHVISION_MODELS:
        if overrides:
            raise ValueError(f"{name} takes no spec overrides (got {sorted(overrides)})")
        return TorchvisionVideoNet(name, num_classes, weights_path)
    valid = ", ".join([*SPECS, *TORCHVISION_MODELS])
    raise ValueError(f"unknown model {name!r}; valid: {valid} (or a VideoNetSpec)")


def model_from_arch(arch: dict) -> StagedVideoNet:
    """Rebuild an untrained model from its ``arch`` record (stored in checkpoints)."""
    if arch["kind"] == "videonet":
        return VideoNet(VideoNetSpec.from_dict(arch["spec"]), arch["num_classes"])
    if arch["kind"] == "torchvision":
        return TorchvisionVideoNet(arch["name"], arch["num_classes"])
    raise ValueError(f"unknown model kind {arch.get('kind')!r} in {arch}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on a zero input of ``input_shape`` (B, 3, T, H, W), counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts as 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(torch.zeros(*input_shape, device=device))
    return counter.get_total_flops()


def _activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of every leaf module's output in one forward: what training keeps for backward."""
    total = 0

    def hook(_module, _inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def efficiency(model: nn.Module, input_shape: Sequence[int] = (1, 3, 8, 32, 32), *, repeats: int = 20,
               warmup: int = 3) -> dict:
    """Parameters, FLOPs, latency and memory of ``model`` for inputs of ``input_shape``.

    Latency is the median over ``repeats`` timed forward passes in eval mode (after ``warmup``).
    Memory is the peak CUDA allocation on a GPU; on the CPU it is the activation bytes of one
    forward pass (leaf-module outputs) plus the parameter bytes, an estimate of what inference
    holds at its peak.
    """
    device = next(model.parameters()).device
    x = torch.randn(*input_shape, device=device)
    times = []
    with eval_mode(model):
        with torch.no_grad():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - start)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            with torch.no_grad():
                model(x)
            memory = torch.cuda.max_memory_allocated(device)
        else:
            memory = _activation_bytes(model, x) + sum(p.numel() * p.element_size() for p in model.parameters())
    return {
        "params": count_parameters(model),
        "flops": count_flops(model, input_shape),
        "latency_ms": 1000 * sorted(times)[len(times) // 2],
        "memory_mb": memory / 2**20,
        "input_shape": list(input_shape),
        "device": device.type,
    }


def efficiency_table(models: dict[str, nn.Module], input_shape=(1, 3, 8, 32, 32), **kwargs) -> str:
    """A Markdown table of :func:`efficiency` for several named models."""
    rows = ["| model | params | GFLOPs | latency (ms) | memory (MB) |", "|---|---:|---:|---:|---:|"]
    for name, model in models.items():
        e = efficiency(model, input_shape, **kwargs)
        rows.append(
            f"| {name} | {e['params']:,} | {e['flops'] / 1e9:.3f} | {e['latency_ms']:.2f} | {e['memory_mb']:.1f} |"
        )
    return "\n".join(rows)
