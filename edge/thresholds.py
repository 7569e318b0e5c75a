"""Score normalisation and the decision threshold, from the scores of normal validation images."""

from __future__ import annotations

import numpy as np

from .scores import SCORE_NAMES, Scores
from .scoring import ScoreCalibration


def calibrate_scores(normal_tiles: Scores, normal_images: Scores, primary: str,
                     quantile: float) -> tuple[ScoreCalibration, dict[str, dict[str, float]]]:
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
    return ScoreCalibration(primary=primary, mean=mean, std=std, threshold=threshold, threshold_rule=rule), stats
