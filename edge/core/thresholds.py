"""Where the decision threshold sits on labelled scores: the false rejects and escapes a threshold gives, and a
threshold fitted to a target rate of either.

An image is rejected when its score is at or above the threshold (``score >= threshold``, as every backend and
the C++ runtime decide). A *false reject* is a normal image rejected, an *escape* a defective image accepted.

A fitted threshold lies halfway between the two neighbouring scores where the decisions change, not on a score:
any value in that gap makes the same decisions on the fitting images, and the middle leaves the most room for the
small shifts of another backend or precision before an image next to it flips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from gedge.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class Rates:
    """The decisions a threshold makes on labelled images."""

    threshold: float
    false_rejects: int
    normals: int
    escapes: int
    defective: int

    @property
    def false_reject_rate(self) -> float:
        return self.false_rejects / self.normals if self.normals else float("nan")

    @property
    def escape_rate(self) -> float:
        return self.escapes / self.defective if self.defective else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "false_reject_rate": self.false_reject_rate, "escape_rate": self.escape_rate}


def _split(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if not np.isfinite(scores).all():
        raise DataError("scores contain NaN or infinity: no threshold can be placed")
    return scores[labels == 0], scores[labels == 1]


def rates_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Rates:
    """False rejects and escapes at ``threshold``."""
    normal, defective = _split(labels, scores)
    return Rates(float(threshold), int((normal >= threshold).sum()), int(normal.size),
                 int((defective < threshold).sum()), int(defective.size))


def _check_rate(rate: float, what: str) -> None:
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"{what} must be at least 0 and below 1, got {rate}")


def _allowed(rate: float, count: int) -> int:
    """How many of ``count`` images a rate allows (rounded down; a rate of 0 allows none)."""
    return int(np.floor(rate * count + 1e-9))


def _margin(scores: np.ndarray) -> float:
    spread = float(scores.max() - scores.min()) if scores.size else 0.0
    return 0.05 * spread if spread > 0 else 1e-3


def _midpoint_below(scores: np.ndarray, value: float) -> float:
    """Halfway between ``value`` and the highest score under it (a margin under it where there is none)."""
    under = scores[scores < value]
    return float((under.max() + value) / 2) if under.size else float(value - _margin(scores))


def _midpoint_above(scores: np.ndarray, value: float) -> float:
    """Halfway between ``value`` and the lowest score over it (a margin over it where there is none)."""
    over = scores[scores > value]
    return float((over.min() + value) / 2) if over.size else float(value + _margin(scores))


def threshold_for_escape_rate(labels: np.ndarray, scores: np.ndarray, rate: float) -> float:
    """The highest threshold at which at most ``rate`` of the defective images escape (0: none does), placed
    halfway under the lowest defective score it must still reject: the fewest false rejects for that rate."""
    _check_rate(rate, "the escape rate")
    normal, defective = _split(labels, scores)
    if not defective.size:
        raise DataError("no defective images: an escape rate cannot be fitted")
    pivot = float(np.sort(defective)[_allowed(rate, defective.size)])  # the lowest defective score to reject
    return _midpoint_below(np.concatenate([normal, defective]), pivot)


def threshold_for_false_reject_rate(labels: np.ndarray, scores: np.ndarray, rate: float) -> float:
    """The lowest threshold at which at most ``rate`` of the normal images are rejected, placed halfway over the
    highest normal score it must still accept: the fewest escapes for that rate."""
    _check_rate(rate, "the false-reject rate")
    normal, defective = _split(labels, scores)
    if not normal.size:
        raise DataError("no normal images: a false-reject rate cannot be fitted")
    pivot = float(np.sort(normal)[::-1][_allowed(rate, normal.size)])  # the highest normal score to accept
    return _midpoint_above(np.concatenate([normal, defective]), pivot)


def normal_quantile(labels: np.ndarray, scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the normal images' scores (how training places the threshold on validation normals)."""
    normal, _ = _split(labels, scores)
    if not normal.size:
        raise DataError("no normal images: no quantile of their scores")
    return float(np.quantile(normal, quantile))
