"""Defects painted onto synthetic wood boards: the five classes of the seed paper's wood data set.

``chalk`` (pale smudges), ``holes`` (small dark pits), ``black`` (dark stains and streaks), ``knots`` (brown
ellipses with rings and bent grain) and ``others`` (cracks, resin pockets, scratches). Each painter draws one
defect at a random place inside a small window of the image and returns its mask; :func:`add_defect` keeps
every pixel outside that mask exactly as it was, so the mask is the exact ground truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gedge.core.errors import ConfigError
from gedge.data.noise import smoothstep, value_noise
from gedge.data.wood_board import MIN_SIZE

DEFECT_CLASSES: tuple[str, ...] = ("chalk", "holes", "black", "knots", "others")


def _local_noise(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, cells: int) -> np.ndarray:
    """Value noise over a defect window with about `cells` lattice cells across it."""
    span = max(float(yy.max() - yy.min()), float(xx.max() - xx.min()), 1.0)
    grid = cells + 2
    return value_noise(rng, grid, grid, (yy - yy.min()) / span * cells, (xx - xx.min()) / span * cells)


@dataclass(frozen=True)
class _Window:
    """A rectangular patch of the image with pixel-centre coordinates."""

    rows: slice
    cols: slice
    yy: np.ndarray
    xx: np.ndarray


def _window(shape: tuple[int, int], cy: float, cx: float, radius: float) -> _Window:
    """The patch of an image of `shape` within `radius` of (cy, cx)."""
    h, w = shape
    y0, y1 = max(int(np.floor(cy - radius)) - 1, 0), min(int(np.ceil(cy + radius)) + 2, h)
    x0, x1 = max(int(np.floor(cx - radius)) - 1, 0), min(int(np.ceil(cx + radius)) + 2, w)
    yy, xx = np.meshgrid(np.arange(y0, y1, dtype=np.float64), np.arange(x0, x1, dtype=np.float64), indexing="ij")
    return _Window(slice(y0, y1), slice(x0, x1), yy, xx)


def _place(rng: np.random.Generator, shape: tuple[int, int], radius: float) -> tuple[float, float]:
    """A random centre such that a disc of `radius` lies fully inside the image with a margin."""
    margin = radius + 3.0
    h, w = shape
    return rng.uniform(margin, h - 1 - margin), rng.uniform(margin, w - 1 - margin)


def _wobble(rng: np.random.Generator, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Random angular harmonics (amplitudes, phases) for an irregular outline."""
    amplitudes = rng.uniform(0.0, amount, 4) / np.arange(1, 5)
    return amplitudes, rng.uniform(0.0, 2.0 * np.pi, 4)


def _ellipse(
    win: _Window, centre: tuple[float, float], radii: tuple[float, float], angle: float,
    wobble: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised radius (1 on the irregular outline), along-axis and across-axis offsets.

    ``centre`` is (cy, cx), ``radii`` (ry along the axis, rx across it); ``angle`` turns the axis from vertical.
    """
    (cy, cx), (ry, rx) = centre, radii
    dy = win.yy - cy
    dx = win.xx - cx
    c, s = np.cos(angle), np.sin(angle)
    across = dx * c + dy * s
    along = -dx * s + dy * c
    theta = np.arctan2(along / ry, across / rx)
    amplitudes, phases = wobble
    edge = 1.0 + sum(a * np.sin((k + 2) * theta + p) for k, (a, p) in enumerate(zip(amplitudes, phases, strict=True)))
    return np.sqrt((across / rx) ** 2 + (along / ry) ** 2) / edge, along, across


def _polyline_distance(win: _Window, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each pixel to a polyline of (y, x) points, and the arc position (0..1) of the nearest point."""
    best = np.full(win.yy.shape, np.inf)
    position = np.zeros(win.yy.shape)
    n_seg = len(points) - 1
    for i in range(n_seg):  # loop over a handful of segments, not pixels
        (ay, ax), (by, bx) = points[i], points[i + 1]
        vy, vx = by - ay, bx - ax
        t = np.clip(((win.yy - ay) * vy + (win.xx - ax) * vx) / max(vy * vy + vx * vx, 1e-9), 0.0, 1.0)
        d = np.hypot(win.yy - (ay + t * vy), win.xx - (ax + t * vx))
        closer = d < best
        best = np.where(closer, d, best)
        position = np.where(closer, (i + t) / n_seg, position)
    return best, position


def _jagged_line(rng: np.random.Generator, length: float, angle: float, jag: float, n_points: int) -> np.ndarray:
    """Points (y, x) of a jagged line centred on the origin, `angle` radians from vertical."""
    along = np.linspace(-length / 2.0, length / 2.0, n_points)
    lateral = np.cumsum(rng.normal(0.0, jag, n_points))
    lateral -= np.linspace(lateral[0], lateral[-1], n_points)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([along * c - lateral * s, along * s + lateral * c], axis=1)


def _blend(patch: np.ndarray, region: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """In place: patch = patch * (1 - alpha) + colour * alpha inside `region`."""
    a = np.where(region, alpha, 0.0)[..., None]
    patch *= 1.0 - a
    patch += np.broadcast_to(colour, patch.shape) * a


def _paint_chalk(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pale whitish, desaturated smudge or streak, mostly along the grain."""
    side = min(out.shape[:2])
    ry = max(rng.uniform(0.035, 0.07) * side, 4.0)
    rx = max(ry * rng.uniform(0.35, 0.8), 2.5)
    wobble = _wobble(rng, 0.25)
    radius = ry * (1.0 + wobble[0].sum()) * 1.15 + 1.0
    cy, cx = _place(rng, out.shape[:2], radius)
    win = _window(out.shape[:2], cy, cx, radius)
    rho, _, _ = _ellipse(win, (cy, cx), (ry, rx), rng.normal(0.0, 0.35), wobble)
    rho = rho + 0.25 * (_local_noise(rng, win.yy, win.xx, 5) - 0.5)
    region = rho < 1.0
    patch = out[win.rows, win.cols]
    lum = patch.mean(axis=-1, keepdims=True)
    chalk = 0.8 * (np.array([242.0, 241.0, 236.0]) + rng.normal(0.0, 3.0)) + 0.2 * lum
    texture = 0.8 + 0.4 * _local_noise(rng, win.yy, win.xx, 7)
    alpha = np.clip(rng.uniform(0.6, 0.85) * (0.5 + 0.5 * smoothstep(1.0, 0.35, rho)) * texture, 0.0, 1.0)
    _blend(patch, region, chalk, alpha)
    return _full_mask(out, win, region)


def _paint_holes(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three small dark round pits with a darker core and a shaded rim."""
    side = min(out.shape[:2])
    n_holes = int(rng.choice([1, 1, 1, 2, 3]))
    r_main = max(rng.uniform(0.017, 0.035) * side * (1.0 if n_holes == 1 else 0.75), 3.0)
    spread = 0.0 if n_holes == 1 else 2.2 * r_main
    cy, cx = _place(rng, out.shape[:2], spread + 1.2 * r_main)
    mask = np.zeros(out.shape[:2], dtype=bool)
    for k in range(n_holes):
        r = r_main if k == 0 else r_main * rng.uniform(0.55, 0.9)
        ang = rng.uniform(0.0, 2.0 * np.pi)
        dist = 0.0 if k == 0 else rng.uniform(1.3, 2.2) * r_main
        hy, hx = cy + dist * np.sin(ang), cx + dist * np.cos(ang)
        win = _window(out.shape[:2], hy, hx, 1.2 * r)
        rx = r * rng.uniform(0.8, 1.0)
        rho, _, _ = _ellipse(win, (hy, hx), (r, rx), rng.uniform(0.0, np.pi), _wobble(rng, 0.08))
        region = rho < 1.0
        # Light from the top-left: the upper wall is in shadow, the core is darkest.
        shade = 0.12 * np.clip(-(win.yy - hy + win.xx - hx) / (r * 1.4), -1.0, 1.0)
        alpha = np.clip(0.6 + 0.33 * smoothstep(1.0, 0.25, rho) + shade, 0.0, 0.97)
        _blend(out[win.rows, win.cols], region, np.array([26.0, 19.0, 13.0]), alpha)
        mask |= _full_mask(out, win, region)
    return mask


def _paint_black(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark, almost black irregular stain or streak."""
    side = min(out.shape[:2])
    if rng.random() < 0.4:
        ry = max(rng.uniform(0.04, 0.065) * side, 5.0)
        rx = max(ry * rng.uniform(0.18, 0.4), 1.8)
        angle = rng.normal(0.0, 0.3)
    else:
        ry = max(rng.uniform(0.022, 0.05) * side, 3.5)
        rx = max(ry * rng.uniform(0.6, 1.0), 3.0)
        angle = rng.uniform(0.0, np.pi)
    wobble = _wobble(rng, 0.35)
    radius = ry * (1.0 + wobble[0].sum()) * 1.2 + 1.0
    cy, cx = _place(rng, out.shape[:2], radius)
    win = _window(out.shape[:2], cy, cx, radius)
    rho, _, _ = _ellipse(win, (cy, cx), (ry, rx), angle, wobble)
    rho = rho + 0.4 * (_local_noise(rng, win.yy, win.xx, 6) - 0.5)
    region = rho < 1.0
    colour = np.array([24.0, 21.0, 19.0]) * rng.uniform(0.7, 1.4)
    texture = 0.9 + 0.2 * _local_noise(rng, win.yy, win.xx, 8)
    alpha = np.clip(rng.uniform(0.72, 0.9) * (0.8 + 0.2 * smoothstep(1.0, 0.4, rho)) * texture, 0.0, 0.98)
    _blend(out[win.rows, win.cols], region, colour, alpha)
    return _full_mask(out, win, region)


def _paint_knots(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darker brown elliptical knot: concentric rings, dark border, grain bent and darkened around it."""
    side = min(out.shape[:2])
    ry = max(rng.uniform(0.035, 0.06) * side, 5.0)
    rx = max(ry * rng.uniform(0.55, 0.9), 3.5)
    halo = 1.3
    wobble = _wobble(rng, 0.1)
    radius = ry * halo * (1.0 + wobble[0].sum()) * 1.1 + 1.0
    cy, cx = _place(rng, out.shape[:2], radius)
    win = _window(out.shape[:2], cy, cx, radius)
    rho, _, _ = _ellipse(win, (cy, cx), (ry, rx), rng.normal(0.0, 0.15), wobble)
    rho = rho + 0.08 * (_local_noise(rng, win.yy, win.xx, 4) - 0.5)
    knot = rho < 1.0
    region = rho < halo
    board = out.reshape(-1, 3).mean(axis=0)
    # Halo: grain pushed sideways around the knot and darkened (gathered from the clean board).
    fall = smoothstep(halo + 0.08, 0.95, rho)
    src_x = np.clip(np.rint(win.xx - (win.xx - cx) * 0.45 * fall), 0, out.shape[1] - 1).astype(np.int64)
    src_y = win.yy.astype(np.int64)
    bent = out[src_y, src_x] * (1.0 - 0.3 * fall)[..., None]
    patch = out[win.rows, win.cols]
    patch[:] = np.where((region & ~knot)[..., None], bent, patch)
    # Knot body: brown with concentric rings, a dark border and a dark pith.
    n_rings = rng.uniform(2.5, 5.0)
    ring_noise = _local_noise(rng, win.yy, win.xx, 5)
    rings = 0.5 + 0.5 * np.cos(2.0 * np.pi * (rho * n_rings + 0.6 * ring_noise))
    light = board * np.array([0.66, 0.52, 0.38]) * rng.uniform(0.85, 1.1)
    dark = board * np.array([0.36, 0.26, 0.17])
    t = np.clip(0.45 * rings + 0.85 * smoothstep(0.72, 1.0, rho) + 0.5 * smoothstep(0.2, 0.0, rho), 0.0, 1.0)
    body = light * (1.0 - t[..., None]) + dark * t[..., None]
    body += rng.normal(0.0, 1.5, body.shape)
    patch[:] = np.where(knot[..., None], body, patch)
    return _full_mask(out, win, region)


def _paint_crack(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin dark jagged crack, mostly along the grain, tapering at both ends."""
    side = min(out.shape[:2])
    length = max(rng.uniform(0.07, 0.15) * side, 10.0)
    half_width = max(rng.uniform(0.8, 1.5) * side / 256.0, 0.8)
    points = _jagged_line(rng, length, rng.normal(0.0, 0.3), length * 0.035, 12)
    radius = float(np.abs(points).max()) * 1.42 + half_width + 1.0
    cy, cx = _place(rng, out.shape[:2], radius)
    win = _window(out.shape[:2], cy, cx, radius)
    dist, pos = _polyline_distance(win, points + np.array([cy, cx]))
    width = half_width * (0.55 + 0.75 * np.sin(np.pi * pos))
    region = dist < np.maximum(width, 0.75)
    alpha = np.clip(0.75 + 0.2 * (1.0 - dist / np.maximum(width, 0.75)), 0.0, 0.95)
    _blend(out[win.rows, win.cols], region, np.array([22.0, 16.0, 11.0]), alpha)
    return _full_mask(out, win, region)


def _paint_resin(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lens-shaped resin pocket along the grain: dark amber with a glossy highlight."""
    side = min(out.shape[:2])
    ry = max(rng.uniform(0.035, 0.06) * side, 5.0)
    rx = max(ry * rng.uniform(0.3, 0.45), 2.5)
    angle = rng.normal(0.0, 0.12)
    cy, cx = _place(rng, out.shape[:2], ry + 1.0)
    win = _window(out.shape[:2], cy, cx, ry + 1.0)
    _, along, across = _ellipse(win, (cy, cx), (ry, rx), angle, (np.zeros(4), np.zeros(4)))
    v = along / ry
    lens = np.abs(across) / (rx * np.clip(1.0 - v * v, 1e-6, None))
    region = (np.abs(v) < 1.0) & (lens < 1.0)
    amber = np.array([176.0, 98.0, 28.0]) * rng.uniform(0.85, 1.1)
    edge = np.array([92.0, 46.0, 14.0])
    t = smoothstep(0.65, 1.0, lens)[..., None]
    colour = amber * (1.0 - t) + edge * t
    gloss = np.exp(-(((across / rx) + 0.3) ** 2) / 0.02) * smoothstep(0.9, 0.3, np.abs(v))
    colour = colour + gloss[..., None] * (np.array([235.0, 190.0, 110.0]) - colour) * 0.7
    patch = out[win.rows, win.cols]
    patch[:] = np.where(region[..., None], 0.1 * patch + 0.9 * colour, patch)
    return _full_mask(out, win, region)


def _paint_scratch(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gouge across the grain: pale exposed fibre flanked by dark shadowed edges."""
    side = min(out.shape[:2])
    length = max(rng.uniform(0.08, 0.15) * side, 10.0)
    half_width = max(rng.uniform(1.4, 2.2) * side / 256.0, 1.2)
    angle = rng.uniform(0.55, np.pi - 0.55) * rng.choice([-1.0, 1.0])
    points = _jagged_line(rng, length, angle, length * 0.01, 6)
    radius = float(np.abs(points).max()) * 1.42 + half_width + 1.0
    cy, cx = _place(rng, out.shape[:2], radius)
    win = _window(out.shape[:2], cy, cx, radius)
    dist, pos = _polyline_distance(win, points + np.array([cy, cx]))
    width = half_width * (0.5 + 0.6 * np.sin(np.pi * pos))
    region = dist < np.maximum(width, 0.75)
    core = dist < 0.45 * width
    patch = out[win.rows, win.cols]
    _blend(patch, region & ~core, np.array([45.0, 32.0, 22.0]), np.full(dist.shape, 0.7))
    _blend(patch, core, np.array([248.0, 240.0, 222.0]), np.full(dist.shape, 0.75))
    return _full_mask(out, win, region)


def _paint_others(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crack (half of the time), resin pocket or scratch."""
    kind = rng.random()
    if kind < 0.5:
        return _paint_crack(out, rng)
    if kind < 0.75:
        return _paint_resin(out, rng)
    return _paint_scratch(out, rng)


def _full_mask(out: np.ndarray, win: _Window, region: np.ndarray) -> np.ndarray:
    """Image-sized boolean mask with `region` placed at the window."""
    mask = np.zeros(out.shape[:2], dtype=bool)
    mask[win.rows, win.cols] = region
    return mask


_PAINTERS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "chalk": _paint_chalk,
    "holes": _paint_holes,
    "black": _paint_black,
    "knots": _paint_knots,
    "others": _paint_others,
}


def add_defect(image: np.ndarray, defect_class: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Copy of `image` (H, W, 3 uint8) with one defect of `defect_class`, and its mask (H, W uint8 0/255).

    Pixels outside the mask are exactly those of the input.
    """
    if defect_class not in _PAINTERS:
        raise ConfigError(f"unknown defect class {defect_class!r}; expected one of {', '.join(DEFECT_CLASSES)}")
    clean = np.asarray(image)
    if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3 or min(clean.shape[:2]) < MIN_SIZE:
        raise ConfigError(
            f"add_defect needs an (H, W, 3) uint8 image of at least {MIN_SIZE} px, got {clean.dtype} {clean.shape}"
        )
    out = clean.astype(np.float64)
    mask = _PAINTERS[defect_class](out, rng)
    painted = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    result = np.where(mask[..., None], painted, clean)
    return result, mask.astype(np.uint8) * 255

