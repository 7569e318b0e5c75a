"""The score variants' arithmetic (bench/score_variants.py), worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gedge.bench.score_variants import gaussian, mahalanobis, photometric_fusion, residual_scores, top_share_mean


def test_a_dark_spot_is_dark_not_bright():
    # the input is 0.5 darker than its reconstruction on a 3 x 3 block of an 8 x 8 tile: the 3 x 3 window on the
    # block has mean residual -0.5; a window partly on it has a smaller magnitude, one off it 0
    x, fake = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    fake[0, 0, 2:5, 2:5] = 0.5
    scores = residual_scores(x, fake, window=3)
    assert scores["dark_local"].item() == pytest.approx(0.5)
    assert scores["bright_local"].item() == pytest.approx(0.0)  # no window is brighter than its reconstruction
    assert scores["d3_local"].item() == pytest.approx(0.5)
    flipped = residual_scores(fake, x, window=3)  # the same spot, brighter than the reconstruction
    assert flipped["bright_local"].item() == pytest.approx(0.5)
    assert flipped["dark_local"].item() == pytest.approx(0.0)


def test_a_uniform_offset_is_all_low_frequency():
    x, fake = torch.full((2, 3, 8, 8), 0.3), torch.full((2, 3, 8, 8), -0.1)
    scores = residual_scores(x, fake, window=3)
    assert scores["low_local"].tolist() == pytest.approx([0.4, 0.4])
    assert scores["high_local"].tolist() == pytest.approx([0.0, 0.0], abs=1e-7)


def test_a_checkerboard_is_high_frequency():
    # x = +-1 checkerboard on 6 x 6, reconstruction 0. The 5 x 5 box blur (only pixels inside the image counted)
    # of a checkerboard: a full 25-pixel neighbourhood has 13 of the centre's sign and 12 of the other, mean
    # +-1/25; the 2 x 2 corner cells' neighbourhoods (3 x 3 = 9 pixels) have 5 of the centre's sign, mean +-1/9
    x = torch.tensor([[(-1.0) ** (i + j) for j in range(6)] for i in range(6)]).view(1, 1, 6, 6)
    fake = torch.zeros_like(x)
    scores = residual_scores(x, fake, window=3)
    blurred = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    assert blurred[0, 0, 2, 2].item() == pytest.approx(1 / 25)  # the pixel (2, 2) sees rows and columns 0-4
    assert blurred[0, 0, 0, 0].item() == pytest.approx(1 / 9)
    # low: |blur(x)| per pixel, a window mean of it at most 1/9; high: |x - blur(x)| at least 1 - 1/9
    assert scores["low_local"].item() <= 1 / 9 + 1e-6
    assert scores["high_local"].item() >= 8 / 9 - 1e-6
    assert scores["d3_local"].item() == pytest.approx(1.0)  # |x - 0| = 1 everywhere


def test_the_top_share_mean():
    values = np.arange(1.0, 101.0)  # 1 .. 100
    assert top_share_mean(values, 0.03) == pytest.approx((100 + 99 + 98) / 3)
    assert top_share_mean(values, 0.001) == 100.0  # at least one value
    assert top_share_mean(np.array([[2.0, 7.0], [5.0, 1.0]]), 0.5) == pytest.approx(6.0)


def test_the_mahalanobis_distance():
    # four points on the axes: mean 0, covariance (n - 1 in the denominator) 2/3 on the diagonal, 0 off it, so
    # the precision is 1.5 I and the point (1, 1) is at 1.5 * (1 + 1) = 3
    samples = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    mean, precision = gaussian(samples, shrink=0.0)
    assert mean.tolist() == [0.0, 0.0]
    assert precision == pytest.approx(1.5 * np.eye(2))
    assert mahalanobis(np.array([[1.0, 1.0], [0.0, 0.0]]), mean, precision).tolist() == pytest.approx([3.0, 0.0])
    # shrinkage adds shrink * (mean variance) to the diagonal: 2/3 * 1.5 = 1, precision 1
    _, shrunk = gaussian(samples, shrink=0.5)
    assert shrunk == pytest.approx(np.eye(2))


def test_the_photometric_fusion():
    # normals: primary 1, 3 (mean 2, std 1); grey 100, 110 (mean 105, std 5)
    normal_primary, normal_grey = np.array([1.0, 3.0]), np.array([100.0, 110.0])
    grey_z, fused = photometric_fusion(np.array([4.0, 2.0, 2.0]), np.array([105.0, 80.0, 130.0]),
                                       normal_primary, normal_grey)
    assert grey_z.tolist() == pytest.approx([0.0, 5.0, 5.0])  # darker and brighter alike
    assert fused.tolist() == pytest.approx([2.0, 5.0, 5.0])
