"""Localisation on a labelled test set with masks: pixel AUROC and PRO of the anomaly maps, overall and per
defect class (every class against all the normal images), the way MVTec AD reports them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gedge.core.localisation import Localisation, localisation_metrics
from gedge.core.preprocess import Preprocess
from gedge.core.scores import Scores
from gedge.data.datasets import LabeledImages
from gedge.data.images import read_image, resize
from gedge.data.maps import image_map

MASK_LEVEL = 127  # masks may be lossy (JPEG): a pixel is a defect above this value


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask as booleans of ``shape`` (resized to the image where it differs)."""
    mask = read_image(path, 1, convert=True)
    if mask.shape[:2] != shape:
        mask = resize(mask, *shape)
    return mask[..., 0] > MASK_LEVEL


def image_maps(tiles: Scores, counts: list[int], prepared: list[np.ndarray], shapes: list[tuple[int, int]],
               pre: Preprocess) -> list[np.ndarray]:
    """Every image's anomaly map at its own resolution, from the tile scores (which must carry ``amap``)."""
    bounds = np.cumsum([0, *counts])
    return [image_map(tiles.amap[a:b], image.shape[:2], shape, pre)
            for a, b, image, shape in zip(bounds[:-1], bounds[1:], prepared, shapes)]


def localisation_by_class(maps: list[np.ndarray], test: LabeledImages) -> dict[str, Localisation]:
    """Pixel AUROC and PRO overall (``all``) and per defect class; empty where the test set has no masks."""
    if not test.mask_paths or not any(test.mask_paths):
        return {}
    masks = [read_mask(p, m.shape) if p is not None else np.zeros(m.shape, dtype=bool)
             for p, m in zip(test.mask_paths, maps)]
    normal = [i for i, y in enumerate(test.labels) if y == 0]
    classes = sorted({c for c, y in zip(test.classes, test.labels) if y == 1})
    groups = {"all": [i for i, y in enumerate(test.labels) if y == 1 and test.mask_paths[i] is not None]}
    groups.update({c: [i for i, k in enumerate(test.classes) if k == c and test.mask_paths[i] is not None]
                   for c in classes})
    out = {}
    for name, defective in groups.items():
        chosen = normal + defective
        if name != "all" and defective == groups["all"] and "all" in out:
            out[name] = out["all"]  # the only defect class: the same images as "all"
        elif defective:
            out[name] = localisation_metrics([maps[i] for i in chosen], [masks[i] for i in chosen])
    return out
