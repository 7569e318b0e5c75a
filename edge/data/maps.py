"""Anomaly maps at image resolution, from the per-tile maps a scorer returns (its ``amap`` output).

A tile's map is |x - G(x)| averaged over channels, at the network's input size. In patch mode the tiles overlap:
each pixel of the prepared (scaled, padded) image takes the largest value of the tiles over it, and the map is
resized back to the original image (the padding cut off first). In resize mode the one tile's map is resized to
the image. The result lines up with the image's ground-truth mask, for pixel AUROC and PRO.
"""

from __future__ import annotations

import numpy as np
from gedge.core.preprocess import Preprocess
from gedge.data.tiles import tile_origins
from PIL import Image


def _resized(values: np.ndarray, height: int, width: int) -> np.ndarray:
    if values.shape == (height, width):
        return values.astype(np.float32)
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize((width, height), Image.BILINEAR))


def image_map(tile_maps: np.ndarray, prepared_shape: tuple[int, int], image_shape: tuple[int, int],
              pre: Preprocess) -> np.ndarray:
    """The (H, W) anomaly map of one image from its tiles' maps (N, isize, isize), in tile order.

    ``prepared_shape`` is the prepared image's (height, width) (scaled and padded), ``image_shape`` the original's.
    """
    height, width = image_shape
    if pre.mode == "resize":
        return _resized(tile_maps[0], height, width)
    ph, pw = prepared_shape
    canvas = np.zeros((ph, pw), dtype=np.float32)
    ys = tile_origins(ph, pre.isize, pre.tile_stride)
    xs = tile_origins(pw, pre.isize, pre.tile_stride)
    for tile, (y, x) in zip(tile_maps, [(y, x) for y in ys for x in xs]):
        np.maximum(canvas[y:y + pre.isize, x:x + pre.isize], tile, out=canvas[y:y + pre.isize, x:x + pre.isize])
    scaled_h = max(1, round(height * pre.scale))
    scaled_w = max(1, round(width * pre.scale))
    top, left = (ph - min(ph, scaled_h)) // 2, (pw - min(pw, scaled_w)) // 2  # padding (prepare) is centred
    return _resized(canvas[top:top + scaled_h, left:left + scaled_w], height, width)
