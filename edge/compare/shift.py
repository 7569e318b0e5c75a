"""How far a candidate moves the primary score near the threshold, as a share of the decision margin.

AUROC does not move when every score moves by the same amount, and a gate's proxies far above the threshold keep
their decisions under any small shift, so neither sees a candidate that scores every image a little lower (real
defects near the threshold accepted) or a little higher (good parts rejected). This measure does:

* the **decision margin** is the distance from the normal images' median reference score to the threshold (the
  normal images: the labelled ones where labels exist, else the images the reference accepts);
* the **shift** of an image is its candidate score minus its reference score (the normalised primary ``score``,
  the number the decision is made on), taken over the images whose reference score lies within one margin of the
  threshold, on either side: where a decision can change;
* two limits, as shares of the margin: the **largest** shift, down or up (``max_score_shift``, L: an image whose
  reference score is more than L margins from the threshold keeps its decision, on the images measured and, as
  far as they resemble them, on others), and the **mean** shift, the candidate's bias (``max_score_bias``). A
  true low-precision candidate moves a few images a fair way and most of them hardly at all, so its mean shift is
  a small share of its largest; a shifted or scaled candidate moves every image near the threshold the same way,
  so its mean shift is as large as its largest. The mean catches a shift of one standard deviation of the normal
  scores that the largest alone could not tell from INT8's single-image outliers (docs/int8-calibration.md).

A candidate with NaN or infinite scores already fails (:mod:`gedge.compare.comparator`); its shift is not measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class ShiftLimits:
    largest: float | None  # the largest shift near the threshold, a share of the margin (None: not gated)
    mean: float | None  # the mean shift near the threshold (either sign), a share of the margin


@dataclass
class ScoreShift:
    """The candidate's shift of the primary score near the threshold against the decision margin."""

    threshold: float
    n_normal: int  # the normal images the margin is measured on
    normal_median: float | None = None
    normal_sd: float | None = None  # the spread of the normal images' reference scores (for scale)
    margin: float | None = None  # threshold - normal median (None: not measurable)
    n_near: int = 0  # images within one margin of the threshold (those the shift is taken over)
    largest_down: float = 0.0  # the largest lowering (>= 0) of an image's score, candidate below reference
    largest_up: float = 0.0  # the largest raise (>= 0)
    mean: float = 0.0  # the mean shift (candidate - reference, signed)
    share: float | None = None  # max(largest_down, largest_up) / margin
    mean_share: float | None = None  # |mean| / margin
    limit: float | None = None  # the largest share allowed
    mean_limit: float | None = None  # the largest mean share allowed
    failures: list[str] = field(default_factory=list)

    @property
    def clear_by(self) -> float | None:
        """The distance from the threshold beyond which no measured image changes decision under the limit."""
        if self.limit is None or self.margin is None:
            return None
        return self.limit * self.margin

    def to_dict(self) -> dict:
        return {**asdict(self), "clear_by": self.clear_by}


def normal_images(reference: np.ndarray, threshold: float, labels: np.ndarray | None) -> np.ndarray:
    """Which images count as normal for the margin: the labelled normals, else the images the reference accepts."""
    if labels is not None and len(labels) == len(reference):
        return np.asarray(labels) == 0
    return reference < threshold


def _failure_lines(shift: ScoreShift) -> list[str]:
    margin = shift.margin
    where = (f"of the decision margin {margin:.3g} (threshold {shift.threshold:.3g} - normal median "
             f"{shift.normal_median:.3g}, {shift.n_normal} normal images; {shift.n_near} images within one margin)")
    lines = []
    for direction, amount in (("down", shift.largest_down), ("up", shift.largest_up)):
        if shift.limit is not None and amount / margin > shift.limit:
            what = "a defect that far above the threshold would be accepted" if direction == "down" else \
                "a good part that far below the threshold would be rejected"
            lines.append(f"score (primary): the candidate shifts scores {direction} by up to {amount:.3g} = "
                         f"{amount / margin:.1%} {where} > {shift.limit:.0%}: {what}")
    if shift.mean_limit is not None and shift.mean_share > shift.mean_limit:
        direction = "down" if shift.mean < 0 else "up"
        what = "defects near the threshold accepted" if direction == "down" else "good parts near it rejected"
        lines.append(f"score (primary): the candidate shifts scores {direction} by {abs(shift.mean):.3g} on "
                     f"average = {shift.mean_share:.1%} {where} > {shift.mean_limit:.0%}: {what}")
    return lines


def score_shift(reference: np.ndarray, candidate: np.ndarray, threshold: float, labels: np.ndarray | None,
                limits: ShiftLimits) -> ScoreShift:
    """The shift of ``candidate`` against ``reference`` (image scores) near ``threshold``, and its failures
    against ``limits``. The caller checks that there are enough normal images; here a margin that is not positive
    fails."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    normals = normal_images(ref, threshold, labels)
    shift = ScoreShift(float(threshold), int(normals.sum()), limit=limits.largest, mean_limit=limits.mean)
    if not shift.n_normal or not (np.isfinite(ref).all() and np.isfinite(cand).all()):
        return shift
    shift.normal_median = float(np.median(ref[normals]))
    shift.normal_sd = float(np.std(ref[normals]))
    shift.margin = float(threshold) - shift.normal_median
    if not shift.margin > 0:
        shift.failures = [f"score (primary): the normal images' median reference score {shift.normal_median:.3g} "
                          f"is not below the threshold {threshold:.3g}: no decision margin to judge a shift by"]
        return shift
    near = np.abs(ref - threshold) <= shift.margin  # never empty: the normals between median and threshold
    moved = cand[near] - ref[near]
    shift.n_near = int(near.sum())
    if moved.size:
        shift.largest_down, shift.largest_up = float(max(0.0, -moved.min())), float(max(0.0, moved.max()))
        shift.mean = float(moved.mean())
    shift.share = max(shift.largest_down, shift.largest_up) / shift.margin
    shift.mean_share = abs(shift.mean) / shift.margin
    shift.failures = _failure_lines(shift)
    return shift
