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


class DarknessScorer:
    """A stand-in scorer whose anomaly map is each pixel's darkness (1 - x / 255): on boards with dark defects it
    marks where the defects are, so the test checks where the pipeline puts the map, not how good a model is. A
    heat map shifted, flipped or scaled wrongly by tiling or overlays loses the masks."""

    def __init__(self, size: int) -> None:
        from gedge.core.backend import BackendInfo
        from gedge.core.inputs import InputSpec

        self.name = "darkness"
        self.input_spec = InputSpec(size, 3)
        self.info = BackendInfo(kind="test", label="darkness", precision="fp32", with_amap=True)

    def score(self, batch: np.ndarray):
        from gedge.core.scores import OUTPUT_NAMES, Scores

        amap = 1.0 - batch.astype(np.float32).mean(axis=3) / 255.0
        peak = amap.reshape(len(batch), -1).max(axis=1)
        return Scores.from_dict({**{n: peak for n in OUTPUT_NAMES}, "amap": amap})

    def close(self) -> None:
        pass


def test_inspection_heat_maps_and_evaluation_maps_line_up_with_the_masks(tmp_path):
    """`gedge inspect --overlays`' heat maps and `gedge evaluate`'s anomaly maps against the ground-truth masks of
    synthetic boards with dark defects (holes, black): both find the masks (pixel AUROC > 0.9); the same maps
    shifted by a quarter of the image do not."""
    from gedge.core.preprocess import Preprocess
    from gedge.data.datasets import open_dataset
    from gedge.data.images import read_image
    from gedge.data.maps import image_map
    from gedge.data.synth import SynthConfig, write_synthetic
    from gedge.data.tiles import network_inputs, prepare, tile_image
    from gedge.inspection.overlays import heat_map
    from gedge.reference.localise import read_mask

    write_synthetic(tmp_path / "wood", SynthConfig(size=128, n_train=1, n_test_good=2, n_test_per_defect=3, seed=2))
    test = open_dataset(tmp_path / "wood").test
    keep = [i for i, c in enumerate(test.classes) if c in ("good", "holes", "black")]
    pre = Preprocess(mode="patch", isize=32, scale=0.5, channels=3)
    scorer = DarknessScorer(32)
    heats, maps, masks = [], [], []
    for i in keep:
        image = read_image(test.paths[i], 3)
        tiles, tiling = tile_image(image, pre)  # the model's stride: half a tile
        heats.append(heat_map(tiling, scorer.score(tiles), 1.0, pre)[0])
        prepared = prepare(image, pre)
        inputs, _ = network_inputs([prepared], pre)
        maps.append(image_map(scorer.score(inputs).amap, prepared.shape[:2], image.shape[:2], pre))
        mask = test.mask_paths[i]
        masks.append(read_mask(mask, image.shape[:2]) if mask else np.zeros(image.shape[:2], dtype=bool))
    for found in (heats, maps):
        assert localisation_metrics(found, masks).pixel_auroc > 0.9
        shifted = [np.roll(m, m.shape[0] // 4, axis=(0, 1)) for m in found]
        assert localisation_metrics(shifted, masks).pixel_auroc < 0.8
