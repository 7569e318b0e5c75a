"""Procedural brushed-metal surfaces with five defect classes: gedge's second built-in synthetic material.

It differs from the wood boards on purpose, so that defaults are not tuned to one material: grayscale, fine
brushing streaks along one direction instead of grain and rings, images of mixed sizes (from half the nominal
size to twice it along the brushing), and its own defects, one of them global:

* ``pits``: one to three small dark round pits with a pale rim;
* ``scratch``: a long thin straight or slightly bent line, brighter or darker than the surface;
* ``crack``: a jagged dark line;
* ``uneven``: a large soft region (a third to over half of the image) brighter or darker than the rest, a
  defect of a whole region that no tile sees as a local spot;
* ``smear``: a patch where the brushing texture is wiped out (blurred, slightly shifted in brightness).

Everything is vectorised numpy; every image comes from its own random stream (see :mod:`gedge.data.synth`).
"""

from __future__ import annotations

import numpy as np
from gedge.core.errors import ConfigError

DEFECT_CLASSES: tuple[str, ...] = ("pits", "scratch", "crack", "uneven", "smear")


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise with cells of about ``cell`` pixels: a random grid, smoothly interpolated (standard normal)."""
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    ys, xs = np.linspace(0, gh - 1.001, h), np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def surface_size(rng: np.random.Generator, size: int) -> tuple[int, int]:
    """Height and width of one image: mixed sizes around the nominal ``size``, longer along the brushing."""
    return int(round(size * rng.uniform(0.5, 1.1))), int(round(size * rng.uniform(0.6, 2.0)))


def render_surface(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A normal brushed-metal image (H, W, 1) uint8 of a size drawn around ``size``."""
    if size < 64 or size > 4096:
        raise ConfigError(f"metal image size must be 64 to 4096, got {size}")
    h, w = surface_size(rng, size)
    base = rng.uniform(95.0, 165.0)
    across = np.convolve(rng.standard_normal(h), np.ones(3) / 3, mode="same").astype(np.float32)
    streaks = across[:, None] * (0.7 + 0.3 * smooth_noise(rng, h, w, max(8.0, w / 6)))
    grain = smooth_noise(rng, h, w, 4.0) * 0.6 + rng.standard_normal((h, w)).astype(np.float32) * 0.8
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * rng.uniform(6.0, 18.0)
    light += smooth_noise(rng, h, w, max(h, w) / 2) * 4.0
    image = base + light + streaks * rng.uniform(4.0, 9.0) + grain * rng.uniform(2.0, 4.0)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)[..., None]


def _distance_to_ellipse(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float],
                         angle: float) -> np.ndarray:
    """Normalised distance to an ellipse's centre (1 on its outline)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    dy, dx = yy - centre[0], xx - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    return np.sqrt(((dx * c + dy * s) / radii[1]) ** 2 + ((-dx * s + dy * c) / radii[0]) ** 2)


def _polyline_distance(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Distance of every pixel to a polyline (points as (y, x) rows)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    nearest = np.full(shape, np.inf, dtype=np.float32)
    for p, q in zip(points[:-1], points[1:]):
        d = q - p
        t = np.clip(((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / max(float(d @ d), 1e-6), 0.0, 1.0)
        nearest = np.minimum(nearest, np.hypot(yy - p[0] - t * d[0], xx - p[1] - t * d[1]))
    return nearest


def _pits(out: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    mask = np.zeros(out.shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        r = rng.uniform(0.02, 0.05) * side + 1.5
        d = _distance_to_ellipse(out.shape, (rng.uniform(r, out.shape[0] - r), rng.uniform(r, out.shape[1] - r)),
                                 (r * rng.uniform(0.7, 1.3), r), rng.uniform(0, np.pi))
        out -= np.clip(1.3 - d, 0, 1) * rng.uniform(40, 80)
        out += np.clip(1 - np.abs(d - 1.15) * 4, 0, 1) * rng.uniform(10, 25)
        mask |= d < 1.2
    return mask


def _scratch(out: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    h, w = out.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y0, x0 = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    a, length = rng.uniform(0, np.pi), rng.uniform(0.3, 0.7) * max(h, w)
    along = (yy - y0) * np.sin(a) + (xx - x0) * np.cos(a)
    across = -(yy - y0) * np.cos(a) + (xx - x0) * np.sin(a) - 0.0015 * along * along * rng.uniform(-1, 1)
    profile = np.clip(1 - np.abs(across) / rng.uniform(0.8, 2.0), 0, 1) * (np.abs(along) < length / 2)
    out += profile * rng.choice([-1.0, 1.0]) * rng.uniform(35, 60)
    return profile > 0.05


def _crack(out: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    h, w = out.shape
    points = [np.array([rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w])]
    angle, step = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.05) * side
    for _ in range(12):
        angle += rng.normal(0, 0.6)
        points.append(np.clip(points[-1] + step * np.array([np.sin(angle), np.cos(angle)]), 1, [h - 2, w - 2]))
    distance = _polyline_distance(out.shape, np.array(points))
    out -= np.clip(1.6 - distance, 0, 1) * rng.uniform(50, 90)
    return distance < 1.5


def _uneven(out: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    r = rng.uniform(0.35, 0.6) * side
    d = _distance_to_ellipse(out.shape, (rng.uniform(0.3, 0.7) * out.shape[0], rng.uniform(0.3, 0.7) * out.shape[1]),
                             (r * rng.uniform(0.6, 1.4), r), rng.uniform(0, np.pi))
    out += np.clip((1.1 - d) / 0.4, 0, 1) * rng.choice([-1.0, 1.0]) * rng.uniform(18, 35)
    return d < 0.9


def _smear(out: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    h, w = out.shape
    r = rng.uniform(0.08, 0.18) * side
    d = _distance_to_ellipse(out.shape, (rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w),
                             (r * rng.uniform(0.5, 1.5), r), rng.uniform(0, np.pi))
    k = 7
    padded = np.pad(out, k, mode="edge")
    blurred = sum(padded[k + dy:k + dy + h, k + dx:k + dx + w] for dy in range(-k, k + 1, 2)
                  for dx in range(-k, k + 1, 2)) / ((k + 1) ** 2)
    alpha = np.clip((1.2 - d) / 0.4, 0, 1)
    out[:] = out * (1 - alpha) + (blurred + rng.uniform(-10, 10)) * alpha
    return d < 1.0


_PAINTERS = {"pits": _pits, "scratch": _scratch, "crack": _crack, "uneven": _uneven, "smear": _smear}


def add_metal_defect(image: np.ndarray, defect_class: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``image`` (H, W, 1) with one defect of ``defect_class`` and its mask (H, W) uint8 0/255."""
    if defect_class not in _PAINTERS:
        raise ConfigError(f"unknown metal defect class {defect_class!r}; expected one of {', '.join(DEFECT_CLASSES)}")
    out = image[..., 0].astype(np.float32)
    mask = _PAINTERS[defect_class](out, rng, min(out.shape))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)[..., None], mask.astype(np.uint8) * 255
