"""TODO: docstring (split from gedge.scoring)."""

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
