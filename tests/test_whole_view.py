"""The whole-image view's arithmetic (bench/whole_view.py: gedge.reference.evaluate's per-image maxima, and
bench/checkpoint_data.py's z-score), worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from gedge.bench.checkpoint_data import z_against
from gedge.bench.whole_view import max_z_fusion
from gedge.core.scores import OUTPUT_NAMES, Scores
from gedge.reference.evaluate import candidate_image_scores


def test_image_maxima_take_each_images_own_tiles():
    # three images of 2, 3 and 1 tiles: maxima 5, 7 and -1 (a maximum of the neighbour's tiles would differ)
    d3 = np.array([1.0, 5.0, 7.0, 0.0, 2.0, -1.0])
    tiles = Scores.from_dict({**{name: np.zeros(6) for name in OUTPUT_NAMES}, "d3": d3})
    assert candidate_image_scores(tiles, [2, 3, 1], None)["d3"].tolist() == [5.0, 7.0, -1.0]


def test_z_against_normal_images():
    normal = np.array([1.0, 3.0])  # mean 2, standard deviation 1
    assert z_against(np.array([2.0, 4.0, 0.5]), normal).tolist() == pytest.approx([0.0, 2.0, -1.5])


def test_max_z_fusion_lets_either_view_raise_an_image():
    # view A's normals: mean 10, std 2; view B's: mean 0, std 0.5
    a_normal, b_normal = np.array([8.0, 12.0]), np.array([-0.5, 0.5])
    a = np.array([16.0, 10.0, 10.0])  # z 3, 0, 0
    b = np.array([0.0, 2.0, -1.0])  # z 0, 4, -2
    assert max_z_fusion(a, b, a_normal, b_normal).tolist() == pytest.approx([3.0, 4.0, 0.0])
    # raw maxima would let view A's larger numbers decide every image
    assert np.maximum(a, b).tolist() == [16.0, 10.0, 10.0]
