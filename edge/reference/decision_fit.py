"""Score normalisation and the decision threshold, from the scores of normal validation images."""

from __future__ import annotations

import numpy as np
from gedge.core.decision import ScoreCalibration
from gedge.core.scores import SCORE_NAMES, Scores
from gedge.data.tiles import score_images


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


def calibrate_on_normals(checkpoint, normal_images: list[np.ndarray], primary: str = "d1",
                         quantile: float = 0.99):
    """A checkpoint whose score statistics and threshold come from these normal images (for imports)."""
    from dataclasses import replace

    from gedge.reference.decision_fit import calibrate_scores
    from gedge.runtime.torch_backend import TorchBackend

    backend = TorchBackend(checkpoint)
    image_scores, tile_scores = score_images(backend, normal_images, checkpoint.preprocess)
    calibration, stats = calibrate_scores(tile_scores, image_scores, primary, quantile)
    facts = {**checkpoint.facts, "calibrated_on": len(normal_images)}
    return replace(checkpoint, calibration=calibration, score_stats=stats, facts=facts)
