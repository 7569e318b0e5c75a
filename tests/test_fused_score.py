"""A fused primary score (the mean z-score of several residual scores): fitted on normals, computed by the torch
reference and by the exported graph alike, and offered to model selection as a candidate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from gedge.core import artifacts
from gedge.core.decision import DecisionRule
from gedge.core.errors import ConfigError
from gedge.core.scores import CANDIDATE_SCORES, SCORE_NAMES, Scores, components
from gedge.data.datasets import open_dataset
from gedge.data.tiles import load_prepared, network_counts, score_images
from gedge.reference.decision_fit import fit_decision_rule
from gedge.reference.scoring import ReferenceScorer
from gedge.reference.validation import candidate_aurocs


def test_primary_names():
    assert components("d1_local+d3_local") == ("d1_local", "d3_local") and components("d2") == ("d2",)
    for bad in ("d9", "d1+d1", "d1+", "score"):
        with pytest.raises(ConfigError):
            components(bad)
    with pytest.raises(ConfigError, match="mean and a positive std"):
        DecisionRule("d1+d3")  # a fusion needs its components' statistics
    assert set(SCORE_NAMES) < set(CANDIDATE_SCORES)


def _tiles(values: dict[str, np.ndarray]) -> Scores:
    n = len(next(iter(values.values())))
    return Scores.from_dict({**{s: values.get(s, np.zeros(n)) for s in SCORE_NAMES}, "score": np.zeros(n)})


def test_a_fusion_sees_what_either_component_sees():
    """Two scores each see half of the anomalies: alone each ranks at about 0.75, their fusion near 1."""
    rng = np.random.default_rng(0)
    normal = _tiles({"d1_local": rng.normal(0, 1, 200), "d3_local": rng.normal(5, 2, 200)})
    a = np.r_[rng.normal(6, 1, 100), rng.normal(0, 1, 100)]  # the first half: high d1_local only
    b = np.r_[rng.normal(5, 2, 100), rng.normal(17, 2, 100)]  # the second half: high d3_local only
    proxy = _tiles({"d1_local": a, "d3_local": b})
    result = candidate_aurocs(normal, [1] * 200, proxy, [1] * 200)
    assert set(result) == set(CANDIDATE_SCORES)
    assert result["d1_local"] < 0.8 and result["d3_local"] < 0.8 and result["d1_local+d3_local"] > 0.95


def test_fused_rule_in_the_reference_and_the_graph(scorer_graphs, tmp_path):
    from gedge.export.onnx_export import ExportOptions, export_checkpoint
    from gedge.reference.checkpoint import save_checkpoint
    from gedge.runtime.registry import open_backend

    checkpoint = scorer_graphs["model"]
    pre = checkpoint.preprocess
    normals = load_prepared(open_dataset(scorer_graphs["data"]).train, pre)
    _, tiles = score_images(ReferenceScorer(checkpoint), normals, pre)
    rule, stats = fit_decision_rule(tiles, network_counts(normals, pre), "d1_local+d3_local", 0.99)
    assert rule.component_mean == (stats["d1_local"]["mean"], stats["d3_local"]["mean"])
    fused = replace(checkpoint, decision=rule)
    _, fused_tiles = score_images(ReferenceScorer(fused), normals, pre)
    expected = (rule.raw(fused_tiles) - rule.mean) / rule.std
    assert np.allclose(fused_tiles.score, expected, rtol=1e-5, atol=1e-5)
    assert abs(float(np.mean(expected))) < 1e-3  # normalised on these very tiles: mean 0
    path = save_checkpoint(fused, tmp_path / "fused.pt")
    graph = export_checkpoint(artifacts.open(path), tmp_path / "fused.onnx", ExportOptions()).path
    backend = open_backend(graph, "onnxruntime", threads=1)
    _, graph_tiles = score_images(backend, normals, pre)
    backend.close()
    assert np.linalg.norm(graph_tiles.score - fused_tiles.score) <= 1e-5 * np.linalg.norm(fused_tiles.score)
