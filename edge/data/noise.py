"""Smooth periodic value noise and the Hermite step: the texture primitives of the synthetic wood generator.

The board renderer (:mod:`gedge.data.wood_board`) and the defect painters (:mod:`gedge.data.wood_defects`)
build grain, rings, blotches and defect outlines from these. Everything is vectorised numpy, and every random
draw comes from the generator passed in, so the same stream gives the same pixels.
"""

from __future__ import annotations

import numpy as np


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at edge0 to 1 at edge1 (edges may be reversed)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def value_noise(rng: np.random.Generator, grid_h: int, grid_w: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
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


def separable_noise(rng: np.random.Generator, grid_h: int, grid_w: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Same noise as value_noise for 1-D row coords `y` and column coords `x`, as two small matrix products."""
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    return _lattice_weights(y, grid_h) @ grid @ _lattice_weights(x, grid_w).T

