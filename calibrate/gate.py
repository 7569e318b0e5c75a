"""The accuracy gate of `gedge calibrate`: parity of each INT8 artifact against the torch reference on held-out
normal images and proxy anomalies painted on them.

The images are the checkpoint's validation normals (``facts["validation_images"]``: held out from training,
never used for calibration) or, for a checkpoint without them (an import), a seeded share of the calibration
sources held out before the patches are drawn. Proxy anomalies (:mod:`gedge.data.proxy`, as training's model
selection uses them) make the set labelled, so AUROC is defined. Test images are never used: the test split's
numbers come from ``gedge parity --data`` afterwards.

With few validation images more proxies are painted per image, so the gate has at least 100 images: agreement
over 40 proxies moves in steps of 2.5 %, and one proxy near the threshold would fail a 98 % limit.

The reference scores the gate images once (:meth:`Gate.open`); every artifact is then compared against those
scores by the comparison driver (:func:`gedge.compare.driver.compare`), with the gate's limits
(:data:`gedge.compare.limits.GATE_LIMITS`) unless overridden: the INT8 closeness and rank floors of every score,
primary-score AUROC drop <= 0.01, and the decisions gated separately by what the images are: the real held-out
normals on the false rejects the artifact adds (at most 2 % of them, so none of fewer than 50), the proxies on
their agreement (>= 98 %). One agreement over both would let the many proxies outvote the few real normals.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gedge.compare.backends import open_candidate, open_reference
from gedge.compare.comparator import BackendScores, ImageSetFacts, ParityReport
from gedge.compare.driver import ComparisonImages, RunSettings, compare, score_backend
from gedge.compare.limits import ParityLimits
from gedge.core.artifacts import Artifact
from gedge.core.errors import DataError
from gedge.data.proxy import KINDS, proxy_set
from gedge.data.tiles import load_prepared
from gedge.reference.checkpoint import Checkpoint

MIN_GATE_IMAGES = 100

Progress = Callable[[int, int], None]


@dataclass
class GateSet:
    images: ComparisonImages  # normals first, then proxies; labelled, with the checkpoint's threshold
    n_normal: int
    n_proxy: int
    paths: list[str]  # the held-out normal images

    @property
    def description(self) -> str:
        return self.images.facts.description


def recorded_validation(checkpoint: Checkpoint) -> list[Path]:
    """The checkpoint's validation images that exist on this machine (all or nothing)."""
    recorded = [Path(p) for p in (checkpoint.facts or {}).get("validation_images", [])]
    if recorded and all(p.is_file() for p in recorded):
        return recorded
    return []


def gate_set(checkpoint: Checkpoint, paths: list[Path], origin: str, proxies_per_image: int | None = None,
             seed: int | None = None) -> GateSet:
    """Held-out normal images and ``proxies_per_image`` proxy-anomalous copies of each (training's defaults)."""
    if not paths:
        raise DataError("no held-out normal images for the accuracy gate")
    train_config = (checkpoint.facts or {}).get("train_config", {})
    # At least MIN_GATE_IMAGES images, so that the proxies' 98 % agreement limit tolerates a flip or two near the
    # threshold instead of none (10 validation images and 3 proxies each would fail on one proxy in 30).
    per_image = proxies_per_image or max(int(train_config.get("proxies_per_image", 3)),
                                         -(-MIN_GATE_IMAGES // len(paths)) - 1)
    seed = int(train_config.get("seed", 0)) + 1 if seed is None else seed
    normals = load_prepared(paths, checkpoint.preprocess)
    proxies = proxy_set(normals, per_image, seed)
    names = [p.name for p in paths]
    names += [f"{paths[i].stem}+{KINDS[(i * per_image + j) % len(KINDS)]}"
              for i in range(len(paths)) for j in range(per_image)]
    labels = np.r_[np.zeros(len(normals), dtype=np.int64), np.ones(len(proxies), dtype=np.int64)]
    description = (f"{len(normals)} held-out normal images ({origin}) and {len(proxies)} proxy anomalies painted "
                   "on them")
    facts = ImageSetFacts(checkpoint.decision.threshold, labels, names, description)
    images = ComparisonImages(normals + proxies, checkpoint.preprocess, facts)
    return GateSet(images, len(normals), len(proxies), [str(p) for p in paths])


@dataclass
class Gate:
    """The gate images, the reference's scores of them (computed once) and the limits every artifact must meet."""

    gate_set: GateSet
    reference: BackendScores
    limits: ParityLimits
    threads: int = 0  # the candidate backends' CPU threads (0: their default)
    batch_size: int = 64

    @classmethod
    def open(cls, checkpoint: Artifact, gate_set: GateSet, limits: ParityLimits,
             settings: RunSettings = RunSettings(), threads: int = 0) -> Gate:
        """Score the gate images with the torch reference of ``checkpoint`` (through the runtime registry)."""
        reference = open_reference(checkpoint)
        with closing(reference.backend):
            scores = score_backend(reference.backend, gate_set.images, settings)
        return cls(gate_set, scores, limits, threads, settings.batch_size)

    def check(self, artifact: Artifact, progress: Progress | None = None) -> ParityReport:
        """An INT8 artifact (opened on its own backend, closed afterwards) against the reference's scores. It has
        no recorded gate yet (this is its gate), so it is opened with ``force``."""
        with closing(open_candidate(artifact, self.threads, force=True)) as candidate:
            return compare(self.reference, candidate, self.gate_set.images, self.limits,
                           RunSettings(self.batch_size, progress))


def gate_summary(report: ParityReport) -> dict:
    """The numbers a sidecar records: per-score AUROC, primary drop, Spearman, agreement, the normals' and the
    proxies' decisions with their limits, verdict."""
    score = report.output("score")
    decisions, limits = report.decisions, report.limits
    normals, proxies = decisions.normal, decisions.anomalous
    return {"passed": report.passed, "data": report.data, "n_images": report.n_images,
            "auroc_reference": score.auroc_reference, "auroc_int8": score.auroc_candidate,
            "auroc_drop": None if score.auroc_delta is None else -score.auroc_delta,
            "spearman": score.spearman, "agreement": decisions.agreement,
            "normals": None if normals is None else {**normals.to_dict(),
                                                     "max_new_false_rejects": limits.max_new_false_rejects},
            "proxies": None if proxies is None else {**proxies.to_dict(),
                                                     "min_agreement": limits.min_anomalous_agreement},
            "shift": None if report.shift is None else report.shift.to_dict(),
            "limits": limits.to_dict(), "failures": report.failures,
            "auroc": {row.name: {"reference": row.auroc_reference, "int8": row.auroc_candidate,
                                 "delta": row.auroc_delta, "spearman": row.spearman, "rel_l2": row.rel_l2}
                      for row in report.outputs}}
