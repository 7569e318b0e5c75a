"""What a candidate must meet against the reference, per precision (``gedge parity``, build-time parity and
``gedge calibrate``'s accuracy gate all take their limits from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from gedge.core.errors import ConfigError


@dataclass(frozen=True)
class ParityLimits:
    """What a candidate of a precision must meet against the reference."""

    precision: str
    max_rel_l2: float | None  # every score's relative L2 error (amap too, where compared); None: not gated
    min_spearman: float | None  # every score's rank correlation over images; None: not gated
    max_auroc_delta: float  # |AUROC(candidate) - AUROC(reference)| of every score, where labels exist
    min_agreement: float  # fraction of images with the same accept/reject decision
    # "all": |AUROC delta| of every score is gated; "primary": only the drop (reference - candidate) of the
    # primary score, i.e. of the normalised ``score`` output (a gain never fails)
    auroc_scores: str = "all"

    def __post_init__(self) -> None:
        if self.auroc_scores not in ("all", "primary"):
            raise ConfigError(f"auroc_scores must be all or primary, got {self.auroc_scores!r}")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_LIMITS: dict[str, ParityLimits] = {
    "fp32": ParityLimits("fp32", max_rel_l2=1e-5, min_spearman=0.9999, max_auroc_delta=1e-3, min_agreement=1.0),
    "fp16": ParityLimits("fp16", max_rel_l2=1e-2, min_spearman=0.99, max_auroc_delta=0.01, min_agreement=0.995),
    # `gedge calibrate`'s accuracy gate: primary-score AUROC drop <= 0.01, >= 98 % identical decisions.
    "int8": ParityLimits("int8", max_rel_l2=None, min_spearman=None, max_auroc_delta=0.01, min_agreement=0.98,
                         auroc_scores="primary"),
}


def limits_for(precision: str, **overrides: float | None) -> ParityLimits:
    """The default limits of ``precision`` with the given (not None) limits replaced."""
    if precision not in DEFAULT_LIMITS:
        raise ConfigError(f"precision must be one of {', '.join(DEFAULT_LIMITS)}, got {precision!r}")
    return replace(DEFAULT_LIMITS[precision], **{k: v for k, v in overrides.items() if v is not None})
