"""Defect-free synthetic wood boards: colour, growth rings, grain, blotches and lighting, as one RGB image.

A board is a flat-sawn cut through a slightly tilted virtual log, with the grain running top to bottom. It is
drawn from the random generator passed in (:func:`gedge.data.synth.image_rng` gives each image its own), so the
same stream gives the same bytes. Defects are painted on top by :mod:`gedge.data.wood_defects`.
"""

from __future__ import annotations

import numpy as np
from gedge.core.errors import ConfigError
from gedge.data.noise import separable_noise, smoothstep, value_noise

MIN_SIZE = 64


MAX_SIZE = 4096


def check_board_size(size: object) -> None:
    """Refuse a board side that is not a power of two from MIN_SIZE to MAX_SIZE."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise ConfigError(f"synthetic image size must be an integer, got {size!r}")
    if size < MIN_SIZE or size > MAX_SIZE or size & (size - 1):
        raise ConfigError(f"synthetic image size must be a power of two from {MIN_SIZE} to {MAX_SIZE}, got {size}")


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
    fine = value_noise(rng, 5, max(size // 2, 8), yy * 5, gx * max(size // 2, 8))
    pores = smoothstep(0.6, 0.9, value_noise(rng, 4, max(size // 2, 8), yy * 4, gx * max(size // 2, 8)))
    medium = value_noise(rng, 3, max(size // 12, 4), yy * 3, gx * max(size // 12, 4))
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
    jitter = (separable_noise(rng, 3, 6, yy[:, 0] * 3, xx[0] * 6) - 0.5) * rng.uniform(0.3, 0.9)
    phase = radius * freq + irregular + jitter
    frac = phase - np.floor(phase)
    # Earlywood darkens slowly into a latewood band, then drops sharply at the ring boundary.
    return frac ** rng.uniform(3.0, 7.0) * smoothstep(1.0, 0.94, frac)


def _lighting(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Smooth multiplicative lighting: linear gradient plus off-centre vignette."""
    gy, gx = rng.uniform(-0.12, 0.12, 2)
    cy, cx = rng.uniform(0.3, 0.7, 2)
    vignette = rng.uniform(0.1, 0.45)
    light = 1.0 + gy * (yy - 0.5) + gx * (xx - 0.5) - vignette * ((yy - cy) ** 2 + (xx - cx) ** 2)
    return light * rng.uniform(0.97, 1.05)


def render_board(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A defect-free wood board, (size, size, 3) uint8 RGB, grain running top to bottom."""
    check_board_size(size)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = coords[:, None], coords[None, :]  # column and row; fields broadcast to (size, size)
    base, late = (c.astype(np.float32) for c in _board_colours(rng))
    warp = (separable_noise(rng, 3, 3, coords * 3, coords * 3) - 0.5) * rng.uniform(0.03, 0.08)
    wave = rng.uniform(0.003, 0.01) * np.sin(2.0 * np.pi * (rng.uniform(0.5, 2.0) * yy + rng.random()))
    gx = xx + warp + wave
    rings = _rings(rng, yy, xx, gx)
    grain = _grain(rng, yy, gx, size)
    blotch = separable_noise(rng, 4, 4, coords * 4, coords * 4) - 0.5
    darkness = rng.uniform(0.45, 0.85) * rings + rng.uniform(0.3, 0.5) * grain + 0.25 * blotch
    darkness = np.clip(darkness, -0.15, 1.0)[..., None]
    rgb = base + (late - base) * darkness
    rgb *= _lighting(rng, yy, xx)[..., None]
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * rng.uniform(1.0, 2.5)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

