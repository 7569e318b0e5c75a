"""The per-position measurement's arithmetic (bench/position_norm.py), worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from gedge.bench.position_norm import STD_FLOOR, beyond_chance, explained_share, per_position, position_table


def test_the_share_of_variance_position_explains():
    # two images, two positions: 0, 2 and 2, 4. Position means 1 and 3 (variance 1); all four values have mean 2
    # and variance (4 + 0 + 0 + 4) / 4 = 2: position explains half
    assert explained_share(np.array([[0.0, 2.0], [2.0, 4.0]])) == pytest.approx(0.5)
    # the same offsets on every image and nothing else: position explains everything
    assert explained_share(np.tile([1.0, 5.0, 9.0], (4, 1))) == pytest.approx(1.0)
    # every position alike: nothing
    assert explained_share(np.array([[1.0, 3.0], [3.0, 1.0]])) == pytest.approx(0.0)
    assert explained_share(np.zeros((3, 2))) == 0.0


def test_the_position_table_and_its_std_floor():
    normal = np.array([[0.0, 10.0], [2.0, 10.0]])  # position 0: mean 1, std 1; position 1: mean 10, std 0
    mean, std = position_table(normal)
    assert mean.tolist() == [1.0, 10.0]
    overall = normal.std()  # 0, 2, 10, 10 about their mean 5.5: sqrt((30.25 + 12.25 + 20.25 + 20.25) / 4)
    assert overall == pytest.approx(np.sqrt(83.0 / 4))
    assert std[0] == pytest.approx(max(1.0, STD_FLOOR * overall))
    assert std[1] == pytest.approx(STD_FLOOR * overall, rel=1e-9)  # a constant position is not divided by zero


def test_images_of_different_tile_counts_are_refused():
    assert per_position(np.arange(6.0), [3, 3]).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(SystemExit, match="one size"):
        per_position(np.arange(5.0), [3, 2])


def test_the_share_beyond_chance():
    # 10 images: position means of pure noise vary by 1/10 of the variance, so 0.1 is chance and 0.55 is half
    # of what is left beyond it
    assert beyond_chance(0.1, 10) == pytest.approx(0.0)
    assert beyond_chance(0.55, 10) == pytest.approx(0.5)
    assert beyond_chance(0.05, 10) == 0.0 and beyond_chance(0.9, 1) == 0.0
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(400, 16))  # no position effect: the raw share is near 1/400, beyond chance near 0
    assert beyond_chance(explained_share(noise), 400) < 0.01
