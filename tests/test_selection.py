"""Score choice on evidence (the default unless a challenger wins clearly), validation regions for few large images,
and the synthetic anomalies G learns to remove."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gedge.core.errors import ConfigError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import CANDIDATE_SCORES
from gedge.reference.anomalies import anomaly_masks, paint_anomalies
from gedge.reference.train_config import resolve_device
from gedge.reference.validation import DEFAULT_SCORE, choose_score, pair_auroc, validation_units, win_share


def _values(normal: np.ndarray, proxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(normal, dtype=float), np.asarray(proxy, dtype=float)


def test_pair_auroc_by_hand():
    # normals 1, 2, 3; proxies 2.5, 4: pairs won 2 + 3 of 6 -> 5/6
    assert pair_auroc(np.array([1.0, 2, 3]), np.array([2.5, 4])) == pytest.approx(5 / 6)


def test_a_challenger_that_wins_every_resample_replaces_the_default():
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, 40)
    separated = _values(normal, rng.normal(6, 1, 120))  # AUROC 1 in every resample
    overlapping = _values(normal, rng.normal(0.5, 1, 120))  # about 0.64
    assert win_share(separated, overlapping) == 1.0
    values = {name: overlapping for name in CANDIDATE_SCORES}
    values["d1"] = separated
    aurocs = {name: pair_auroc(*pair) for name, pair in values.items()}
    assert choose_score(values, aurocs) == "d1"


def test_a_challenger_within_the_noise_does_not():
    rng = np.random.default_rng(1)
    normal = rng.normal(0, 1, 10)
    proxy = rng.normal(1.0, 1, 30)
    noisy = rng.normal(0, 0.3, 40)  # the same images, a little noise on every score: no real difference
    default = _values(normal, proxy)
    challenger = _values(normal + noisy[:10], proxy + noisy[10:])
    values = {name: default for name in CANDIDATE_SCORES}
    values["d2"] = challenger
    aurocs = {name: pair_auroc(*pair) for name, pair in values.items()}
    aurocs["d2"] = max(aurocs["d2"], aurocs[DEFAULT_SCORE] + 0.01)  # the highest number, but not clearly better
    assert 0.05 < win_share(challenger, default) < 0.95
    assert choose_score(values, aurocs) == DEFAULT_SCORE


def test_few_large_images_are_validated_in_regions():
    pre = Preprocess(mode="patch", isize=32)
    strips = [np.zeros((128, 2048, 3), np.uint8)] * 2
    regions = validation_units(strips, pre)
    # side 128 gives 2 x 16 = 32 regions (< 40); side 96 gives 2 x 21 = 42
    assert len(regions) == 42 and all(r.shape[:2] == (96, 96) for r in regions)
    boards = [np.zeros((128, 128, 3), np.uint8)] * 10
    assert len(validation_units(boards, pre)) == 40  # 64 px: 4 regions a board
    many = [np.zeros((128, 128, 3), np.uint8)] * 40
    assert validation_units(many, pre) is many
    assert validation_units(strips, Preprocess(mode="resize", isize=32)) is strips


def test_painted_anomalies():
    x = torch.rand(64, 3, 32, 32) * 2 - 1
    painted = paint_anomalies(x, 0.5, torch.Generator().manual_seed(3))
    changed = (painted != x).flatten(1).any(dim=1)
    assert 16 <= int(changed.sum()) <= 48  # about half of the tiles, each changed inside its mask only
    assert painted.min() >= -1 and painted.max() <= 1
    assert torch.equal(painted[~changed], x[~changed])
    again = paint_anomalies(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(painted, again)  # one seeded generator: a resumed run paints the same
    assert torch.equal(paint_anomalies(x, 0.0, torch.Generator()), x)
    masks = anomaly_masks(30, 32, torch.Generator().manual_seed(0))
    area = masks.flatten(1).mean(dim=1)
    assert masks.min() >= 0 and masks.max() <= 1 and bool((area > 0).all()) and bool((area < 0.5).all())


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="must be auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
