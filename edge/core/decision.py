"""The decision rule (:class:`DecisionRule`): which score is primary, how it is normalised, where the threshold is.

Every artifact carries one; the deployed graph computes ``score = (primary - mean) / std`` and an image is
abnormal above ``threshold``. It is fitted on normal images by :mod:`gedge.reference.decision_fit`; this is
not INT8 calibration (:mod:`gedge.calibrate`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gedge.core.errors import ConfigError
from gedge.core.scores import SCORE_NAMES


@dataclass(frozen=True)
class DecisionRule:
    """How the primary score is normalised and where the decision threshold lies (normalised units)."""

    primary: str = "d1"
    mean: float = 0.0
    std: float = 1.0
    threshold: float = 3.0
    threshold_rule: str = "default: 3 standard deviations above the validation-normal mean"

    def __post_init__(self) -> None:
        if self.primary not in SCORE_NAMES:
            raise ConfigError(f"primary score must be one of {', '.join(SCORE_NAMES)}, got {self.primary!r}")
        if not self.std > 0:
            raise ConfigError(f"score std must be positive, got {self.std}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> DecisionRule:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})
