"""Seeded crops of prepared images: random training batches (:class:`PatchSampler`, with flips and a resumable
random state) and stratified patch sets (:func:`grid_patches`, half on the tile grid, half at random places).
"""

from __future__ import annotations

import numpy as np
from gedge.core.errors import DataError
from gedge.core.preprocess import Preprocess
from gedge.data.tiles import tile_grid


class PatchSampler:
    """Random training inputs: crops of ``isize`` (patch mode) or whole images, with flips."""

    def __init__(self, images: list[np.ndarray], pre: Preprocess, seed: int, flips: bool = True) -> None:
        if not images:
            raise DataError("no training images")
        self.images = images
        self.pre = pre
        self.flips = flips
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> np.ndarray:
        size = self.pre.isize
        out = np.empty((batch, size, size, self.pre.channels), dtype=np.uint8)
        for i, k in enumerate(self.rng.integers(0, len(self.images), batch)):
            image = self.images[k]
            y = int(self.rng.integers(0, image.shape[0] - size + 1))
            x = int(self.rng.integers(0, image.shape[1] - size + 1))
            crop = image[y:y + size, x:x + size]
            if self.flips and self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            if self.flips and self.rng.random() < 0.5:
                crop = crop[::-1]
            out[i] = crop
        return out

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def grid_patches(images: list[np.ndarray], size: int, per_image: int, seed: int) -> np.ndarray:
    """Seeded crops stratified over source images: ``per_image`` from each, half grid, half random."""
    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        tiles, _ = tile_grid(image, size, max(1, size // 2))
        pick = rng.permutation(len(tiles))[: (per_image + 1) // 2]
        out.extend(tiles[pick])
        for _ in range(per_image - len(pick)):
            y = int(rng.integers(0, image.shape[0] - size + 1))
            x = int(rng.integers(0, image.shape[1] - size + 1))
            out.append(image[y:y + size, x:x + size])
    return np.stack(out)
