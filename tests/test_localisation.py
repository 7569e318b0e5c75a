"""Pixel AUROC and PRO: the known values of perfect, inverted and random maps, region weighting, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gedge.core.errors import DataError
from gedge.core.localisation import label_regions, localisation_metrics


def _set(n: int = 12, size: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    masks = []
    for i in range(n):
        mask = np.zeros((size, size), dtype=bool)
        if i % 2:
            mask[5:20, 10:30] = True  # a large defect
            mask[35:38, 40:43] = True  # and a small one
        masks.append(mask)
    return masks, rng


def test_label_regions_uses_eight_connectivity():
    mask = np.zeros((6, 6), dtype=bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours: one region
    mask[4:6, 4] = True
    labels, n = label_regions(mask)
    assert n == 2 and labels[1, 1] == labels[2, 2] != labels[4, 4] and labels[0, 0] == 0


def test_perfect_inverted_and_random_maps():
    masks, rng = _set()
    perfect = localisation_metrics([m * 1.0 for m in masks], masks)
    assert perfect.pixel_auroc == 1.0 and perfect.pro == pytest.approx(1.0)
    inverted = localisation_metrics([-(m * 1.0) for m in masks], masks)
    assert inverted.pixel_auroc == 0.0 and inverted.pro == pytest.approx(0.0)
    random = localisation_metrics([rng.normal(size=m.shape) for m in masks], masks)
    assert abs(random.pixel_auroc - 0.5) < 0.03 and abs(random.pro - 0.15) < 0.03
    assert perfect.regions == 12 and perfect.images == 12


def test_pro_weighs_a_small_defect_like_a_large_one():
    """A map that finds only the large defects keeps a high pixel AUROC (most defect pixels) but loses half its PRO."""
    masks, _ = _set()
    large_only = [np.where(m, 1.0, 0.0) for m in masks]
    for m in large_only:
        m[35:38, 40:43] = 0.0
    result = localisation_metrics(large_only, masks)
    assert result.pixel_auroc > 0.95 and result.pro == pytest.approx(0.5 + 0.5 * 0.15, abs=0.06)


def test_bad_input_is_a_data_error():
    masks, rng = _set(4)
    with pytest.raises(DataError, match="NaN"):
        localisation_metrics([np.full(m.shape, np.nan) for m in masks], masks)
    with pytest.raises(DataError, match="mask"):
        localisation_metrics([np.zeros((3, 3)) for _ in masks], masks)
    with pytest.raises(DataError, match="both defect and normal"):
        localisation_metrics([np.zeros(m.shape) for m in masks], [np.zeros(m.shape, bool) for m in masks])
