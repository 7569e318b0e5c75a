"""d3_local of a model that blurs its residual (ModelConfig.residual_blur), worked out by hand and against an
independent box filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gedge.core.decision import DecisionRule
from gedge.reference.model import ModelConfig, build_networks
from gedge.reference.scoring import FusedScorer

D3_LOCAL = 5  # position of d3_local in the scorer's outputs


def _scorer(blur: int) -> FusedScorer:
    netg, netd = build_networks(ModelConfig(isize=16, nc=1, nz=8, ngf=8, ndf=8, residual_blur=blur), seed=0)
    return FusedScorer(netg.eval(), netd.eval(), DecisionRule()).eval()


def test_pixel_noise_averages_out_and_an_offset_stays():
    scorer = _scorer(3)
    # a +-1 checkerboard residual: |residual| is 1 everywhere, but a 3 x 3 blur (pixels inside the image only)
    # leaves +-1/9 inside (5 of one sign, 4 of the other) and 0 on the borders (2 x 3 and 2 x 2: as many of each)
    board = torch.tensor([[(-1.0) ** (i + j) for j in range(16)] for i in range(16)]).view(1, 1, 16, 16)
    amap = board.abs()
    local = scorer.local_residual(board, amap)
    assert local[0, 0, 1:-1, 1:-1] == pytest.approx(torch.full((14, 14), 1 / 9))
    assert local[0, 0, 0].tolist() == pytest.approx([0.0] * 16, abs=1e-7)
    offset = torch.full((1, 1, 16, 16), -0.4)  # a uniform offset is kept whole
    assert scorer.local_residual(offset, offset.abs()) == pytest.approx(torch.full((1, 1, 16, 16), 0.4))
    assert _scorer(0).local_residual(board, amap) is amap  # no blur: the plain residual map


def _box_mean(image: np.ndarray, side: int, border_only_inside: bool) -> np.ndarray:
    """Mean over side x side neighbourhoods: centred and clipped to the image (blur), or the valid windows only."""
    h, w = image.shape
    half = side // 2
    if border_only_inside:
        return np.array([[image[max(0, i - half):i + half + 1, max(0, j - half):j + half + 1].mean()
                          for j in range(w)] for i in range(h)])
    return np.array([[image[i:i + side, j:j + side].mean() for j in range(w - side + 1)] for i in range(h - side + 1)])


def test_d3_local_of_a_blurring_model_against_an_independent_filter():
    scorer = _scorer(3)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        d3_local = scorer(x)[D3_LOCAL].numpy()
        fake = scorer.netg(x)[0].numpy()
    residual = (x.numpy() - fake)[:, 0].astype(np.float64)
    expected = [_box_mean(np.abs(_box_mean(r, 3, True)), 3, False).max() for r in residual]
    assert d3_local == pytest.approx(np.array(expected), rel=1e-5)
    plain = [_box_mean(np.abs(r), 3, False).max() for r in residual]  # what the model without the blur gives
    assert not np.allclose(d3_local, plain, rtol=1e-3)
