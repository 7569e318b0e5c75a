"""Validation during training: held-out normal images and proxy anomalies painted on them, scored by the networks
as they train, and the proxy AUROC of every candidate primary score.

Model selection never looks at the test set. Every validation scores the normals and the proxies
(:mod:`gedge.data.proxy`) with the reference scorer over the same tiles as deployment; each candidate of
:data:`gedge.core.scores.CANDIDATE_SCORES` (a residual score, or a fusion of several as the mean of their
z-scores over the normal tiles) gets the AUROC of its image scores (the maximum over each image's tiles),
normals against proxies.

The primary score is :data:`DEFAULT_SCORE` unless the user names another (``gedge train --primary``): on real
materials the painted proxies favoured scores that lost on the labelled test images (docs/results.md), so they
choose the checkpoint, not the score. ``--primary auto`` lets them choose the score too, on evidence rather than
on the highest number: :func:`choose_score` keeps :data:`DEFAULT_SCORE` unless another candidate beats it in at
least :data:`CONFIDENCE` of paired bootstrap resamples of the validation images. Training keeps the checkpoint
whose primary score has the highest proxy AUROC.
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

# The primary score unless validation shows another candidate to be better: D3 at the defect's scale, the residual
# of the image itself, which the denoising generator makes largest where something does not belong
# (docs/training.md has the cross-material measurements behind it).
DEFAULT_SCORE = "d3_local"
AUTO_PRIMARY = "auto"  # the primary setting that lets every validation choose the score (choose_score)
CONFIDENCE = 0.95  # share of bootstrap resamples a challenger must win to replace the default
BOOTSTRAP = 200  # paired resamples of the validation images
# Below this proxy AUROC of the chosen score, validation cannot tell the proxies from the normals: the choices
# made on it are noise, and training says so.
NOISE_AUROC = 0.6
# Fewer validation images than this (few, large images: line-scan strips), and patch mode: each is cut into square
# regions, the units normals and proxies are counted in, so that one image more or less does not move the AUROC
# in steps of a tenth.
MIN_UNITS = 40
# The most proxies a validation paints (fewer per image when there are many validation images, at least one each):
# every proxy is scored at every validation, and large sets already give the AUROC its resolution.
MAX_PROXIES = 160


def validation_units(images: list[np.ndarray], pre: Preprocess, min_units: int = MIN_UNITS) -> list[np.ndarray]:
    """The images validation counts in: the prepared images themselves, or, in patch mode when there are fewer than
    ``min_units``, their square regions of the largest side (a multiple of the tile, at least two tiles) that gives
    ``min_units`` regions or more (two tiles when none does)."""
    if pre.mode != "patch" or len(images) >= min_units:
        return images
    shortest = min(min(im.shape[:2]) for im in images)
    sides = [k * pre.isize for k in range(shortest // pre.isize, 1, -1)]
    for side in sides:
        regions = [im[y:y + side, x:x + side] for im in images
                   for y in range(0, im.shape[0] - side + 1, side) for x in range(0, im.shape[1] - side + 1, side)]
        if len(regions) >= min_units or side == sides[-1]:
            return regions
    return images


@dataclass
class ValidationResult:
    """One validation: proxy AUROC per score, the primary score (``best_score``: the configured one, or
    :func:`choose_score`'s choice) and its AUROC, the normals' mean D3."""

    step: int
    proxy_auroc: dict[str, float]
    best_score: str
    selection_auroc: float
    recon_l1: float



def image_maxima(values: np.ndarray, counts: list[int]) -> np.ndarray:
    """Each image's score: the maximum of its tiles' values."""
    bounds = np.cumsum([0, *counts])
    return np.array([values[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])])


def candidate_values(normal_tiles: Scores, normal_counts: list[int], proxy_tiles: Scores,
                     proxy_counts: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per candidate primary score: the image scores of the normals and of the proxies (fusions z-scored on the
    normal tiles)."""
    stats = tile_statistics(normal_tiles)
    out = {}
    for name in CANDIDATE_SCORES:
        rule = DecisionRule.candidate(name, stats)
        out[name] = (image_maxima(rule.raw(normal_tiles), normal_counts),
                     image_maxima(rule.raw(proxy_tiles), proxy_counts))
    return out


def candidate_aurocs(normal_tiles: Scores, normal_counts: list[int], proxy_tiles: Scores,
                     proxy_counts: list[int]) -> dict[str, float]:
    """AUROC, normals against proxies, of every candidate primary score (fusions z-scored on the normal tiles)."""
    values = candidate_values(normal_tiles, normal_counts, proxy_tiles, proxy_counts)
    return {name: pair_auroc(*pair) for name, pair in values.items()}


def pair_auroc(normal: np.ndarray, proxy: np.ndarray) -> float:
    return auroc(np.r_[np.zeros(len(normal)), np.ones(len(proxy))], np.r_[normal, proxy])


def win_share(challenger: tuple[np.ndarray, np.ndarray], default: tuple[np.ndarray, np.ndarray],
              resamples: int = BOOTSTRAP, seed: int = 0) -> float:
    """The share of paired bootstrap resamples (normals and proxies drawn with replacement, the same draw for both
    scores) in which ``challenger``'s AUROC is higher than ``default``'s."""
    rng = np.random.default_rng(seed)
    n, m = len(default[0]), len(default[1])
    wins = 0
    for _ in range(resamples):
        i, j = rng.integers(0, n, n), rng.integers(0, m, m)
        wins += pair_auroc(challenger[0][i], challenger[1][j]) > pair_auroc(default[0][i], default[1][j])
    return wins / resamples


def choose_score(values: dict[str, tuple[np.ndarray, np.ndarray]], aurocs: dict[str, float],
                 default: str = DEFAULT_SCORE) -> str:
    """:data:`DEFAULT_SCORE`, unless the candidate with the highest proxy AUROC beats it in at least
    :data:`CONFIDENCE` of paired bootstrap resamples of the validation images."""
    best = max(CANDIDATE_SCORES, key=lambda s: (aurocs[s], -CANDIDATE_SCORES.index(s)))
    if best == default or aurocs[best] <= aurocs[default]:
        return default
    return best if win_share(values[best], values[default]) >= CONFIDENCE else default


class Validator:
    """Validation normals and their proxy anomalies, painted once; scores networks in training on them."""

    def __init__(self, images: list[np.ndarray], pre: Preprocess, proxies_per_image: int, seed: int,
                 device: str, primary: str = DEFAULT_SCORE) -> None:
        self.pre = pre
        self.primary = primary  # a candidate score, or AUTO_PRIMARY: choose_score at every validation
        self.device = device
        self.normals = images  # whole: the decision rule is fitted on their image scores
        self.units = validation_units(images, pre)
        per_unit = max(1, min(proxies_per_image, MAX_PROXIES // len(self.units)))
        self.proxies = proxy_set(self.units, per_unit, seed)
        self.normal_counts = network_counts(images, pre)
        self.unit_counts = network_counts(self.units, pre)
        self.proxy_counts = network_counts(self.proxies, pre)
        self.input_spec = InputSpec(size=pre.isize, channels=pre.channels)

    def run(self, netg: NetG, netd: NetD, step: int) -> tuple[ValidationResult, Scores, list[int]]:
        """Proxy AUROC of every candidate, the primary one, and the normals' tile scores and tile counts (for the
        decision rule)."""
        scorer = ReferenceScorer.of_networks(netg, netd, self.input_spec, self.device)
        _, normal_tiles = score_images(scorer, self.normals, self.pre, VALIDATION_BATCH)
        unit_tiles = normal_tiles
        if self.units is not self.normals:
            _, unit_tiles = score_images(scorer, self.units, self.pre, VALIDATION_BATCH)
        _, proxy_tiles = score_images(scorer, self.proxies, self.pre, VALIDATION_BATCH)
        values = candidate_values(unit_tiles, self.unit_counts, proxy_tiles, self.proxy_counts)
        per_score = {name: pair_auroc(*pair) for name, pair in values.items()}
        chosen = choose_score(values, per_score) if self.primary == AUTO_PRIMARY else self.primary
        result = ValidationResult(step, per_score, chosen, per_score[chosen], float(normal_tiles.d3.mean()))
        return result, normal_tiles, self.normal_counts
