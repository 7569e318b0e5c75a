"""What a candidate must meet against the reference, per precision (``gedge parity``, build-time parity and
``gedge calibrate``'s accuracy gate all take their limits from here).

Every limits set gates closeness (relative L2 error) and ranks (Spearman) of every score, whatever the
precision: a candidate whose outputs are constant, shuffled or sign-flipped fails them even where the images
have no labels and every decision happens to agree. INT8's floors are looser than FP16's (8-bit activations
move the residual scores by a few percent) but present; ``docs/int8-calibration.md`` has the measurements they
come from. Non-finite candidate values fail under every limits set (:mod:`gedge.compare.comparator`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from gedge.core.errors import ConfigError


@dataclass(frozen=True)
class ParityLimits:
    """What a candidate of a precision must meet against the reference."""

    precision: str
    max_rel_l2: float  # every score's relative L2 error over the network inputs (amap too, where compared)
    min_spearman: float  # every score's rank correlation over images
    max_auroc_delta: float  # |AUROC(candidate) - AUROC(reference)| of every score, where labels exist
    min_agreement: float | None  # share of all images with the same accept/reject decision; None: not gated
    # "all": |AUROC delta| of every score is gated; "primary": only the drop (reference - candidate) of the
    # primary score, i.e. of the normalised ``score`` output (a gain never fails)
    auroc_scores: str = "all"
    # Labelled images only (None: not gated). The share of the normal images that the candidate rejects and the
    # reference accepts (false rejects the candidate adds), and the agreement over the anomalous images.
    max_new_false_rejects: float | None = None
    min_anomalous_agreement: float | None = None
    # The primary score's shift near the threshold as a share of the decision margin (threshold - the normal images'
    # median score), :mod:`gedge.compare.shift`: the largest, down or up, and the mean (the candidate's bias).
    max_score_shift: float = 0.5
    max_score_bias: float = 0.1
    # The fewest images a limit can judge (:mod:`gedge.compare.sample_size`): every limit over the images, and the
    # limits over one class (the decision margin and false rejects over normals, agreement over anomalies).
    min_images: int = 10
    min_normals: int = 5

    def __post_init__(self) -> None:
        if self.auroc_scores not in ("all", "primary"):
            raise ConfigError(f"auroc_scores must be all or primary, got {self.auroc_scores!r}")
        for name in ("max_rel_l2", "min_spearman", "max_auroc_delta", "max_score_shift", "max_score_bias"):
            value = getattr(self, name)
            if value is None or not math.isfinite(value):
                raise ConfigError(f"the {name} limit must be a number, got {value!r} (every limits set gates it)")
        for name in ("max_score_shift", "max_score_bias"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"the {name} limit is a share of the decision margin, over 0; got "
                                  f"{getattr(self, name)!r}")
        if not (isinstance(self.min_images, int) and isinstance(self.min_normals, int)
                and self.min_images >= 2 and self.min_normals >= 1):
            raise ConfigError(f"min_images must be an integer of at least 2 and min_normals of at least 1, got "
                              f"{self.min_images!r} and {self.min_normals!r}")
        for name in ("min_agreement", "max_new_false_rejects", "min_anomalous_agreement"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"the {name} limit is a share of images, 0 to 1; got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# INT8 floors, from measurement (docs/int8-calibration.md): over the demo model, synthetic metal and a real-wood
# model, the TensorRT and CPU Q/DQ flavours and the OpenVINO IR, on the gate set and the test split, the weakest
# output had rel L2 0.064 and Spearman 0.988. A zeroed or sign-flipped candidate has rel L2 1 and 2, a shuffled one
# Spearman 0.1 at most, a constant one no ranks at all: both floors sit well clear of either side.
INT8_MAX_REL_L2 = 0.25
INT8_MIN_SPEARMAN = 0.9

# The primary score's shift near the threshold, shares of the decision margin (docs/int8-calibration.md, "The score
# shift"): the largest measured INT8 shift was 0.342 of the margin (single images), the largest mean shift 0.036;
# one standard deviation of the normal scores was 0.43 margins or more. The largest shift's limit is the stated
# guarantee (an image more than half a margin from the threshold keeps its decision); the mean's catches a shift
# of one standard deviation or a gain of 0.8 or 1.25, which move every image near the threshold.
INT8_MAX_SCORE_SHIFT = 0.5
INT8_MAX_SCORE_BIAS = 0.1

DEFAULT_LIMITS: dict[str, ParityLimits] = {
    "fp32": ParityLimits("fp32", max_rel_l2=1e-5, min_spearman=0.9999, max_auroc_delta=1e-3, min_agreement=1.0,
                         max_score_shift=1e-3, max_score_bias=1e-3),
    "fp16": ParityLimits("fp16", max_rel_l2=1e-2, min_spearman=0.99, max_auroc_delta=0.01, min_agreement=0.995,
                         max_score_shift=0.02, max_score_bias=0.02),
    "int8": ParityLimits("int8", max_rel_l2=INT8_MAX_REL_L2, min_spearman=INT8_MIN_SPEARMAN, max_auroc_delta=0.01,
                         min_agreement=0.98, auroc_scores="primary", max_score_shift=INT8_MAX_SCORE_SHIFT,
                         max_score_bias=INT8_MAX_SCORE_BIAS),
}

# `gedge calibrate`'s accuracy gate: the INT8 limits, with the decisions split by what the images are. Its images
# are a few real held-out normals and many proxy anomalies painted on them, so one agreement over all of them
# would let the proxies outvote the normals: the normals are gated on the false rejects INT8 adds (at most 2 %
# of them: none of fewer than 50), the proxies on their own agreement.
GATE_LIMITS = replace(DEFAULT_LIMITS["int8"], min_agreement=None, max_new_false_rejects=0.02,
                      min_anomalous_agreement=0.98)


def limits_for(precision: str, **overrides: float | None) -> ParityLimits:
    """The default limits of ``precision`` with the given (not None) limits replaced."""
    if precision not in DEFAULT_LIMITS:
        raise ConfigError(f"precision must be one of {', '.join(DEFAULT_LIMITS)}, got {precision!r}")
    return replace(DEFAULT_LIMITS[precision], **{k: v for k, v in overrides.items() if v is not None})


def gate_limits(**overrides: float | None) -> ParityLimits:
    """The accuracy gate's limits with the given (not None) limits replaced."""
    return replace(GATE_LIMITS, **{k: v for k, v in overrides.items() if v is not None})
