import numpy as np
import pytest
from gedge.core.metrics import auroc, best_f1_threshold, decision_metrics, tpr_at_fpr


def brute_force_auroc(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_auroc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        labels[:2] = [0, 1]
        scores = rng.integers(0, 5, 40).astype(float)  # many ties
        assert auroc(labels, scores) == pytest.approx(brute_force_auroc(labels, scores))


def test_auroc_extremes_and_errors():
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    with pytest.raises(ValueError):
        auroc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError):
        auroc([0, 1], [0.1, float("nan")])


def test_best_f1_and_tpr_at_fpr():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.7, 0.9, 0.95])
    best = best_f1_threshold(labels, scores)
    assert best.threshold == pytest.approx(0.7) and best.f1 == pytest.approx(6 / 7)
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(labels, scores, 0.25) == pytest.approx(1.0)
    m = decision_metrics(labels, scores, 0.75)
    assert m["tpr"] == pytest.approx(2 / 3) and m["fpr"] == pytest.approx(0.25)
