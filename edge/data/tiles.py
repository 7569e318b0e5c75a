"""From images to network inputs and back: the one tiler of gedge, and scoring images through any backend.

:func:`prepare` applies a model's :class:`~gedge.core.preprocess.Preprocess`: in resize mode the whole image is
resized to the network's input (whatever its aspect; an image of another size than the training images is refused
where those had one size), in patch mode it is scaled and padded to at least one tile. :func:`cut` cuts a prepared
image into its uint8 NHWC network inputs (patch mode: tiles at the model's stride). Training's validation, fitting
the decision rule, evaluation, parity and the INT8 gate score images through :func:`score_images`
(:func:`network_inputs` over prepared images); ``gedge inspect`` cuts each image with :func:`tile_image`, the same
:func:`prepare` and :func:`cut`, which also says where each input lies in the image (:class:`Tiling`), so the
production path scores exactly the inputs the model was evaluated and gated on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def cut(prepared: np.ndarray, pre: Preprocess, stride: int | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A prepared image's network inputs (uint8 NHWC) and their (y, x) origins in it: the image itself in resize
    mode, its tiles at ``stride`` (default: the model's) in patch mode."""
    if pre.mode == "resize":
        return prepared[None], [(0, 0)]
    return tile_grid(prepared, pre.isize, stride or pre.tile_stride)


def network_counts(images: list[np.ndarray], pre: Preprocess) -> list[int]:
    """How many network inputs each prepared image gives (1 in resize mode; its tiles in patch mode)."""
    if pre.mode == "resize":
        return [1] * len(images)
    stride = pre.tile_stride
    return [len(tile_origins(im.shape[0], pre.isize, stride)) * len(tile_origins(im.shape[1], pre.isize, stride))
            for im in images]


def network_inputs(images: list[np.ndarray], pre: Preprocess) -> tuple[np.ndarray, list[int]]:
    """Stack prepared images into network inputs (uint8 NHWC) and the count of inputs per image."""
    parts = [cut(image, pre)[0] for image in images]
    return np.concatenate(parts), [len(part) for part in parts]


@dataclass
class Tiling:
    """Where an image's network inputs lie, in the image's own pixels."""

    height: int
    width: int
    window: tuple[float, float]  # an input's height and width in image pixels
    origins: list[tuple[float, float]]  # (y, x) of each input, image pixels
    image: np.ndarray | None = None  # kept for overlays only

    def rect(self, i: int) -> tuple[int, int, int, int]:
        """Input ``i`` as (x0, y0, x1, y1), clipped to the image."""
        y, x = self.origins[i]
        wh, ww = self.window
        return (max(0, int(round(x))), max(0, int(round(y))), min(self.width, int(round(x + ww))),
                min(self.height, int(round(y + wh))))


def tile_image(image: np.ndarray, pre: Preprocess, path: Path | None = None,
               stride: int | None = None) -> tuple[np.ndarray, Tiling]:
    """The network inputs of one image, exactly as :func:`score_images` makes them (:func:`prepare`, then
    :func:`cut` at ``stride``, default the model's), and where each lies in the image."""
    h, w = image.shape[:2]
    prepared = prepare(image, pre, path)
    inputs, origins = cut(prepared, pre, stride)
    if pre.mode == "resize":  # the whole image is the one input
        return inputs, Tiling(h, w, (float(h), float(w)), [(0.0, 0.0)])
    scaled_h = h if pre.scale == 1.0 else max(1, round(h * pre.scale))
    scaled_w = w if pre.scale == 1.0 else max(1, round(w * pre.scale))
    sy, sx = h / scaled_h, w / scaled_w
    top, left = (prepared.shape[0] - scaled_h) // 2, (prepared.shape[1] - scaled_w) // 2  # mirrored padding
    return inputs, Tiling(h, w, (pre.isize * sy, pre.isize * sx), [((y - top) * sy, (x - left) * sx)
                                                                    for y, x in origins])


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
