"""Localisation metrics from anomaly maps and ground-truth masks: pixel AUROC and PRO.

* Pixel AUROC: the ROC area over every pixel of every image (defect pixels against normal pixels).
* PRO, per-region overlap (Bergmann et al., "MVTec AD", CVPR 2019; and IJCV 2021, section 4.2): at a threshold,
  each connected defect region counts the share of its pixels over the threshold, and PRO is the mean over
  regions, so a small defect weighs as much as a large one. The curve of PRO against the false-positive rate on
  normal pixels is integrated from 0 to ``max_fpr`` (0.3, as in MVTec AD) and divided by ``max_fpr``, so 1.0 is
  perfect and a random map scores about ``max_fpr / 2``.

Maps and masks are (H, W) per image; images may differ in size. Connected regions use 8-connectivity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from gedge.core.errors import DataError

MAX_FPR = 0.3
CURVE_POINTS = 300


@dataclass(frozen=True)
class Localisation:
    pixel_auroc: float
    pro: float  # area under the PRO curve up to max_fpr, normalised to [0, 1]
    max_fpr: float
    regions: int  # connected defect regions
    images: int

    def to_dict(self) -> dict:
        return asdict(self)


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected regions of a boolean mask (8-connectivity): (labels 1..n, 0 outside; n)."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    labels = np.where(mask, np.arange(1, h * w + 1, dtype=np.int64).reshape(h, w), 0)
    if not mask.any():
        return labels, 0
    big = np.iinfo(np.int64).max
    while True:  # each foreground pixel takes the smallest label among its 8 neighbours until nothing changes
        padded = np.pad(np.where(mask, labels, big), 1, constant_values=big)
        smallest = labels.copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                smallest = np.minimum(smallest, padded[dy:dy + h, dx:dx + w])
        smallest = np.where(mask, smallest, 0)
        if np.array_equal(smallest, labels):
            break
        labels = smallest
    values, dense = np.unique(labels, return_inverse=True)
    dense = dense.reshape(h, w)
    n = int((values > 0).sum())
    return (dense if values[0] == 0 else dense + 1), n


def _check(maps: list[np.ndarray], masks: list[np.ndarray]) -> None:
    if len(maps) != len(masks) or not maps:
        raise DataError(f"{len(maps)} anomaly maps for {len(masks)} masks")
    for i, (m, k) in enumerate(zip(maps, masks)):
        if m.shape != k.shape:
            raise DataError(f"anomaly map {i} is {m.shape} but its mask is {k.shape}")
        if not np.isfinite(m).all():
            raise DataError(f"anomaly map {i} holds NaN or infinity")


def localisation_metrics(maps: list[np.ndarray], masks: list[np.ndarray], max_fpr: float = MAX_FPR) -> Localisation:
    """Pixel AUROC and PRO of anomaly maps against boolean masks (normal images have all-False masks)."""
    _check(maps, masks)
    masks = [np.asarray(k, dtype=bool) for k in masks]
    normal = np.sort(np.concatenate([np.asarray(m, dtype=np.float64)[~k] for m, k in zip(maps, masks)]))
    defect = np.concatenate([np.asarray(m, dtype=np.float64)[k] for m, k in zip(maps, masks)])
    if not normal.size or not defect.size:
        raise DataError("pixel metrics need both defect and normal pixels")
    regions = [np.sort(np.asarray(m, dtype=np.float64)[labels == r])
               for m, k in zip(maps, masks) for labels, n in [label_regions(k)] for r in range(1, n + 1)]
    fpr, pro = _pro_curve(normal, regions, max_fpr)
    area = float(np.sum((fpr[1:] - fpr[:-1]) * (pro[1:] + pro[:-1]) / 2.0))
    return Localisation(_pixel_auroc(normal, defect), area / max_fpr, max_fpr, len(regions), len(maps))


def _pixel_auroc(normal: np.ndarray, defect: np.ndarray) -> float:
    """AUROC of defect pixels against normal pixels (``normal`` sorted): the share of (defect, normal) pairs where
    the defect pixel scores higher, ties counting half; exactly :func:`gedge.core.metrics.auroc`, without ranking
    every pixel of the data set."""
    below = np.searchsorted(normal, defect, side="left")
    tied = np.searchsorted(normal, defect, side="right") - below
    return float((2 * int(below.sum()) + int(tied.sum())) / (2 * defect.size * normal.size))


def _pro_curve(normal: np.ndarray, regions: list[np.ndarray], max_fpr: float) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) points from FPR 0 to ``max_fpr``; ``normal`` and each region's scores sorted ascending.

    Thresholds: just above the highest normal score (FPR 0), then the normal scores' quantiles at evenly spaced
    false-positive rates. Where ties make several thresholds share an FPR, the best PRO at that FPR counts; the
    curve is interpolated linearly at ``max_fpr``."""
    targets = np.linspace(0.0, 1.0, int(CURVE_POINTS / max_fpr) + 1)
    ranks = np.clip(np.ceil((1.0 - targets) * normal.size).astype(np.int64), 0, normal.size - 1)
    thresholds = np.concatenate([[np.nextafter(normal[-1], np.inf)], normal[ranks]])
    fpr = 1.0 - np.searchsorted(normal, thresholds, side="left") / normal.size
    pro = np.mean([1.0 - np.searchsorted(v, thresholds, side="left") / v.size for v in regions], axis=0)
    best: dict[float, float] = {}
    for f, p in zip(fpr, pro):
        best[f] = max(p, best.get(f, 0.0))
    points = sorted(best.items())
    xs = np.array([f for f, _ in points])
    ys = np.array([p for _, p in points])
    keep = xs <= max_fpr
    cut = np.interp(max_fpr, xs, ys)
    return np.append(xs[keep], max_fpr), np.append(ys[keep], cut)
