"""Generate the simulated motion dataset as real video files in the UCF101 layout.

``generate_dataset(root)`` writes::

    root/
      MoveLeft/v_MoveLeft_g01_c01.avi ...   one folder per class
      classInd.txt      "1 MoveLeft"
      trainlist01.txt   "MoveLeft/v_MoveLeft_g01_c01.avi 1"
      testlist01.txt    "MoveLeft/v_MoveLeft_g26_c01.avi"
      kdlab.json        generator arguments, classes, flip_map
      kdlab_manifest.json   true frame counts (see scan.py)
      .complete         written last: the dataset is whole

Generation is atomic (written into a hidden sibling folder, renamed into place when complete)
and idempotent (a complete dataset with the same arguments is left alone).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from kdlab.progress import tqdm

from .. import config
from .render import MOTIONS, STYLES, render_video

GENERATOR = "kdlab.simmotion"
GENERATOR_VERSION = 1
MARKER = ".complete"
META_FILE = "kdlab.json"

#: The default classes, in label order.
MOTION_CLASSES = [
    "MoveLeft", "MoveRight", "MoveUp", "MoveDown",
    "RotateClockwise", "RotateCounterClockwise", "Grow", "Shrink",
    "LeftThenRight", "RightThenLeft",
]

#: Sizes of the default dataset, and of its quick-mode version (KDLAB_QUICK=1).
# difficulty 0.6: calibrated so the default teacher trained on every label passes 90 % test top-1
# while the student on 10 % of the labels stays far behind (README, "Calibration"). Quick mode keeps
# the harder 1.0 on fewer videos: CI's notebook checks were written against it.
DEFAULTS = {"train_per_class": 100, "test_per_class": 30, "frames": 16, "size": 64, "difficulty": 0.6, "seed": 0}
QUICK_DEFAULTS = {**DEFAULTS, "train_per_class": 40, "test_per_class": 12, "difficulty": 1.0}

_CODECS = {".avi": "MJPG", ".mp4": "mp4v"}
_CLIPS_PER_GROUP = 4  # UCF101 names videos v_<Class>_gGG_cCC: a group of clips per "actor"


def flip_map_for(classes: Sequence[str]) -> list[int]:
    """label -> label after a horizontal flip; -1 where the mirrored class is not in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    return [index.get(MOTIONS[c], -1) for c in classes]


def _check_args(classes, frames, size, difficulty, domain, ext, train_per_class, test_per_class):
    bad = [c for c in classes if c not in MOTIONS]
    if bad:
        raise ValueError(f"unknown motion class(es) {bad}; valid: {list(MOTIONS)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate classes in {list(classes)}")
    if domain not in STYLES:
        raise ValueError(f"unknown domain {domain!r}; valid: {sorted(STYLES)}")
    if ext not in _CODECS:
        raise ValueError(f"unknown video extension {ext!r}; valid: {sorted(_CODECS)}")
    if frames < 2 or size < 16 or difficulty < 0 or train_per_class < 1 or test_per_class < 0:
        raise ValueError(
            f"need frames >= 2, size >= 16, difficulty >= 0, train_per_class >= 1, test_per_class >= 0; got "
            f"frames={frames}, size={size}, difficulty={difficulty}, train_per_class={train_per_class}, "
            f"test_per_class={test_per_class}"
        )


def _video_name(cls: str, i: int, group_offset: int, ext: str) -> str:
    g, c = group_offset + i // _CLIPS_PER_GROUP + 1, i % _CLIPS_PER_GROUP + 1
    return f"v_{cls}_g{g:02d}_c{c:02d}{ext}"


def _write_video(path: Path, frames: np.ndarray, ext: str, fps: float = 12.0) -> None:
    T, H, W, _ = frames.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*_CODECS[ext]), fps, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with codec {_CODECS[ext]}")
    try:
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def read_meta(root: str | Path) -> dict | None:
    """The ``kdlab.json`` of a dataset folder, or None if it has none."""
    path = Path(root) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def is_complete(root: str | Path) -> bool:
    return (Path(root) / MARKER).is_file()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(root: Path) -> None:
    # A partial folder whose writer died (killed mid-way) is garbage: remove it.
    for part in root.parent.glob(f".{root.name}.partial-*"):
        pid = part.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(part, ignore_errors=True)


def generate_dataset(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    train_per_class: int = DEFAULTS["train_per_class"],
    test_per_class: int = DEFAULTS["test_per_class"],
    frames: int = DEFAULTS["frames"],
    size: int = DEFAULTS["size"],
    difficulty: float = DEFAULTS["difficulty"],
    domain: str = "target",
    seed: int = DEFAULTS["seed"],
    ext: str = ".avi",
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a simulated motion dataset to ``root`` (UCF101 layout) and return ``root``.

    Each video is drawn from ``np.random.default_rng((seed, domain, class, split, index))``, so
    the same arguments give the same files, and the test set does not change when the training
    set grows. ``ext`` ".avi" writes MJPG, ".mp4" writes mp4v.

    A complete dataset with the same arguments is left untouched. A half-written one (no
    ``.complete`` marker) is regenerated. A complete one with *different* arguments raises
    ``FileExistsError``, unless ``overwrite=True`` (then it is replaced).
    """
    root = Path(root)
    classes = list(MOTION_CLASSES if classes is None else classes)
    _check_args(classes, frames, size, difficulty, domain, ext, train_per_class, test_per_class)
    args = {"classes": classes, "train_per_class": int(train_per_class), "test_per_class": int(test_per_class),
            "frames": int(frames), "size": int(size), "difficulty": float(difficulty), "domain": domain,
            "seed": int(seed), "ext": ext}
    meta = {"generator": GENERATOR, "version": GENERATOR_VERSION, "args": args,
            "classes": classes, "flip_map": flip_map_for(classes)}

    if root.exists():
        old = read_meta(root) if root.is_dir() else None
        ours = old is not None and old.get("generator") == GENERATOR
        if not root.is_dir() or (not ours and any(root.iterdir())):
            raise FileExistsError(f"{root} exists and is not a kdlab dataset; refusing to overwrite it. "
                                  "Pass another root.")
        if ours and is_complete(root):
            same = old.get("version") == GENERATOR_VERSION and old.get("args") == args
            if same:
                return root
            if not overwrite:
                diff = {k: (old.get("args", {}).get(k), v) for k, v in args.items() if old.get("args", {}).get(k) != v}
                raise FileExistsError(
                    f"{root} holds a dataset generated with other arguments (old, new): {diff}"
                    f"{'' if old.get('version') == GENERATOR_VERSION else ' and another generator version'}. "
                    "Use another root, delete the folder, or pass overwrite=True."
                )
        shutil.rmtree(root)  # ours but half-written, or replaced on request, or empty

    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(root)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}"
    try:
        _write_all(tmp, meta, progress, root.name)
        if root.exists():  # another process finished first
            if is_complete(root) and (read_meta(root) or {}).get("args") == args:
                shutil.rmtree(tmp)
                return root
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _write_all(tmp: Path, meta: dict, progress: bool, name: str) -> None:
    from .scan import scan_dataset  # scan imports this module's helpers

    a = meta["args"]
    classes, ext = a["classes"], a["ext"]
    tmp.mkdir(parents=True)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    domain_id = sorted(STYLES).index(a["domain"])
    test_groups = -(-a["train_per_class"] // _CLIPS_PER_GROUP)  # test actors differ from train ones
    train_lines, test_lines = [], []
    total = len(classes) * (a["train_per_class"] + a["test_per_class"])
    bar = tqdm(total=total, desc=f"generating {name}", unit="video", disable=not progress)
    for label, cls in enumerate(classes):
        (tmp / cls).mkdir()
        class_id = list(MOTIONS).index(cls)  # stable across class subsets
        for split_id, (count, offset, lines) in enumerate(
            ((a["train_per_class"], 0, train_lines), (a["test_per_class"], test_groups, test_lines))
        ):
            for i in range(count):
                rng = np.random.default_rng([a["seed"], domain_id, class_id, split_id, i])
                video = render_video(cls, rng, frames=a["frames"], size=a["size"],
                                     difficulty=a["difficulty"], domain=a["domain"])
                rel = f"{cls}/{_video_name(cls, i, offset, ext)}"
                _write_video(tmp / rel, video, ext)
                lines.append(f"{rel} {label + 1}" if split_id == 0 else rel)
                bar.update()
    bar.close()
    (tmp / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    (tmp / "trainlist01.txt").write_text("".join(line + "\n" for line in train_lines))
    (tmp / "testlist01.txt").write_text("".join(line + "\n" for line in test_lines))
    scan_dataset(tmp, progress=False)
    (tmp / MARKER).write_text("complete\n")  # last: the dataset is whole


DATASETS = ("simmotion",)


def default_dataset(name: str = "simmotion", *, domain: str = "target", progress: bool = True, **overrides) -> Path:
    """The default simulated dataset under ``kdlab.environment.data_dir()``, generated if absent.

    Sizes come from :data:`DEFAULTS` (or :data:`QUICK_DEFAULTS` in quick mode), updated with
    ``overrides`` (any :func:`generate_dataset` argument). The folder is ``<name>[-source][-quick]``
    plus a short hash when there are overrides, so each configuration has its own folder.
    Because kdlab owns these folders, one made by older defaults is regenerated.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {list(DATASETS)}")
    params = {**config.pick(DEFAULTS, QUICK_DEFAULTS), **overrides}
    folder = name + ("" if domain == "target" else f"-{domain}") + ("-quick" if config.quick() else "")
    if overrides:
        key = json.dumps(overrides, sort_keys=True, default=str)
        folder += "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
    return generate_dataset(config.data_dir() / folder, domain=domain, progress=progress, overwrite=True, **params)
