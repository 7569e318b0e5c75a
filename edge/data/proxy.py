"""Proxy anomalies for honest model selection.

The validation split holds only normal images. To choose the checkpoint and the primary score without
touching the test set, gedge paints generic surface defects onto copies of the validation normals: dark
blobs (knots, holes, stains), thin dark or pale lines (cracks, scratches), pale smudges (chalk), cut-paste
patches moved from elsewhere on the same image, and blotches (a large soft region brighter or darker than the
rest: a defect of a whole area, which only a score that looks beyond a spot can see). They are not the test
defects; they only need to rank checkpoints and scores the way real defects would. Each kind favours other
scores (on the real wood boards dark blobs favour d3_local and lines d1_local), which is why fused scores are
candidates too.
"""

from __future__ import annotations

import numpy as np

KINDS = ("blob", "line", "smudge", "cutpaste", "blotch")


def _ellipse_mask(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float],
                  angle: float) -> np.ndarray:
    """Soft-edged ellipse of ``radii`` (ry, rx) at ``centre`` (cy, cx), turned by ``angle``: weights in [0, 1]."""
    (h, w), (cy, cx), (ry, rx) = shape, centre, radii
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u, v = (dx * c + dy * s) / rx, (-dx * s + dy * c) / ry
    return np.clip(1.5 - 1.5 * np.sqrt(u * u + v * v), 0.0, 1.0)  # soft edge


def _line_mask(h: int, w: int, rng: np.random.Generator, length: float, width: float) -> np.ndarray:
    """Soft-edged wavy line of ``length`` and ``width`` at a random place and angle: weights in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y0, x0 = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    angle = rng.uniform(0, np.pi)
    dy, dx = np.sin(angle), np.cos(angle)
    t = (yy - y0) * dy + (xx - x0) * dx
    d = np.abs(-(yy - y0) * dx + (xx - x0) * dy)
    wobble = 0.6 * width * np.sin(t / max(length, 1) * 7.0 + rng.uniform(0, 6.28))
    inside = np.abs(t) <= length / 2
    return np.clip(1.0 - np.abs(d - wobble) / width, 0.0, 1.0) * inside


def paint_proxy(image: np.ndarray, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A copy of ``image`` (uint8 HWC) with one generic defect, 4-14 % of the shorter side in size."""
    h, w = image.shape[:2]
    side = min(h, w)
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    out = image.astype(np.float32)
    mean_colour = out.reshape(-1, out.shape[2]).mean(axis=0)
    if kind == "cutpaste":
        p = max(2, int(rng.uniform(0.08, 0.18) * side))  # square, so any rotation fits back
        sy, sx = int(rng.integers(0, h - p)), int(rng.integers(0, w - p))
        ty, tx = int(rng.integers(0, h - p)), int(rng.integers(0, w - p))
        patch = np.rot90(out[sy:sy + p, sx:sx + p], k=int(rng.integers(1, 4)))
        out[ty:ty + p, tx:tx + p] = patch * rng.uniform(0.75, 1.25)
        return np.clip(out, 0, 255).astype(np.uint8)
    if kind == "blotch":  # a large soft region brighter or darker than the rest: a defect of an area, not a spot
        r = rng.uniform(0.2, 0.4) * side
        centre = (rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w)
        alpha = _ellipse_mask((h, w), centre, (r * rng.uniform(0.6, 1.4), r), rng.uniform(0, np.pi))[..., None]
        gain = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.3)
        return np.clip(out * (1 - alpha) + out * gain * alpha, 0, 255).astype(np.uint8)
    if kind == "line":
        alpha = _line_mask(h, w, rng, rng.uniform(0.1, 0.3) * side, rng.uniform(0.6, 1.5) * max(1, side / 128))
        target = mean_colour * rng.uniform(0.15, 0.45)
    else:
        r = rng.uniform(0.02, 0.07) * side
        centre = (rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w)
        radii = (r * rng.uniform(0.6, 1.6), r * rng.uniform(0.6, 1.6))
        alpha = _ellipse_mask((h, w), centre, radii, rng.uniform(0, np.pi))
        if kind == "blob":
            target = mean_colour * rng.uniform(0.2, 0.55)
        else:  # smudge: pale, desaturated
            target = np.full_like(mean_colour, min(255.0, mean_colour.max() * rng.uniform(1.1, 1.3)))
    alpha = alpha[..., None]
    out = out * (1 - alpha) + target * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def proxy_set(images: list[np.ndarray], per_image: int, seed: int) -> list[np.ndarray]:
    """``per_image`` proxy-anomalous copies of each image, cycling through the defect kinds."""
    rng = np.random.default_rng(seed)
    out = []
    for i, image in enumerate(images):
        for j in range(per_image):
            out.append(paint_proxy(image, rng, KINDS[(i * per_image + j) % len(KINDS)]))
    return out
