"""Procedural synthetic wood boards with five defect classes, written in the MVTec AD layout.

This is gedge's built-in default data set. Every image is drawn from its own random
stream derived from (seed, split, class, index), so image ``i`` is the same whatever
the total count. Everything is vectorised numpy; no per-pixel Python loops.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gedge.core.errors import ConfigError, DataError
from PIL import Image

DEFECT_CLASSES: tuple[str, ...] = ("chalk", "holes", "black", "knots", "others")


GENERATOR = "gedge.synth wood v1"


MANIFEST_NAME = "MANIFEST.txt"


_MANIFEST_MARKER = "gedge synthetic wood data set"


_SPLITS = ("train", "test")


_CLASSES = ("good", *DEFECT_CLASSES)


_LAYOUT_DIRS = ("train", "test", "ground_truth")


_MIN_SIZE = 64


_MAX_SIZE = 4096


ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthWoodConfig:
    """Size and counts of a synthetic wood data set; validated on creation."""

    size: int = 256
    n_train: int = 240
    n_test_good: int = 40
    n_test_per_defect: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        _check_size(self.size)
        _check_count("n_train", self.n_train, minimum=1)
        _check_count("n_test_good", self.n_test_good, minimum=0)
        _check_count("n_test_per_defect", self.n_test_per_defect, minimum=0)
        _check_count("seed", self.seed, minimum=0)
        if self.n_test == 0:
            raise ConfigError("synthetic data set needs at least one test image (n_test_good or n_test_per_defect)")

    @classmethod
    def default(cls, size: int = 256, seed: int = 0) -> SynthWoodConfig:
        """Small default set: 240 train, 40 test good, 8 per defect class (40 defective)."""
        return cls(size=size, n_train=240, n_test_good=40, n_test_per_defect=8, seed=seed)

    @classmethod
    def paper_size(cls, size: int = 256, seed: int = 0) -> SynthWoodConfig:
        """The seed paper's counts: 3,075 training normals, 740 test images (370 good + 74 per class)."""
        return cls(size=size, n_train=3075, n_test_good=370, n_test_per_defect=74, seed=seed)

    @property
    def n_test(self) -> int:
        """Number of test images, good and defective."""
        return self.n_test_good + self.n_test_per_defect * len(DEFECT_CLASSES)

    @property
    def n_images(self) -> int:
        """Number of images (masks not counted)."""
        return self.n_train + self.n_test

    def counts(self) -> dict[str, dict[str, int]]:
        """Image counts per split and class; classes with zero images are left out."""
        test = {"good": self.n_test_good} if self.n_test_good else {}
        if self.n_test_per_defect:
            test.update({name: self.n_test_per_defect for name in DEFECT_CLASSES})
        return {"train": {"good": self.n_train}, "test": test}


@dataclass(frozen=True)
class SynthWoodSummary:
    """What write_synthetic_wood wrote."""

    out_dir: Path
    counts: dict[str, dict[str, int]]
    seed: int
    size: int

    @property
    def n_images(self) -> int:
        """Number of images written (masks not counted)."""
        return sum(n for per_class in self.counts.values() for n in per_class.values())


def _check_size(size: object) -> None:
    if not isinstance(size, int) or isinstance(size, bool):
        raise ConfigError(f"synthetic image size must be an integer, got {size!r}")
    if size < _MIN_SIZE or size > _MAX_SIZE or size & (size - 1):
        raise ConfigError(f"synthetic image size must be a power of two from {_MIN_SIZE} to {_MAX_SIZE}, got {size}")


def _check_count(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def image_rng(seed: int, split: str, image_class: str, index: int) -> np.random.Generator:
    """Random stream of one image, derived from (seed, split, class, index) only."""
    if split not in _SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
    if image_class not in _CLASSES:
        raise ConfigError(f"unknown class {image_class!r}; expected one of {', '.join(_CLASSES)}")
    _check_count("seed", seed, minimum=0)
    _check_count("index", index, minimum=0)
    key = (_SPLITS.index(split), _CLASSES.index(image_class), index)
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def synth_sample(
    seed: int, split: str, image_class: str, index: int, size: int = 256
) -> tuple[np.ndarray, np.ndarray | None]:
    """One image (H, W, 3 uint8) and its mask (H, W uint8 0/255), or None for class 'good'."""
    rng = image_rng(seed, split, image_class, index)
    board = render_board(rng, size)
    if image_class == "good":
        return board, None
    return add_defect(board, image_class, rng)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at edge0 to 1 at edge1 (edges may be reversed)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _value_noise(rng: np.random.Generator, grid_h: int, grid_w: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Smooth periodic value noise in [0, 1] on a (grid_h, grid_w) lattice, sampled at lattice coords.

    `y` and `x` broadcast against each other (e.g. a column and a full grid).
    """
    grid = rng.random((grid_h, grid_w), dtype=np.float32).ravel()
    y_floor = np.floor(y)
    x_floor = np.floor(x)
    fy = y - y_floor
    fx = x - x_floor
    fy = fy * fy * (3.0 - 2.0 * fy)
    fx = fx * fx * (3.0 - 2.0 * fx)
    y0 = y_floor.astype(np.intp) % grid_h
    x0 = x_floor.astype(np.intp) % grid_w
    row0 = y0 * grid_w
    row1 = ((y0 + 1) % grid_h) * grid_w
    x1 = (x0 + 1) % grid_w
    a, b = np.take(grid, row0 + x0), np.take(grid, row0 + x1)
    top = a + (b - a) * fx
    c, d = np.take(grid, row1 + x0), np.take(grid, row1 + x1)
    bottom = c + (d - c) * fx
    return top + (bottom - top) * fy


def _lattice_weights(coords: np.ndarray, cells: int) -> np.ndarray:
    """(len(coords), cells) smoothstep interpolation weights onto a periodic 1-D lattice."""
    floor = np.floor(coords)
    t = coords - floor
    t = t * t * (3.0 - 2.0 * t)
    i0 = floor.astype(np.intp) % cells
    rows = np.arange(len(coords))
    weights = np.zeros((len(coords), cells), dtype=np.float32)
    np.add.at(weights, (rows, i0), 1.0 - t)
    np.add.at(weights, (rows, (i0 + 1) % cells), t)
    return weights


def _separable_noise(rng: np.random.Generator, grid_h: int, grid_w: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Same noise as _value_noise for 1-D row coords `y` and column coords `x`, as two small matrix products."""
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    return _lattice_weights(y, grid_h) @ grid @ _lattice_weights(x, grid_w).T


def _local_noise(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, cells: int) -> np.ndarray:
    """Value noise over a defect window with about `cells` lattice cells across it."""
    span = max(float(yy.max() - yy.min()), float(xx.max() - xx.min()), 1.0)
    grid = cells + 2
    return _value_noise(rng, grid, grid, (yy - yy.min()) / span * cells, (xx - xx.min()) / span * cells)


_PALETTE = np.array([[234.0, 214.0, 164.0], [214.0, 181.0, 133.0], [192.0, 152.0, 104.0]])


def _board_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Earlywood (base) and latewood (dark) colours of one board."""
    t = rng.random() * (len(_PALETTE) - 1)
    i = min(int(t), len(_PALETTE) - 2)
    base = _PALETTE[i] * (1.0 - (t - i)) + _PALETTE[i + 1] * (t - i)
    base = base + rng.normal(0.0, 2.5, 3) + rng.normal(0.0, 6.0)
    late = base * np.array([0.80, 0.70, 0.60]) * rng.uniform(0.92, 1.04)
    return base, late


def _grain(rng: np.random.Generator, yy: np.ndarray, gx: np.ndarray, size: int) -> np.ndarray:
    """Fine longitudinal grain: thin streaks, dark pores and medium bands, centred near 0."""
    fine = _value_noise(rng, 5, max(size // 2, 8), yy * 5, gx * max(size // 2, 8))
    pores = _smoothstep(0.6, 0.9, _value_noise(rng, 4, max(size // 2, 8), yy * 4, gx * max(size // 2, 8)))
    medium = _value_noise(rng, 3, max(size // 12, 4), yy * 3, gx * max(size // 12, 4))
    return 0.45 * (fine - 0.5) + 0.5 * pores + 0.55 * (medium - 0.5)


def _rings(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Latewood density in [0, 1] of a flat-sawn cut through a slightly tilted virtual log."""
    pith_x = rng.uniform(-0.5, 1.5)
    depth0 = rng.uniform(0.03, 0.45)
    tilt = rng.uniform(0.05, 0.6)
    along = yy if rng.random() < 0.5 else 1.0 - yy
    depth = depth0 + tilt * along
    radius = np.sqrt((gx - pith_x) ** 2 + depth**2)
    freq = rng.uniform(7.0, 18.0)
    # Year-to-year variation of ring width.
    cycle = 2.0 * np.pi * freq / rng.uniform(2.5, 5.0)
    irregular = rng.uniform(0.1, 0.4) * np.sin(cycle * radius + rng.uniform(0.0, 2.0 * np.pi))
    jitter = (_separable_noise(rng, 3, 6, yy[:, 0] * 3, xx[0] * 6) - 0.5) * rng.uniform(0.3, 0.9)
    phase = radius * freq + irregular + jitter
    frac = phase - np.floor(phase)
    # Earlywood darkens slowly into a latewood band, then drops sharply at the ring boundary.
    return frac ** rng.uniform(3.0, 7.0) * _smoothstep(1.0, 0.94, frac)


def _lighting(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Smooth multiplicative lighting: linear gradient plus off-centre vignette."""
    gy, gx = rng.uniform(-0.12, 0.12, 2)
    cy, cx = rng.uniform(0.3, 0.7, 2)
    vignette = rng.uniform(0.1, 0.45)
    light = 1.0 + gy * (yy - 0.5) + gx * (xx - 0.5) - vignette * ((yy - cy) ** 2 + (xx - cx) ** 2)
    return light * rng.uniform(0.97, 1.05)


def render_board(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A defect-free wood board, (size, size, 3) uint8 RGB, grain running top to bottom."""
    _check_size(size)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = coords[:, None], coords[None, :]  # column and row; fields broadcast to (size, size)
    base, late = (c.astype(np.float32) for c in _board_colours(rng))
    warp = (_separable_noise(rng, 3, 3, coords * 3, coords * 3) - 0.5) * rng.uniform(0.03, 0.08)
    wave = rng.uniform(0.003, 0.01) * np.sin(2.0 * np.pi * (rng.uniform(0.5, 2.0) * yy + rng.random()))
    gx = xx + warp + wave
    rings = _rings(rng, yy, xx, gx)
    grain = _grain(rng, yy, gx, size)
    blotch = _separable_noise(rng, 4, 4, coords * 4, coords * 4) - 0.5
    darkness = rng.uniform(0.45, 0.85) * rings + rng.uniform(0.3, 0.5) * grain + 0.25 * blotch
    darkness = np.clip(darkness, -0.15, 1.0)[..., None]
    rgb = base + (late - base) * darkness
    rgb *= _lighting(rng, yy, xx)[..., None]
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * rng.uniform(1.0, 2.5)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


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
    win: _Window, cy: float, cx: float, ry: float, rx: float, angle: float, wobble: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised radius (1 on the irregular outline), along-axis and across-axis offsets."""
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
    rho, _, _ = _ellipse(win, cy, cx, ry, rx, rng.normal(0.0, 0.35), wobble)
    rho = rho + 0.25 * (_local_noise(rng, win.yy, win.xx, 5) - 0.5)
    region = rho < 1.0
    patch = out[win.rows, win.cols]
    lum = patch.mean(axis=-1, keepdims=True)
    chalk = 0.8 * (np.array([242.0, 241.0, 236.0]) + rng.normal(0.0, 3.0)) + 0.2 * lum
    texture = 0.8 + 0.4 * _local_noise(rng, win.yy, win.xx, 7)
    alpha = np.clip(rng.uniform(0.6, 0.85) * (0.5 + 0.5 * _smoothstep(1.0, 0.35, rho)) * texture, 0.0, 1.0)
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
        rho, _, _ = _ellipse(win, hy, hx, r, rx, rng.uniform(0.0, np.pi), _wobble(rng, 0.08))
        region = rho < 1.0
        # Light from the top-left: the upper wall is in shadow, the core is darkest.
        shade = 0.12 * np.clip(-(win.yy - hy + win.xx - hx) / (r * 1.4), -1.0, 1.0)
        alpha = np.clip(0.6 + 0.33 * _smoothstep(1.0, 0.25, rho) + shade, 0.0, 0.97)
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
    rho, _, _ = _ellipse(win, cy, cx, ry, rx, angle, wobble)
    rho = rho + 0.4 * (_local_noise(rng, win.yy, win.xx, 6) - 0.5)
    region = rho < 1.0
    colour = np.array([24.0, 21.0, 19.0]) * rng.uniform(0.7, 1.4)
    texture = 0.9 + 0.2 * _local_noise(rng, win.yy, win.xx, 8)
    alpha = np.clip(rng.uniform(0.72, 0.9) * (0.8 + 0.2 * _smoothstep(1.0, 0.4, rho)) * texture, 0.0, 0.98)
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
    rho, _, _ = _ellipse(win, cy, cx, ry, rx, rng.normal(0.0, 0.15), wobble)
    rho = rho + 0.08 * (_local_noise(rng, win.yy, win.xx, 4) - 0.5)
    knot = rho < 1.0
    region = rho < halo
    board = out.reshape(-1, 3).mean(axis=0)
    # Halo: grain pushed sideways around the knot and darkened (gathered from the clean board).
    fall = _smoothstep(halo + 0.08, 0.95, rho)
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
    t = np.clip(0.45 * rings + 0.85 * _smoothstep(0.72, 1.0, rho) + 0.5 * _smoothstep(0.2, 0.0, rho), 0.0, 1.0)
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
    _, along, across = _ellipse(win, cy, cx, ry, rx, angle, (np.zeros(4), np.zeros(4)))
    v = along / ry
    lens = np.abs(across) / (rx * np.clip(1.0 - v * v, 1e-6, None))
    region = (np.abs(v) < 1.0) & (lens < 1.0)
    amber = np.array([176.0, 98.0, 28.0]) * rng.uniform(0.85, 1.1)
    edge = np.array([92.0, 46.0, 14.0])
    t = _smoothstep(0.65, 1.0, lens)[..., None]
    colour = amber * (1.0 - t) + edge * t
    gloss = np.exp(-(((across / rx) + 0.3) ** 2) / 0.02) * _smoothstep(0.9, 0.3, np.abs(v))
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
    if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3 or min(clean.shape[:2]) < _MIN_SIZE:
        raise ConfigError(
            f"add_defect needs an (H, W, 3) uint8 image of at least {_MIN_SIZE} px, got {clean.dtype} {clean.shape}"
        )
    out = clean.astype(np.float64)
    mask = _PAINTERS[defect_class](out, rng)
    painted = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    result = np.where(mask[..., None], painted, clean)
    return result, mask.astype(np.uint8) * 255


def _image_name(index: int, count: int) -> str:
    """MVTec-style zero-padded stem: 000, 001, ... (wider when count exceeds 1000)."""
    return f"{index:0{max(3, len(str(max(count - 1, 0))))}d}"


def _jobs(config: SynthWoodConfig) -> list[tuple[str, str, int, Path, Path | None]]:
    """(split, class, index, image path, mask path or None), relative to the output folder."""
    jobs: list[tuple[str, str, int, Path, Path | None]] = []
    for split, per_class in config.counts().items():
        for image_class, count in per_class.items():
            for index in range(count):
                stem = _image_name(index, count)
                image_path = Path(split, image_class, f"{stem}.png")
                mask_path = None if image_class == "good" else Path("ground_truth", image_class, f"{stem}_mask.png")
                jobs.append((split, image_class, index, image_path, mask_path))
    return jobs


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _png_bytes(array: np.ndarray) -> bytes:
    """Lossless PNG encoding of an RGB or single-channel uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _is_own_manifest(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().strip() == _MANIFEST_MARKER
    except (OSError, UnicodeDecodeError):
        return False


def _prepare_out_dir(root: Path) -> None:
    """Create `root`, or accept it if empty or a previous gedge synthetic set; refuse anything else."""
    if root.exists() and not root.is_dir():
        raise DataError("output path exists and is not a folder", path=root)
    if root.is_dir() and any(root.iterdir()) and not _is_own_manifest(root / MANIFEST_NAME):
        raise DataError(
            f"output folder is not empty and has no gedge {MANIFEST_NAME}; choose a new or empty folder", path=root
        )
    root.mkdir(parents=True, exist_ok=True)


def _prune_stale(root: Path, expected: set[Path]) -> None:
    """Remove PNGs and temp files of an earlier run that the current set does not contain (links not followed)."""
    for top in _LAYOUT_DIRS:
        if not (root / top).is_dir() or (root / top).is_symlink():
            continue
        for folder, _, names in os.walk(root / top, topdown=False):
            here = Path(folder)
            for name in names:
                path = here / name
                stale_png = name.endswith(".png") and path.relative_to(root) not in expected
                if (stale_png or name.endswith(".tmp")) and not path.is_symlink():
                    path.unlink()
            if not any(here.iterdir()):
                here.rmdir()


def _manifest_text(config: SynthWoodConfig, complete: bool) -> str:
    lines = [
        _MANIFEST_MARKER,
        "synthetic: yes - procedurally generated wood boards, not photographs",
        f"generator: {GENERATOR}",
        f"status: {'complete' if complete else 'incomplete (being written)'}",
        f"seed: {config.seed}",
        f"size: {config.size}x{config.size} RGB PNG",
        "layout: MVTec AD (train/good, test/<class>, ground_truth/<class>/<name>_mask.png, masks 0/255)",
        f"defect classes: {', '.join(DEFECT_CLASSES)}",
        "counts:",
    ]
    for split, per_class in config.counts().items():
        lines += [f"  {split}/{name}: {count}" for name, count in per_class.items()]
    lines.append(f"  total images: {config.n_images}")
    return "\n".join(lines) + "\n"


def write_synthetic_wood(
    out_dir: str | Path, config: SynthWoodConfig | None = None, progress: ProgressFn | None = None
) -> SynthWoodSummary:
    """Write a synthetic wood data set in the MVTec AD layout and return what was written.

    `out_dir` must be new, empty or an earlier output of this function (then it is
    brought up to date and stale images removed). `progress(done, total)` is called
    with done=0 first and after each image. MANIFEST.txt says 'status: complete' last.
    """
    config = SynthWoodConfig.default() if config is None else config
    if not isinstance(config, SynthWoodConfig):
        raise ConfigError(f"config must be a SynthWoodConfig, got {type(config).__name__}")
    root = Path(out_dir)
    _prepare_out_dir(root)
    _write_atomic(root / MANIFEST_NAME, _manifest_text(config, complete=False).encode("utf-8"))
    jobs = _jobs(config)
    if progress is not None:
        progress(0, len(jobs))
    for done, (split, image_class, index, image_path, mask_path) in enumerate(jobs, start=1):
        image, mask = synth_sample(config.seed, split, image_class, index, config.size)
        _write_atomic(root / image_path, _png_bytes(image))
        if mask_path is not None and mask is not None:
            _write_atomic(root / mask_path, _png_bytes(mask))
        if progress is not None:
            progress(done, len(jobs))
    expected = {p for job in jobs for p in (job[3], job[4]) if p is not None}
    _prune_stale(root, expected)
    _write_atomic(root / MANIFEST_NAME, _manifest_text(config, complete=True).encode("utf-8"))
    return SynthWoodSummary(out_dir=root, counts=config.counts(), seed=config.seed, size=config.size)
