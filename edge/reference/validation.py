"""Validation during training: held-out normal images and proxy anomalies painted on them, scored by the networks
as they train, and the proxy AUROC of every candidate primary score.

Model selection never looks at the test set. Every validation scores the normals and the proxies
(:mod:`gedge.data.proxy`) with the reference scorer over the same tiles as deployment; each candidate of
:data:`gedge.core.scores.CANDIDATE_SCORES` (a residual score, or a fusion of several as the mean of their
z-scores over the normal tiles) gets the AUROC of its image scores (the maximum over each image's tiles),
normals against proxies. Training keeps the checkpoint whose best candidate has the highest AUROC, and that
candidate becomes the primary score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gedge.core.decision import DecisionRule
from gedge.core.inputs import InputSpec
from gedge.core.metrics import auroc
from gedge.core.preprocess import Preprocess
from gedge.core.scores import CANDIDATE_SCORES, Scores
from gedge.data.proxy import proxy_set
from gedge.data.tiles import network_counts, score_images
from gedge.reference.decision_fit import tile_statistics
from gedge.reference.model import NetD, NetG
from gedge.reference.scoring import ReferenceScorer

# Inputs per batch when validation scores; a different batch size can change the scores' last bits (other
# kernels), and with them which step is selected.
VALIDATION_BATCH = 128


@dataclass
class ValidationResult:
    """One validation: proxy AUROC per score, the best score and its AUROC, the normals' mean D3."""

    step: int
    proxy_auroc: dict[str, float]
    best_score: str
    selection_auroc: float
    recon_l1: float



def image_maxima(values: np.ndarray, counts: list[int]) -> np.ndarray:
    """Each image's score: the maximum of its tiles' values."""
    bounds = np.cumsum([0, *counts])
    return np.array([values[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])])


def candidate_aurocs(normal_tiles: Scores, normal_counts: list[int], proxy_tiles: Scores,
                     proxy_counts: list[int]) -> dict[str, float]:
    """AUROC, normals against proxies, of every candidate primary score (fusions z-scored on the normal tiles)."""
    stats = tile_statistics(normal_tiles)
    labels = np.r_[np.zeros(len(normal_counts)), np.ones(len(proxy_counts))]
    out = {}
    for name in CANDIDATE_SCORES:
        rule = DecisionRule.candidate(name, stats)
        values = np.r_[image_maxima(rule.raw(normal_tiles), normal_counts),
                       image_maxima(rule.raw(proxy_tiles), proxy_counts)]
        out[name] = auroc(labels, values)
    return out


class Validator:
    """Validation normals and their proxy anomalies, painted once; scores networks in training on them."""

    def __init__(self, images: list[np.ndarray], pre: Preprocess, proxies_per_image: int, seed: int,
                 device: str) -> None:
        self.pre = pre
        self.device = device
        self.normals = images
        self.proxies = proxy_set(images, proxies_per_image, seed)
        self.normal_counts = network_counts(images, pre)
        self.proxy_counts = network_counts(self.proxies, pre)
        self.input_spec = InputSpec(size=pre.isize, channels=pre.channels)

    def run(self, netg: NetG, netd: NetD, step: int) -> tuple[ValidationResult, Scores, list[int]]:
        """Proxy AUROC of every candidate, the best one, and the normals' tile scores and tile counts (for the
        decision rule)."""
        scorer = ReferenceScorer.of_networks(netg, netd, self.input_spec, self.device)
        _, normal_tiles = score_images(scorer, self.normals, self.pre, VALIDATION_BATCH)
        _, proxy_tiles = score_images(scorer, self.proxies, self.pre, VALIDATION_BATCH)
        per_score = candidate_aurocs(normal_tiles, self.normal_counts, proxy_tiles, self.proxy_counts)
        best = max(CANDIDATE_SCORES, key=lambda s: (per_score[s], -CANDIDATE_SCORES.index(s)))
        result = ValidationResult(step, per_score, best, per_score[best], float(normal_tiles.d3.mean()))
        return result, normal_tiles, self.normal_counts
