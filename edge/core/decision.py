"""The decision rule (:class:`DecisionRule`): which score is primary, how it is normalised, where the threshold is.

Every artifact carries one; the deployed graph computes ``score = (primary - mean) / std`` and an image is
abnormal above ``threshold``. A fused primary (``d1_local+d3_local``) is the mean of its components' z-scores
(``component_mean``, ``component_std``: the normal tiles' statistics), normalised the same way.

It is fitted on normal images by :mod:`gedge.reference.decision_fit`; this is not INT8 calibration
(:mod:`gedge.calibrate`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from gedge.core.errors import ConfigError
from gedge.core.scores import Scores, components, fused


@dataclass(frozen=True)
class DecisionRule:
    """How the primary score is normalised and where the decision threshold lies (normalised units)."""

    primary: str = "d1"
    mean: float = 0.0
    std: float = 1.0
    threshold: float = 3.0
    threshold_rule: str = "default: 3 standard deviations above the validation-normal mean"
    component_mean: tuple[float, ...] = ()  # a fused primary: each component's mean over normal tiles
    component_std: tuple[float, ...] = ()
    # How the threshold was placed: method, the data and how many images of each label, when, the one it replaced
    # (`gedge threshold`); empty for a rule written before gedge recorded it (threshold_rule still says how).
    threshold_source: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        parts = components(self.primary)
        if not self.std > 0:
            raise ConfigError(f"score std must be positive, got {self.std}")
        if len(parts) > 1 and not (len(self.component_mean) == len(self.component_std) == len(parts)
                                   and all(s > 0 for s in self.component_std)):
            raise ConfigError(f"the fused primary score {self.primary} needs a mean and a positive std per component")

    @property
    def components(self) -> tuple[str, ...]:
        return components(self.primary)

    def raw(self, scores: Scores) -> np.ndarray:
        """The primary score of each input before normalisation (a fusion: the mean of its components' z)."""
        parts = self.components
        if len(parts) == 1:
            return np.asarray(scores.named(parts[0]), dtype=np.float64)
        return fused({p: scores.named(p) for p in parts}, parts, self.component_mean, self.component_std)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def candidate(cls, name: str, stats: dict[str, dict[str, float]]) -> DecisionRule:
        """The unnormalised rule of a candidate primary score; a fusion takes its components' ``mean`` and ``std``
        from ``stats`` (per score, over normal tiles: a checkpoint's ``score_stats``)."""
        parts = components(name)
        if len(parts) == 1:
            return cls(name)
        return cls(name, component_mean=tuple(stats[p]["mean"] for p in parts),
                   component_std=tuple(stats[p]["std"] for p in parts))

    @classmethod
    def from_dict(cls, values: dict) -> DecisionRule:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        for key in ("component_mean", "component_std"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        if not isinstance(known.get("threshold_source", {}), dict):
            raise ConfigError(f"threshold_source must be a mapping, got {known['threshold_source']!r}")
        return cls(**known)
