"""Which frames make a clip: indices into a video of ``n`` frames.

Every mode spreads a clip's ``frames`` over the *whole* video: the simulated classes (and many
real actions) are defined by the full motion, e.g. LeftThenRight differs from MoveLeft only in
its second half, so a short contiguous window would change the label's meaning.
"""

from __future__ import annotations

import torch

SAMPLINGS = ("uniform", "random", "multi")


def clip_indices(n: int, frames: int, sampling: str = "uniform", clips: int = 1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Frame indices, LongTensor (clips, frames), each in [0, n).

    - ``uniform``: frame t at floor((t + 0.5) * n / frames), the centres of ``frames`` equal
      segments. Deterministic (evaluation).
    - ``random``: one random frame inside each of the ``frames`` equal segments,
      floor((t + u_t) * n / frames) with u_t ~ U[0, 1) from torch's RNG (training; TSN-style).
    - ``multi``: ``clips`` deterministic clips whose phases are evenly spaced:
      floor((t + (k + 0.5) / clips) * n / frames) for clip k. With clips=1 it equals uniform.

    When n < frames some frames repeat (the loader rejects videos shorter than its minimum first).
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling={sampling!r}: choose one of {SAMPLINGS}")
    if n < 1 or frames < 1 or clips < 1:
        raise ValueError(f"need n >= 1, frames >= 1, clips >= 1; got n={n}, frames={frames}, clips={clips}")
    if sampling != "multi" and clips != 1:
        raise ValueError(f"clips={clips} needs sampling='multi' (got sampling={sampling!r})")
    t = torch.arange(frames, dtype=torch.float64)
    if sampling == "uniform":
        pos = (t + 0.5)[None]
    elif sampling == "random":
        pos = (t + torch.rand(frames, generator=generator, dtype=torch.float64))[None]
    else:
        phase = (torch.arange(clips, dtype=torch.float64) + 0.5) / clips
        pos = t[None] + phase[:, None]
    return torch.clamp((pos * n / frames).floor().long(), 0, n - 1)
