"""Draw one simulated motion video as uint8 RGB frames (T, S, S, 3); no file I/O here.

Every video is drawn from one random generator in a fixed order: appearance first (the same
draws for every class), then the motion. So the appearance distribution is identical across
classes and only the trajectory over time carries the label.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Motions: name -> the horizontally mirrored motion (itself when a flip keeps the label).
MOTIONS = {
    "MoveLeft": "MoveRight",
    "MoveRight": "MoveLeft",
    "MoveUp": "MoveUp",
    "MoveDown": "MoveDown",
    "RotateClockwise": "RotateCounterClockwise",
    "RotateCounterClockwise": "RotateClockwise",
    "Grow": "Grow",
    "Shrink": "Shrink",
    "LeftThenRight": "RightThenLeft",
    "RightThenLeft": "LeftThenRight",
    "UpThenDown": "UpThenDown",
    "DownThenUp": "DownThenUp",
}


def _poly(*pts):
    p = np.array(pts, dtype=np.float64)
    return p - p.mean(axis=0)  # centre the shape so it rotates about its middle


# Unit-size shapes (radius ~1). None has rotational symmetry, so its orientation is visible.
SHAPES = {
    "arrow": _poly((1, 0), (0.1, 0.75), (0.1, 0.3), (-0.9, 0.3), (-0.9, -0.3), (0.1, -0.3), (0.1, -0.75)),
    "ell": _poly((-0.8, -0.9), (-0.2, -0.9), (-0.2, 0.35), (0.8, 0.35), (0.8, 0.9), (-0.8, 0.9)),
    "wedge": _poly((-0.9, -0.8), (1.0, 0.1), (-0.5, 0.9)),
    "kite": _poly((0, -1), (0.5, -0.1), (0.1, 0.9), (-0.6, 0.2)),
    "tee": _poly((-0.9, -0.9), (0.9, -0.9), (0.9, -0.4), (0.25, -0.4), (0.25, 0.9), (-0.25, 0.9), (-0.25, -0.4), (-0.9, -0.4)),
    "flag": _poly((-0.7, -0.95), (0.9, -0.6), (-0.2, -0.2), (-0.2, 0.95), (-0.7, 0.95)),
    "boot": _poly((-0.6, -0.9), (0.0, -0.9), (0.0, 0.3), (0.9, 0.4), (0.9, 0.9), (-0.6, 0.9)),
    "notch": _poly((-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (0.1, 0.8), (0.1, 0.1), (-0.8, 0.1)),
}

# A domain is a style: which shapes, backgrounds, colours and speeds its videos use. "target" is
# the dataset students learn on; "source" is a separate corpus for teacher pre-training.
STYLES = {
    "target": {"shapes": ("arrow", "ell", "wedge", "kite"), "background": "blobs", "speed": 1.0,
               "sat": (150, 255), "val": (190, 255), "stripes": 0.0},
    "source": {"shapes": ("tee", "flag", "boot", "notch"), "background": "stripes", "speed": 1.35,
               "sat": (90, 200), "val": (150, 240), "stripes": 0.6},
}


def _hsv_to_rgb(h, s, v):
    px = np.uint8([[[h, s, v]]])
    return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0])


def _background(rng, S, style, difficulty):
    """A static cluttered background, uint8 (S, S, 3), muted so the main object stands out."""
    if style["background"] == "blobs":
        low = rng.uniform(70, 170, size=(4, 4, 3)).astype(np.float32)
        bg = cv2.resize(low, (S, S), interpolation=cv2.INTER_CUBIC)
    else:  # oriented sinusoidal stripes on a warm gradient
        yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
        theta, freq = rng.uniform(0, np.pi), rng.uniform(2, 5)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)))
        base = rng.uniform(90, 160, size=3).astype(np.float32)
        bg = base + 25 * wave[..., None] + 30 * (xx[..., None] - 0.5) * rng.uniform(-1, 1, 3)
    grey = bg.mean(axis=2, keepdims=True)
    bg = np.clip(0.45 * bg + 0.55 * grey, 0, 255).astype(np.uint8)  # desaturate
    # Clutter: static low-contrast marks in the same muted palette.
    for _ in range(int(round(6 * difficulty))):
        c = tuple(int(v) for v in np.clip(grey.mean() + rng.normal(0, 28, 3), 0, 255))
        x, y = rng.uniform(0, S, 2)
        r = rng.uniform(0.04, 0.12) * S
        if rng.random() < 0.5:
            cv2.circle(bg, (int(x), int(y)), int(r), c, -1, cv2.LINE_AA)
        else:
            x2, y2 = x + rng.uniform(-2, 2) * r, y + rng.uniform(-2, 2) * r
            cv2.line(bg, (int(x), int(y)), (int(x2), int(y2)), c, max(1, int(r / 3)), cv2.LINE_AA)
    return bg


class _Sprite:
    """A shape with colours; drawn at a centre, angle (radians, clockwise on screen) and radius."""

    def __init__(self, rng, style, saturation=None):
        self.poly = SHAPES[style["shapes"][rng.integers(len(style["shapes"]))]]
        sat = saturation or style["sat"]
        hue = rng.uniform(0, 180)
        self.color = _hsv_to_rgb(hue, rng.uniform(*sat), rng.uniform(*style["val"]))
        self.color2 = _hsv_to_rgb((hue + rng.uniform(60, 120)) % 180, rng.uniform(*sat), rng.uniform(*style["val"]))
        self.marker = np.array([rng.uniform(0.2, 0.45), rng.uniform(-0.35, 0.35)])  # asymmetric spot
        self.two_tone = rng.random() < 0.5
        self.stripes = rng.random() < style["stripes"]

    def draw(self, img, cx, cy, angle, radius):
        c, s = math.cos(angle), math.sin(angle)
        rot = np.array([[c, -s], [s, c]])
        pts = self.poly @ rot.T * radius + (cx, cy)
        fixed = np.round(pts * 16).astype(np.int32)  # 4 fractional bits: smooth sub-pixel motion
        cv2.fillPoly(img, [fixed], self.color, cv2.LINE_AA, shift=4)
        if self.two_tone:  # colour the half of the shape on one side of its local x axis
            half = self.poly[self.poly[:, 1] >= 0]
            if len(half) >= 3:
                hp = np.round((half @ rot.T * radius + (cx, cy)) * 16).astype(np.int32)
                cv2.fillPoly(img, [hp], self.color2, cv2.LINE_AA, shift=4)
        if self.stripes:
            for k in (-0.4, 0.0, 0.4):
                a = np.array([k, -0.6]) @ rot.T * radius + (cx, cy)
                b = np.array([k, 0.6]) @ rot.T * radius + (cx, cy)
                cv2.line(img, tuple(np.round(a * 16).astype(int)), tuple(np.round(b * 16).astype(int)),
                         self.color2, 1, cv2.LINE_AA, shift=4)
        cv2.polylines(img, [fixed], True, (20, 20, 20), 1, cv2.LINE_AA, shift=4)
        m = self.marker @ rot.T * radius + (cx, cy)
        cv2.circle(img, tuple(np.round(m * 16).astype(int)), int(round(0.28 * radius * 16)),
                   self.color2 if not self.two_tone else (245, 245, 245), -1, cv2.LINE_AA, shift=4)


def _progress(rng, T, difficulty):
    """Time warp: progress 0 -> 1 over T frames with jittered speed (always moving forward)."""
    steps = np.exp(rng.normal(0.0, 0.35 * difficulty, size=T - 1))
    return np.concatenate([[0.0], np.cumsum(steps) / steps.sum()])


def _trajectory(motion, rng, S, T, p, r, speed, difficulty):
    """Per-frame centre x, y, angle and radius of the main object for one motion class."""
    m = 0.7 * r  # keep most of the object inside the frame
    a0 = rng.uniform(0, 2 * np.pi)
    angle = a0 + np.deg2rad(rng.uniform(-20, 20) * difficulty) * p  # nuisance spin, all classes
    radius = np.full(T, r)

    def linear(dx, dy):
        # Travel 35-55 % of the frame along (dx, dy), with a small sideways wobble so the path
        # is not exactly axis-aligned; start anywhere the whole path stays inside the frame.
        d = min(rng.uniform(0.35, 0.55) * S * speed, S - 2 * m - 1)
        wob = rng.uniform(-0.08, 0.08) * S
        xs = (dx * d + wob * abs(dy)) * p
        ys = (dy * d + wob * abs(dx)) * p
        x0 = rng.uniform(m - xs.min(), S - m - xs.max())
        y0 = rng.uniform(m - ys.min(), S - m - ys.max())
        return x0 + xs, y0 + ys

    def drift():
        # Slow wandering for the classes that do not translate, so "moving or not" is no cue.
        d = rng.uniform(0, 0.12) * S
        phi = rng.uniform(0, 2 * np.pi)
        xs, ys = d * np.cos(phi) * p, d * np.sin(phi) * p
        x0 = rng.uniform(m + 0.5 * r - min(xs.min(), 0), S - m - 0.5 * r - max(xs.max(), 0))
        y0 = rng.uniform(m + 0.5 * r - min(ys.min(), 0), S - m - 0.5 * r - max(ys.max(), 0))
        return x0 + xs, y0 + ys

    def there_and_back(sign, axis):
        f = rng.uniform(0.35, 0.65)
        d1 = rng.uniform(0.28, 0.45) * S * speed
        d2 = d1 * rng.uniform(0.7, 1.1)
        off = np.where(p < f, d1 * p / f, d1 - d2 * (p - f) / (1 - f)) * sign
        span = off.max() - off.min()
        scale = min(1.0, (S - 2 * m - 1) / span)
        off = off * scale
        lo, hi = m - off.min(), S - m - off.max()
        main = rng.uniform(lo, hi) + off
        cross = rng.uniform(m, S - m) + rng.uniform(-0.06, 0.06) * S * p
        return (main, cross) if axis == 0 else (cross, main)

    if motion == "MoveLeft":
        x, y = linear(-1, 0)
    elif motion == "MoveRight":
        x, y = linear(1, 0)
    elif motion == "MoveUp":
        x, y = linear(0, -1)
    elif motion == "MoveDown":
        x, y = linear(0, 1)
    elif motion in ("RotateClockwise", "RotateCounterClockwise"):
        turn = np.deg2rad(rng.uniform(150, 300) * speed)
        angle = a0 + (1 if motion == "RotateClockwise" else -1) * turn * p
        x, y = drift()
    elif motion in ("Grow", "Shrink"):
        # Sizes straddle the base radius geometrically, so grow and shrink share one
        # single-frame size distribution: only the order of sizes differs.
        ratio = rng.uniform(1.8, 2.6)
        expo = p - 0.5 if motion == "Grow" else 0.5 - p
        radius = r * ratio**expo
        x, y = drift()
    elif motion == "LeftThenRight":
        x, y = there_and_back(-1, 0)
    elif motion == "RightThenLeft":
        x, y = there_and_back(1, 0)
    elif motion == "UpThenDown":
        x, y = there_and_back(-1, 1)
    elif motion == "DownThenUp":
        x, y = there_and_back(1, 1)
    else:
        raise ValueError(f"unknown motion {motion!r}; valid: {sorted(MOTIONS)}")
    return x, y, angle, radius


def render_video(motion: str, rng: np.random.Generator, *, frames: int = 16, size: int = 64,
                 difficulty: float = 1.0, domain: str = "target") -> np.ndarray:
    """One video of ``motion`` -> uint8 RGB (T, S, S, 3) with T=frames, S=size.

    ``difficulty`` (0 = clean, 0.6 = the generated default, 1 = quick mode's, 2 = hard) scales pixel noise, clutter, the number of
    distractors, the chance of an occluding band, and speed jitter.
    """
    if domain not in STYLES:
        raise ValueError(f"unknown domain {domain!r}; valid: {sorted(STYLES)}")
    style, S, T, d = STYLES[domain], size, frames, float(difficulty)
    # Appearance first: identical draws for every class.
    bg = _background(rng, S, style, d)
    sprite = _Sprite(rng, style)
    r = rng.uniform(7, 11) * S / 64
    n_distract = min(4, rng.poisson(1.5 * d))
    distractors = []
    for _ in range(n_distract):
        sp = _Sprite(rng, style, saturation=(30, 110))
        dr = r * rng.uniform(0.45, 0.65)
        x0, y0 = rng.uniform(0, S, 2)
        v = rng.uniform(0.1, 0.5) * S / T * np.array([np.cos(ph := rng.uniform(0, 2 * np.pi)), np.sin(ph)])
        spin = rng.uniform(-0.15, 0.15)
        distractors.append((sp, dr, x0, y0, v, rng.uniform(0, 2 * np.pi), spin))
    occluder = None
    if rng.random() < min(0.9, 0.4 * d):
        w = rng.uniform(0.07, 0.12) * S
        c = rng.uniform(0.25, 0.75) * S
        col = tuple(int(v) for v in np.clip(bg.mean(axis=(0, 1)) + rng.normal(0, 20, 3), 0, 255))
        occluder = (rng.random() < 0.5, c - w / 2, c + w / 2, col)
    # Then the motion.
    p = _progress(rng, T, d)
    x, y, angle, radius = _trajectory(motion, rng, S, T, p, r, style["speed"], d)
    noise_sigma, flicker = 7.0 * d, rng.normal(0, 4.0 * d, size=T)
    noise = rng.normal(0, 1, size=(T, S, S, 3)).astype(np.float32) * noise_sigma
    out = np.empty((T, S, S, 3), np.uint8)
    for t in range(T):
        img = bg.copy()
        for sp, dr, x0, y0, v, a, spin in distractors:
            sp.draw(img, x0 + v[0] * t, y0 + v[1] * t, a + spin * t, dr)
        sprite.draw(img, x[t], y[t], angle[t], radius[t])
        if occluder is not None:
            vertical, lo, hi, col = occluder
            if vertical:
                cv2.rectangle(img, (int(lo), 0), (int(hi), S - 1), col, -1)
            else:
                cv2.rectangle(img, (0, int(lo)), (S - 1, int(hi)), col, -1)
        out[t] = np.clip(img.astype(np.float32) + noise[t] + flicker[t], 0, 255).astype(np.uint8)
    return out
