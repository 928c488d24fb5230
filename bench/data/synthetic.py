"""The embedded synthetic eye dataset: procedurally drawn infrared-like eye regions.

Nothing is downloaded; the images are drawn with OpenCV from a seed, so the same call always gives
the same bytes. Each image shows one eye with its brow, as a head-mounted infrared camera sees it.

What carries the emotion (scaled by a per-frame intensity):
    upper-lid aperture, lower-lid raise (squint), brow height, inner/outer brow raise, brow arch,
    and wrinkles: crow's feet, lower-lid bulge, glabellar lines, forehead lines, nose lines.
What carries the identity (fixed per subject): eye size, shape and tilt, resting aperture, brow
    position, thickness and slant, skin and iris tone, resting wrinkles (age), expressiveness,
    left or right eye, and a personal style that perturbs every emotion's expression.
What varies per frame, smoothly along a sequence: expression onset (the first frames of a sequence
    are weak, as in real recordings), gaze, blinks, headset slip (shift, rotation, scale),
    illumination, focus blur and sensor noise.

Every subject has one sequence per emotion (``frames`` frames; 50 subjects x 36 frames by default).
Each expression's onset takes 3-5 frames whatever the sequence length, as in a recording at about
10 frames per second, and is followed by a held expression, so that frame skipping has something
to skip. More identities, rather than more frames of the same ones, are what make the task
learnable from a 40 % training split; the quick preset trains on 12 frames of each sequence.

Identity differences are as large as some expression differences (a subject with narrow eyes and
low brows looks angry at rest), weak onsets overlap with neutral, and anger/disgust and
fear/surprise share features, so a small CNN neither stays at chance nor reaches 100 %;
per-subject calibration helps, as on real data.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from ..classes import CLASSES_7, class_set
from .registry import Listing, register_dataset

WIDTH, HEIGHT = 128, 96  # native size, 4:3 like REED's 640x480 frames

# Expression deltas at full intensity. up/low: relative change of the upper aperture / raise of
# the lower lid; bh/bin/bout/arch: brow height, inner-end, outer-end and arch offsets in pixels
# (positive = up); the rest are wrinkle strengths in [0, 1].
_KEYS = ("up", "low", "bh", "bin", "bout", "arch", "crow", "bulge", "glab", "fore", "nose")
EXPRESSIONS = {
    "neutral": dict(),
    "happiness": dict(up=-0.30, low=0.55, bh=-2, bout=-1, crow=1.0, bulge=0.9),
    "surprise": dict(up=0.55, low=-0.15, bh=9, bin=2, bout=2, arch=3, fore=1.0),
    "anger": dict(up=-0.15, low=0.35, bh=-7, bin=-6, bout=1, arch=-2, glab=1.0),
    "disgust": dict(up=-0.35, low=0.45, bh=-5, bin=-3, bout=-1, glab=0.6, bulge=0.6, nose=1.0),
    "fear": dict(up=0.45, low=0.25, bh=5, bin=6, bout=-1, arch=-3, fore=0.6),
    "sadness": dict(up=-0.25, low=0.05, bh=1, bin=6, bout=-4, arch=-1),
}


def _vector(expr: dict) -> np.ndarray:
    return np.array([expr.get(k, 0.0) for k in _KEYS], dtype=np.float64)


def _identity(rng: np.random.Generator) -> dict:
    ident = dict(
        mirror=bool(rng.random() < 0.5),
        cx=WIDTH / 2 + rng.uniform(-5, 5), cy=HEIGHT * 0.58 + rng.uniform(-4, 4),
        hw=rng.uniform(30, 38), up=rng.uniform(8, 15), low=rng.uniform(3.5, 7),
        tilt=rng.uniform(-0.12, 0.12), brow=rng.uniform(22, 31), brow_w=rng.uniform(3, 7),
        brow_slant=rng.uniform(-4, 4), brow_arch=rng.uniform(2, 7),
        skin=rng.uniform(120, 185), sclera=rng.uniform(25, 55), iris=rng.uniform(35, 100),
        crease=rng.uniform(0.3, 1.0), age=rng.uniform(0.0, 0.45),
        expressive=rng.uniform(0.55, 1.0), texture=rng.normal(0, 1, (6, 8)).astype(np.float32),
        style={e: rng.normal(1.0, 0.25, len(_KEYS)) for e in EXPRESSIONS},
        style_shift={e: rng.normal(0.0, 0.08, len(_KEYS)) for e in EXPRESSIONS},
    )
    texture = cv2.resize(ident["texture"], (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    shading = -0.25 * (np.arange(HEIGHT, dtype=np.float32)[:, None] - HEIGHT / 2)
    ident["background"] = (ident["skin"] + 8 * texture + shading).astype(np.float32)
    return ident


def _smooth_walk(rng, n, scale, smooth=0.8):
    """A smooth random walk of length ``n`` (AR(1) noise, then clipped) for frame-to-frame drift."""
    out, v = np.empty(n), rng.normal(0, scale)
    for i in range(n):
        v = smooth * v + (1 - smooth) * rng.normal(0, scale * 2)
        out[i] = v
    return np.clip(out, -2 * scale, 2 * scale)


def _sequence(ident: dict, emotion: str, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    expr = _vector(EXPRESSIONS[emotion]) * ident["style"][emotion] + (
        ident["style_shift"][emotion] if emotion != "neutral" else 0.0)
    apex = ident["expressive"] * rng.uniform(0.85, 1.1)
    ramp = max(2, int(12 * rng.uniform(0.25, 0.5)))  # onset of 3-5 frames, as at ~10 fps
    t = np.clip(np.arange(frames) / ramp, 0, 1)
    intensity = (rng.uniform(0.0, 0.3) + (apex - 0.15) * t * t * (3 - 2 * t)) if emotion != "neutral" \
        else np.zeros(frames)
    intensity = np.clip(intensity + _smooth_walk(rng, frames, 0.03), 0, 1.2)
    blink = np.ones(frames)
    if rng.random() < 0.35:
        b = rng.integers(0, frames)
        blink[b] = 0.12
        blink[max(b - 1, 0)] = min(blink[max(b - 1, 0)], 0.6)
        blink[min(b + 1, frames - 1)] = min(blink[min(b + 1, frames - 1)], 0.6)
    gaze_x, gaze_y = _smooth_walk(rng, frames, 5), _smooth_walk(rng, frames, 1.2)
    shift = rng.normal(0, 3, 2)
    dx, dy = shift[0] + _smooth_walk(rng, frames, 1.5), shift[1] + _smooth_walk(rng, frames, 1.5)
    rot = rng.normal(0, 2) + _smooth_walk(rng, frames, 0.8)
    scale = 1 + rng.normal(0, 0.03) + _smooth_walk(rng, frames, 0.01)
    gain = rng.uniform(0.85, 1.15)
    blur = rng.uniform(0.3, 1.3)
    noise = rng.uniform(3, 8)
    images = []
    for i in range(frames):
        canvas = _draw(ident, expr * intensity[i], blink[i], gaze_x[i], gaze_y[i])
        m = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), rot[i], scale[i])
        m[:, 2] += (dx[i], dy[i])
        canvas = cv2.warpAffine(canvas, m, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
        canvas = cv2.GaussianBlur(canvas * gain, (0, 0), blur)
        canvas += rng.normal(0, noise, canvas.shape).astype(np.float32)
        image = np.clip(canvas, 0, 255).astype(np.uint8)
        images.append(image[:, ::-1].copy() if ident["mirror"] else image)
    return images


def _poly(xs, ys):
    return np.round(np.stack([xs, ys], axis=1) * 16).astype(np.int32).reshape(-1, 1, 2)


def _line(img, xs, ys, depth, thickness):
    """Darken ``img`` along a poly-line (anti-aliased, sub-pixel)."""
    if depth > 0.5:
        cv2.polylines(img, [_poly(xs, ys)], False, float(depth), max(1, int(round(thickness))),
                      cv2.LINE_AA, shift=4)


def _draw(ident: dict, d: np.ndarray, blink: float, gaze_x: float, gaze_y: float) -> np.ndarray:
    e = dict(zip(_KEYS, d))
    cx, cy, hw = ident["cx"], ident["cy"], ident["hw"]
    img = ident["background"].copy()
    ink = np.zeros((HEIGHT, WIDTH), np.float32)

    t = np.linspace(0, 1, 40)
    x = cx - hw + 2 * hw * t
    corner = cy + ident["tilt"] * (x - cx)
    a_up = max(ident["up"] * (1 + e["up"]) * blink, 0.6)
    a_low = max(ident["low"] * (1 - e["low"]) * (0.5 + 0.5 * blink), 0.4)
    upper = corner - a_up * np.sin(np.pi * t) ** 0.8
    lower = corner + a_low * np.sin(np.pi * t)

    # brow: inner end (t=0) near the nose, outer end (t=1) at the temple
    bt = np.linspace(0, 1, 30)
    bx = cx - 1.15 * hw + 2.4 * hw * bt
    by = (cy - ident["brow"] - e["bh"] - e["bin"] * (1 - bt) - e["bout"] * bt
          - (ident["brow_arch"] + e["arch"]) * np.sin(np.pi * bt) + ident["brow_slant"] * (bt - 0.5))
    _line(ink, bx, by, 75, ident["brow_w"])

    # upper-lid crease, closer to the lid when the eye narrows
    gap = 4 + 0.35 * a_up
    _line(ink, x[4:-4], upper[4:-4] - gap, 30 * ident["crease"], 1.5)

    # wrinkles, strength = expression + resting (age) lines
    age = ident["age"]
    crow = max(e["crow"], 0) + 0.5 * age
    ox, oy = cx + hw + 3, cy + ident["tilt"] * hw
    for ang in (-0.45, 0.0, 0.45):
        _line(ink, np.array([ox, ox + 11 * np.cos(ang)]), np.array([oy, oy + 11 * np.sin(ang)]),
              45 * crow, 1)
    _line(ink, x[6:-6], lower[6:-6] + 5, 40 * (max(e["bulge"], 0) + 0.3 * age), 1.5)
    gx = cx - 1.2 * hw
    for off in (-3, 3):
        _line(ink, np.array([gx + off, gx + off * 1.3]), np.array([by[0] - 6, by[0] + 8]),
              50 * max(e["glab"], 0), 1)
    for k in (1, 2):
        fx = np.linspace(cx - hw, cx + hw, 20)
        _line(ink, fx, by.min() - 6 * k - 1.5 * np.sin(fx / 7),
              40 * (max(e["fore"], 0) + 0.3 * age), 1)
    nx, ny = cx - hw - 2, cy + 4
    for off in (0, 5):
        _line(ink, np.array([nx - 2, nx - 8]), np.array([ny + off, ny + off + 8]),
              45 * max(e["nose"], 0), 1)
    img = img - ink

    # eye opening: sclera, iris, pupil, infrared glints, lashes
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    outline = _poly(np.concatenate([x, x[::-1]]), np.concatenate([upper, lower[::-1]]))
    cv2.fillPoly(mask, [outline], 255, cv2.LINE_AA, shift=4)
    eye = np.full((HEIGHT, WIDTH), ident["skin"] + ident["sclera"], np.float32)
    ix, iy, r = cx + gaze_x, cy + gaze_y - 0.5, 0.38 * hw
    cv2.circle(eye, (int(ix * 16), int(iy * 16)), int(r * 16), float(ident["iris"]), -1,
               cv2.LINE_AA, shift=4)
    cv2.circle(eye, (int(ix * 16), int(iy * 16)), int(0.45 * r * 16), 15.0, -1, cv2.LINE_AA, shift=4)
    for gx_, gy_ in ((-0.3, -0.3), (0.25, -0.35)):
        cv2.circle(eye, (int((ix + gx_ * r) * 16), int((iy + gy_ * r) * 16)), 24, 250.0, -1,
                   cv2.LINE_AA, shift=4)
    alpha = mask.astype(np.float32) / 255.0
    img = img * (1 - alpha) + eye * alpha
    lashes = np.zeros_like(ink)
    _line(lashes, x, upper, ident["skin"] * 0.7, 2.5)
    _line(lashes, x[3:-3], lower[3:-3], ident["skin"] * 0.25, 1)
    return (img - lashes).astype(np.float32)


def generate(n_subjects: int = 50, frames: int = 36, seed: int = 0,
             emotions=CLASSES_7) -> pd.DataFrame:
    """Draw the dataset; one row per frame with the image in ``source``.

    Each (subject, emotion) sequence has its own random stream, so a subset of emotions gives the
    same images as the full set.
    """
    rows = []
    for s in range(n_subjects):
        ident = _identity(np.random.default_rng([seed, s, 7919]))
        subject = f"s{s:02d}"
        for emotion in emotions:
            rng = np.random.default_rng([seed, s, CLASSES_7.index(emotion)])
            for f, image in enumerate(_sequence(ident, emotion, frames, rng)):
                rows.append((image, emotion, subject, f"{subject}/{emotion}", f))
    return pd.DataFrame(rows, columns=["source", "label", "subject", "sequence", "frame"])


@register_dataset("synthetic", description="embedded synthetic infrared eye regions, generated "
                  "from a seed (50 subjects x 36-frame sequences by default)",
                  layout="(generated, no files)", needs_root=False)
def list_synthetic(root=None, classes=4, n_subjects=50, frames=36, seed=0) -> Listing:
    return Listing(generate(n_subjects, frames, seed, class_set(classes)), lambda image: image)
