"""Layer sensitivity and the accuracy-aware fallback of `gedge calibrate`: the gate is the metric.

Both work on one target's artifact through a *measure* callable: given the layers to keep in float (beyond the
ones the target leaves in float by design), it writes the artifact, runs the accuracy gate on it and returns
the gate's :class:`~gedge.compare.comparator.ParityReport`. Nothing here knows how an artifact is made.

* :func:`sensitivity` (``--report``) measures every quantized layer twice on the gate images: quantized alone
  (every other convolution in float), which shows the error the layer brings by itself, and left alone in
  float (every other quantized layer in INT8), which shows what keeping it in float would buy. Each row has the
  primary score's relative L2 error against the reference, the decisions that flip, and the largest share of a
  gate limit used (:func:`limit_ratio`; above 1 a limit is missed). Rows are ordered by harm: that share with
  the layer quantized alone, so the binding check decides (the decisions, or another score's rank correlation).
* :func:`fall_back` runs when an artifact fails its gate: it keeps the most harmful layers in float one at a
  time, in harm order, and stops as soon as the gate passes. A layer that would leave less than
  :data:`MIN_INT8_SHARE` of the multiply-adds the target quantizes in INT8 is skipped; when no layer is left to try,
  the fallback gives up and the artifact fails as before. The harm
  order comes from the sensitivity rows when they were measured, otherwise from the quantized-alone half only.
  A layer kept in float stays FP32 in the graph; a TensorRT build runs it in FP32 (FP16 where the engine is
  built with FP16 allowed), ONNX Runtime and OpenVINO in FP32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gedge.calibrate.layers import Layer, int8_share
from gedge.compare.comparator import ParityReport

MIN_INT8_SHARE = 0.5  # the fallback gives up rather than leave less than half the multiply-adds in INT8

Measure = Callable[[tuple[str, ...]], ParityReport]  # layers kept in float -> the gate's report
Progress = Callable[[int, int], None]


def _used(value: float | None, limit: float | None, worst: float = 1e3) -> float:
    """``value`` as a share of ``limit`` (a missing or non-finite value is the worst case)."""
    if limit is None:
        return 0.0
    if value is None or value != value:
        return worst
    return value / limit if limit > 0 else (0.0 if value <= 0 else worst)


def limit_ratio(report: ParityReport) -> float:
    """The largest share of a gate limit the candidate uses, over every output and decision check (above 1: that
    limit is missed). One number for "how close to failing", whichever check is the binding one: the primary
    score's decisions, or another score's rank correlation."""
    limits, ratios = report.limits, []
    for row in report.outputs:
        ratios.append(_used(row.rel_l2, limits.max_rel_l2))
        if row.name != "amap":
            ratios.append(_used(None if row.spearman is None else 1 - row.spearman, 1 - limits.min_spearman))
        if row.name == "score" and row.auroc_delta is not None:
            ratios.append(_used(max(0.0, -row.auroc_delta), limits.max_auroc_delta))
    decisions = report.decisions
    if limits.min_agreement is not None:
        ratios.append(_used(1 - decisions.agreement, 1 - limits.min_agreement))
    if decisions.normal is not None and limits.max_new_false_rejects is not None:
        ratios.append(_used(decisions.normal.new_reject_rate, limits.max_new_false_rejects))
    if decisions.anomalous is not None and limits.min_anomalous_agreement is not None:
        ratios.append(_used(1 - decisions.anomalous.agreement, 1 - limits.min_anomalous_agreement))
    return max(ratios, default=0.0)


@dataclass(frozen=True)
class GateOutcome:
    """What one gate run says, in the numbers the tables show."""

    passed: bool
    rel_l2: float  # of the primary score against the reference
    flips: int  # images whose decision differs from the reference's
    n_images: int
    limit_ratio: float  # the largest share of a gate limit used (see :func:`limit_ratio`)
    failures: tuple[str, ...] = ()

    @classmethod
    def of(cls, report: ParityReport) -> GateOutcome:
        return cls(report.passed, report.output("score").rel_l2, report.decisions.n_disagree, report.n_images,
                   limit_ratio(report), tuple(report.failures))

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rel_l2": self.rel_l2, "flips": self.flips, "n_images": self.n_images,
                "limit_ratio": self.limit_ratio, "failures": list(self.failures)}


@dataclass(frozen=True)
class LayerHarm:
    """One quantized layer's effect on the gate images, quantized alone and left alone in float."""

    layer: Layer
    alone: GateOutcome  # only this layer in INT8
    left_float: GateOutcome | None = None  # every other quantized layer in INT8, this one in float

    def to_dict(self) -> dict[str, Any]:
        row = {"layer": self.layer.name, "op_type": self.layer.op_type, "network": self.layer.network,
               "macs": self.layer.macs, "alone_rel_l2": self.alone.rel_l2, "alone_flips": self.alone.flips,
               "alone_limit_ratio": self.alone.limit_ratio}
        if self.left_float is not None:
            row.update(float_rel_l2=self.left_float.rel_l2, float_flips=self.left_float.flips,
                       float_limit_ratio=self.left_float.limit_ratio, float_passes=self.left_float.passed)
        return row


def by_harm(rows: list[LayerHarm]) -> list[LayerHarm]:
    """Most harmful first: the share of the gate's limits the layer uses when quantized alone (so the binding
    check decides, whichever output it is on), then the decisions it flips, then the primary score's error."""
    return sorted(rows, key=lambda row: (row.alone.limit_ratio, row.alone.flips, row.alone.rel_l2), reverse=True)


def sensitivity(layers: list[Layer], measure: Measure, both: bool = True,
                progress: Progress | None = None) -> list[LayerHarm]:
    """Every layer quantized alone (and, with ``both``, left alone in float), ordered by harm."""
    names = tuple(layer.name for layer in layers)
    rows, total = [], len(layers) * (2 if both else 1)
    for i, layer in enumerate(layers):
        alone = GateOutcome.of(measure(tuple(n for n in names if n != layer.name)))
        left = GateOutcome.of(measure((layer.name,))) if both else None
        rows.append(LayerHarm(layer, alone, left))
        if progress:
            progress((i + 1) * (2 if both else 1), total)
    return by_harm(rows)


@dataclass
class FallbackResult:
    """What the fallback did: the layers it kept in float, the INT8 share left, the gate before and after."""

    kept: list[str]
    int8_share_before: float
    int8_share: float
    before: GateOutcome
    after: GateOutcome
    trials: list[dict[str, Any]] = field(default_factory=list)  # each step: kept so far, its gate outcome
    reason: str = ""
    report: ParityReport | None = None  # the passing trial's full gate report (its artifact is the last written)

    @property
    def passed(self) -> bool:
        return self.after.passed

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "kept_float": self.kept, "int8_mac_share_before": self.int8_share_before,
                "int8_mac_share": self.int8_share, "gate_before": self.before.to_dict(),
                "gate_after": self.after.to_dict(), "trials": self.trials, "reason": self.reason}


def fall_back(layers: list[Layer], total_macs: int, before: ParityReport, measure: Measure,
              harm: list[LayerHarm]) -> FallbackResult:
    """Keep the layers of ``harm`` (most harmful first) in float one at a time until the gate passes. A layer is
    skipped when keeping it would leave less than half of the multiply-adds the target quantizes (``layers``) in
    INT8: the CPU flavour, for one, quantizes only the Conv layers, so the floor is the target's own INT8 work.
    The shares reported are of every convolution's multiply-adds (``total_macs``)."""
    first = GateOutcome.of(before)
    own = sum(layer.macs for layer in layers)
    share_before = int8_share(layers, total_macs)
    result = FallbackResult([], share_before, share_before, first, first)
    kept: list[str] = []
    skipped: list[str] = []
    for row in harm:
        if int8_share(layers, own, [*kept, row.layer.name]) < MIN_INT8_SHARE:  # a smaller layer may still fit
            skipped.append(row.layer.name)
            continue
        share = int8_share(layers, total_macs, [*kept, row.layer.name])
        kept.append(row.layer.name)
        report = measure(tuple(kept))
        outcome = GateOutcome.of(report)
        result.trials.append({"kept_float": list(kept), "int8_mac_share": share, **outcome.to_dict()})
        if outcome.passed:
            result.kept, result.int8_share, result.after, result.report = list(kept), share, outcome, report
            result.reason = f"the gate passes with {len(kept)} layer(s) in float ({share:.1%} of the MACs in INT8)"
            return result
    result.reason = (f"the gate did not pass with {len(kept)} layer(s) in float"
                     + (f"; {', '.join(skipped)} would have left less than {MIN_INT8_SHARE:.0%} of the "
                        "multiply-adds this target quantizes in INT8" if skipped else ""))
    return result
