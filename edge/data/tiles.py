"""From images to network inputs and back: preprocessing, tiling, and scoring images through any backend.

:func:`prepare` applies a model's :class:`~gedge.core.preprocess.Preprocess` (resize, or scale for tiling);
:func:`network_inputs` cuts prepared images into uint8 NHWC inputs; :func:`score_images` scores them in
batches through a backend and takes each image's score as the maximum over its tiles. Training's validation,
fitting the decision rule, evaluation and parity all score images through :func:`score_images`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gedge.core.backend import Backend
from gedge.core.errors import DataError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import Scores, aggregate_max
from gedge.data.images import read_image, resize


def pad_to(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` grown to at least ``side`` x ``side`` by mirroring its edges (unchanged when big enough)."""
    h, w = image.shape[:2]
    extra_h, extra_w = max(0, side - h), max(0, side - w)
    if not extra_h and not extra_w:
        return image
    pads = ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2), (0, 0))
    mode = "symmetric" if extra_h <= h and extra_w <= w else "edge"
    return np.pad(image, pads, mode=mode)


def prepare(image: np.ndarray, pre: Preprocess, path: Path | None = None) -> np.ndarray:
    """Apply the model's preprocessing to one image: resize it (resize mode, checking its size against the
    training images' where they had one size), or scale it for tiling and pad it to one tile if smaller."""
    h, w = image.shape[:2]
    if pre.mode == "resize":
        if pre.source_size and (h, w) != tuple(pre.source_size):
            sh, sw = pre.source_size
            raise DataError(f"image is {w}x{h} but the model was trained on {sw}x{sh} images", path)
        return resize(image, pre.isize, pre.isize)
    if pre.scale != 1.0:
        image = resize(image, max(1, round(h * pre.scale)), max(1, round(w * pre.scale)))
    return pad_to(image, pre.isize)


def load_prepared(paths: list[Path], pre: Preprocess, convert: bool = False) -> list[np.ndarray]:
    """Read and prepare every image; ``convert`` converts channel mismatches instead of refusing them."""
    return [prepare(read_image(p, pre.channels, convert), pre, p) for p in paths]


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile``; the last tile is flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def tile_grid(image: np.ndarray, tile: int, stride: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """All tiles of an image as (N, tile, tile, C) and their (y, x) origins."""
    ys = tile_origins(image.shape[0], tile, stride)
    xs = tile_origins(image.shape[1], tile, stride)
    origins = [(y, x) for y in ys for x in xs]
    tiles = np.stack([image[y:y + tile, x:x + tile] for y, x in origins])
    return tiles, origins


def network_counts(images: list[np.ndarray], pre: Preprocess) -> list[int]:
    """How many network inputs each prepared image gives (1 in resize mode; its tiles in patch mode)."""
    if pre.mode == "resize":
        return [1] * len(images)
    stride = pre.tile_stride
    return [len(tile_origins(im.shape[0], pre.isize, stride)) * len(tile_origins(im.shape[1], pre.isize, stride))
            for im in images]


def network_inputs(images: list[np.ndarray], pre: Preprocess) -> tuple[np.ndarray, list[int]]:
    """Stack prepared images into network inputs (uint8 NHWC) and the count of inputs per image."""
    if pre.mode == "resize":
        return np.stack(images), [1] * len(images)
    parts, counts = [], []
    for image in images:
        tiles, _ = tile_grid(image, pre.isize, pre.tile_stride)
        parts.append(tiles)
        counts.append(len(tiles))
    return np.concatenate(parts), counts


Progress = Callable[[int, int], None]


def score_inputs(backend: Backend, inputs: np.ndarray, batch_size: int = 64,
                 progress: Progress | None = None) -> Scores:
    """Score network inputs (uint8 NHWC) in batches."""
    parts = []
    for start in range(0, len(inputs), batch_size):
        parts.append(backend.score(inputs[start:start + batch_size]))
        if progress:
            progress(min(start + batch_size, len(inputs)), len(inputs))
    return Scores.concat(parts)


def score_images(backend: Backend, images: list[np.ndarray], pre: Preprocess, batch_size: int = 64,
                 progress: Progress | None = None) -> tuple[Scores, Scores]:
    """Image scores (max over tiles in patch mode) and the tile scores behind them."""
    inputs, counts = network_inputs(images, pre)
    tiles = score_inputs(backend, inputs, batch_size, progress)
    return aggregate_max(tiles, counts), tiles
