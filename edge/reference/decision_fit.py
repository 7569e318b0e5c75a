"""Score normalisation and the decision threshold, from the scores of normal validation images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from gedge.core.decision import DecisionRule
from gedge.core.scores import SCORE_NAMES, Scores
from gedge.data.tiles import score_images
from gedge.reference.scoring import ReferenceScorer


def fit_decision_rule(normal_tiles: Scores, normal_images: Scores, primary: str,
                     quantile: float) -> tuple[DecisionRule, dict[str, dict[str, float]]]:
    """Normalise the primary score with validation-normal tile statistics; threshold at a normal quantile.

    The threshold is the ``quantile`` of the validation normals' image scores (normalised units): proxy
    anomalies choose the checkpoint and the score, but a threshold fitted to them would be fitted to paint.
    """
    stats = {s: {"mean": float(normal_tiles.named(s).mean()), "std": float(normal_tiles.named(s).std() + 1e-12)}
             for s in SCORE_NAMES}
    mean, std = stats[primary]["mean"], stats[primary]["std"]
    image_scores = (normal_images.named(primary) - mean) / std
    threshold = float(np.quantile(image_scores, quantile))
    rule = f"quantile {quantile:g} of validation-normal image scores ({len(image_scores)} images)"
    return DecisionRule(primary=primary, mean=mean, std=std, threshold=threshold, threshold_rule=rule), stats


def refit_on_normals(checkpoint, normal_images: list[np.ndarray], primary: str = "d1",
                         quantile: float = 0.99):
    """A checkpoint whose score statistics and threshold come from these normal images (for imports)."""
    backend = ReferenceScorer(checkpoint)
    image_scores, tile_scores = score_images(backend, normal_images, checkpoint.preprocess)
    decision, stats = fit_decision_rule(tile_scores, image_scores, primary, quantile)
    facts = {**checkpoint.facts, "calibrated_on": len(normal_images)}
    return replace(checkpoint, decision=decision, score_stats=stats, facts=facts)
