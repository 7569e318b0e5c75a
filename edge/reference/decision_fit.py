"""Fitting the decision rule on normal images: which score is primary, its normalisation, the threshold.

A :class:`gedge.core.decision.DecisionRule` is fitted here, from the reference's scores of normal images only:
training fits it on its validation normals (:func:`fit_decision_rule`), an imported checkpoint is refitted on
a folder of normal images (:func:`refit_on_normals`). This is not INT8 calibration (:mod:`gedge.calibrate`),
which chooses quantisation ranges for a graph.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from gedge.core.decision import DecisionRule, ThresholdSource
from gedge.core.scores import SCORE_NAMES, Scores, components
from gedge.data.tiles import network_counts, score_images
from gedge.reference.checkpoint import Checkpoint
from gedge.reference.scoring import ReferenceScorer


def tile_statistics(normal_tiles: Scores) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of every residual score over normal tiles (a checkpoint's ``score_stats``)."""
    return {s: {"mean": float(normal_tiles.named(s).mean()), "std": float(normal_tiles.named(s).std() + 1e-12)}
            for s in SCORE_NAMES}


def fit_decision_rule(normal_tiles: Scores, counts: list[int], primary: str, quantile: float,
                      data: str = "validation normals") -> tuple[DecisionRule, dict[str, dict[str, float]]]:
    """Normalise the primary score with validation-normal tile statistics; threshold at a normal quantile.

    ``counts``: the tiles of each normal image, in order. A fused primary is first made of its components'
    z-scores (with the same statistics). The threshold is the ``quantile`` of the validation normals' image
    scores (the maximum over each image's tiles, normalised): proxy anomalies choose the checkpoint and the
    score, but a threshold fitted to them would be fitted to paint. ``data`` names the images in the rule's
    ``threshold_source``. Also returns every score's statistics.
    """
    stats = tile_statistics(normal_tiles)
    parts = components(primary)
    component_mean = tuple(stats[p]["mean"] for p in parts) if len(parts) > 1 else ()
    component_std = tuple(stats[p]["std"] for p in parts) if len(parts) > 1 else ()
    raw = DecisionRule(primary, component_mean=component_mean, component_std=component_std).raw(normal_tiles)
    mean, std = float(raw.mean()), float(raw.std() + 1e-12)
    bounds = np.cumsum([0, *counts])
    image_scores = np.array([((raw[a:b] - mean) / std).max() for a, b in zip(bounds[:-1], bounds[1:])])
    threshold = float(np.quantile(image_scores, quantile))
    rule = f"quantile {quantile:g} of validation-normal image scores ({len(image_scores)} images)"
    source = ThresholdSource(f"quantile {quantile:g} of normal image scores", data, n_normal=len(image_scores),
                             n_defective=0)
    return DecisionRule(primary, mean, std, threshold, rule, component_mean, component_std, source), stats


def refit_on_normals(checkpoint: Checkpoint, normal_images: list[np.ndarray], primary: str = "d1",
                     quantile: float = 0.99) -> Checkpoint:
    """The checkpoint with its decision rule and score statistics fitted on these normal images (for imports).

    ``normal_images`` are prepared with the checkpoint's preprocessing; the facts record how many there were
    (``decision_fitted_on``).
    """
    scorer = ReferenceScorer(checkpoint)
    _, tile_scores = score_images(scorer, normal_images, checkpoint.preprocess)
    decision, stats = fit_decision_rule(tile_scores, network_counts(normal_images, checkpoint.preprocess), primary,
                                        quantile, "normal training images")
    facts = {**checkpoint.facts, "decision_fitted_on": len(normal_images)}
    return replace(checkpoint, decision=decision, score_stats=stats, facts=facts)
