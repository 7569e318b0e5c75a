"""Where an image's tiles lie: an image of any size cut into the network inputs the model takes.

* patch mode: the image is scaled by the model's ``scale`` and cut into ``isize`` tiles; ``overlap`` sets the
  stride (0.5: half a tile, the training default; 0: tiles side by side);
* resize mode: square windows of the image's short side (or the training image size), with ``overlap``
  along the long side, each resized to ``isize``; an image of the training size is one window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gedge.core.preprocess import Preprocess
from gedge.data.images import resize
from gedge.data.tiles import pad_to, tile_origins


@dataclass
class Tiling:
    """Where an image's tiles lie, in image pixels."""

    height: int
    width: int
    window: float  # tile side in image pixels
    origins: list[tuple[float, float]]  # (y, x) of each tile, image pixels
    image: np.ndarray | None = None  # kept for overlays only

    def rect(self, i: int) -> tuple[int, int, int, int]:
        """Tile ``i`` as (x0, y0, x1, y1), clipped to the image."""
        y, x = self.origins[i]
        return (max(0, int(round(x))), max(0, int(round(y))), min(self.width, int(round(x + self.window))),
                min(self.height, int(round(y + self.window))))


def tile_image(image: np.ndarray, pre: Preprocess, overlap: float,
               path: Path | None = None) -> tuple[np.ndarray, Tiling]:
    """The network inputs (uint8 NHWC) of an image of any size and where each lies in the image."""
    h, w = image.shape[:2]
    if pre.mode == "patch":
        scale = pre.scale
        scaled = image if scale == 1.0 else resize(image, max(1, round(h * scale)), max(1, round(w * scale)))
        sy, sx = h / scaled.shape[0], w / scaled.shape[1]
        padded = pad_to(scaled, pre.isize)  # an image smaller than a tile: mirrored to one tile, as in training
        top, left = (padded.shape[0] - scaled.shape[0]) // 2, (padded.shape[1] - scaled.shape[1]) // 2
        stride = max(1, int(round(pre.isize * (1.0 - overlap))))
        ys = tile_origins(padded.shape[0], pre.isize, stride)
        xs = tile_origins(padded.shape[1], pre.isize, stride)
        tiles = np.stack([padded[y:y + pre.isize, x:x + pre.isize] for y in ys for x in xs])
        origins = [((y - top) * sy, (x - left) * sx) for y in ys for x in xs]
        return tiles, Tiling(h, w, pre.isize * (sy + sx) / 2, origins)
    side = min(h, w)
    if pre.source_size and min(pre.source_size) <= side:
        side = min(pre.source_size)
    stride = max(1, int(round(side * (1.0 - overlap))))
    origins = [(y, x) for y in tile_origins(h, side, stride) for x in tile_origins(w, side, stride)]
    tiles = np.stack([resize(np.ascontiguousarray(image[y:y + side, x:x + side]), pre.isize, pre.isize)
                      for y, x in origins])
    return tiles, Tiling(h, w, float(side), [(float(y), float(x)) for y, x in origins])
