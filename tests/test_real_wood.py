"""Checks on the real wood boards (../shared/data/wood_vsb256); skipped with the reason where it is absent."""

import numpy as np
from gedge.data import Preprocess, load_prepared, network_inputs, open_dataset, read_image


def test_real_wood_layout_and_masks(wood_vsb):
    ds = open_dataset(wood_vsb)
    assert ds.layout == "mvtec" and len(ds.train) == 70
    assert int((ds.test.labels == 0).sum()) == 68 and int((ds.test.labels == 1).sum()) == 71
    masks = [m for m, y in zip(ds.test.mask_paths, ds.test.labels) if y == 1]
    assert all(m is not None and m.is_file() for m in masks)
    mask = read_image(masks[0], 3)
    assert (mask > 127).any() and (mask <= 127).any()


def test_real_wood_default_tiling(wood_vsb):
    ds = open_dataset(wood_vsb)
    pre = Preprocess(mode="patch", isize=32, scale=0.5)
    images = load_prepared(ds.train[:3], pre)
    assert images[0].shape == (128, 128, 3) and images[0].dtype == np.uint8
    inputs, counts = network_inputs(images, pre)
    assert counts == [49, 49, 49] and inputs.shape == (147, 32, 32, 3)
