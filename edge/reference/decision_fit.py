"""Fitting the decision rule on normal images: which score is primary, its normalisation, the threshold.

A :class:`gedge.core.decision.DecisionRule` is fitted here, from the reference's scores of normal images only:
training fits it on its validation normals (:func:`fit_decision_rule`), an imported checkpoint is refitted on
a folder of normal images (:func:`refit_on_normals`). This is not INT8 calibration (:mod:`gedge.calibrate`),
which chooses quantisation ranges for a graph.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from gedge.core.decision import DecisionRule
from gedge.core.scores import SCORE_NAMES, Scores
from gedge.data.tiles import score_images
from gedge.reference.checkpoint import Checkpoint
from gedge.reference.scoring import ReferenceScorer


def fit_decision_rule(normal_tiles: Scores, normal_images: Scores, primary: str,
                      quantile: float) -> tuple[DecisionRule, dict[str, dict[str, float]]]:
    """Normalise the primary score with validation-normal tile statistics; threshold at a normal quantile.

    The threshold is the ``quantile`` of the validation normals' image scores (normalised units): proxy
    anomalies choose the checkpoint and the score, but a threshold fitted to them would be fitted to paint.
    Also returns the mean and std of every score over the normal tiles (the checkpoint's ``score_stats``).
    """
    stats = {s: {"mean": float(normal_tiles.named(s).mean()), "std": float(normal_tiles.named(s).std() + 1e-12)}
             for s in SCORE_NAMES}
    mean, std = stats[primary]["mean"], stats[primary]["std"]
    image_scores = (normal_images.named(primary) - mean) / std
    threshold = float(np.quantile(image_scores, quantile))
    rule = f"quantile {quantile:g} of validation-normal image scores ({len(image_scores)} images)"
    return DecisionRule(primary=primary, mean=mean, std=std, threshold=threshold, threshold_rule=rule), stats


def refit_on_normals(checkpoint: Checkpoint, normal_images: list[np.ndarray], primary: str = "d1",
                     quantile: float = 0.99) -> Checkpoint:
    """The checkpoint with its decision rule and score statistics fitted on these normal images (for imports).

    ``normal_images`` are prepared with the checkpoint's preprocessing; the facts record how many there were
    (``decision_fitted_on``).
    """
    scorer = ReferenceScorer(checkpoint)
    image_scores, tile_scores = score_images(scorer, normal_images, checkpoint.preprocess)
    decision, stats = fit_decision_rule(tile_scores, image_scores, primary, quantile)
    facts = {**checkpoint.facts, "decision_fitted_on": len(normal_images)}
    return replace(checkpoint, decision=decision, score_stats=stats, facts=facts)
