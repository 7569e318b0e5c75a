"""The decision rule (:class:`DecisionRule`): which score is primary, how it is normalised, where the threshold is.

Every artifact carries one; the deployed graph computes ``score = (primary - mean) / std`` and an image is
abnormal above ``threshold``. A fused primary (``d1_local+d3_local``) is the mean of its components' z-scores
(``component_mean``, ``component_std``: the normal tiles' statistics), normalised the same way.

It is fitted on normal images by :mod:`gedge.reference.decision_fit`; this is not INT8 calibration
(:mod:`gedge.calibrate`). `gedge threshold` (:mod:`gedge.report.refit`) may move the threshold afterwards; either way
the rule records where its threshold comes from (:class:`ThresholdSource`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
from gedge.core.errors import ConfigError
from gedge.core.scores import Scores, components, fused


@dataclass(frozen=True)
class ThresholdSource:
    """How a decision threshold was placed: the method (and target rate), the data and how many images of each
    label, and for a refit (`gedge threshold`) the model scored, the threshold and rule it replaced, when, and the
    gedge version. Its JSON form is ``threshold_source`` in a decision rule (``docs/schemas``); facts a later version
    adds are kept in ``extra``. Empty for a rule written before gedge recorded it (``threshold_rule`` still says
    how)."""

    method: str = ""
    data: str = ""
    n_images: int | None = None
    n_normal: int | None = None
    n_defective: int | None = None
    escape_rate: float | None = None  # a refit's target (the other target is None)
    false_reject_rate: float | None = None
    fitted_with: str = ""  # the model file scored for a refit
    previous_threshold: float | None = None
    previous_rule: str = ""
    fitted_at: str = ""
    gedge_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The recorded facts (those not recorded are left out; a refit's unused target is null)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        refit = self.previous_threshold is not None
        kept = {k: v for k, v in values.items() if v not in (None, "") or (refit and k.endswith("_rate"))}
        return {**kept, **self.extra}

    @classmethod
    def from_dict(cls, values: Any) -> ThresholdSource:
        if isinstance(values, ThresholdSource):
            return values
        if not isinstance(values, dict):
            raise ConfigError(f"threshold_source must be a mapping, got {values!r}")
        names = {f.name for f in fields(cls)} - {"extra"}
        try:
            known = {k: _typed(k, v) for k, v in values.items() if k in names}
        except (TypeError, ValueError):
            raise ConfigError(f"threshold_source does not parse: {values!r}") from None
        return cls(**known, extra={k: v for k, v in values.items() if k not in names})


_SOURCE_COUNTS = ("n_images", "n_normal", "n_defective")
_SOURCE_NUMBERS = ("escape_rate", "false_reject_rate", "previous_threshold")


def _typed(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in _SOURCE_COUNTS:
        return int(value)
    return float(value) if key in _SOURCE_NUMBERS else str(value)


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
    threshold_source: ThresholdSource = field(default_factory=ThresholdSource, compare=False)

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
        return {**asdict(self), "threshold_source": self.threshold_source.to_dict()}

    def refitted(self, threshold: float, rule: str, source: ThresholdSource) -> DecisionRule:
        """The rule with its threshold moved (`gedge threshold`), the new rule and source recorded."""
        return replace(self, threshold=float(threshold), threshold_rule=rule, threshold_source=source)

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
        if "threshold_source" in known:
            known["threshold_source"] = ThresholdSource.from_dict(known["threshold_source"])
        return cls(**known)
