"""`gedge study quality`: the summary's arithmetic (checked by hand on made-up runs), and a real study over two small
materials that trains, evaluates, writes its tables and reuses finished runs."""

from __future__ import annotations

import json

import pytest
from gedge.core.scores import CANDIDATE_SCORES
from gedge.reference.quality_study import QualityRun, summarise

from tests.clirun import assert_one_line, cli, run_main
from tests.helpers import make_mvtec


def _run(seed: int, primary: str, auroc: float, candidates: dict[str, float]) -> QualityRun:
    full = {name: 0.5 for name in CANDIDATE_SCORES}
    full.update(candidates)
    return QualityRun("wood", seed, f"wood_s{seed}.pt", primary, auroc, full, None, None,
                      {"preprocess": {"mode": "patch", "isize": 32, "scale": 0.5}}, 100.0 * (seed + 1))


def test_summary_by_hand():
    runs = [_run(0, "d3_local", 0.90, {"d3_local": 0.90, "d1": 0.95}),  # d1 was better: choice not the best
            _run(1, "d3_local", 0.94, {"d3_local": 0.94, "d1": 0.80}),
            _run(2, "d1", 0.98, {"d3_local": 0.70, "d1": 0.98})]
    s = summarise("wood", "/data/wood", runs)
    # primary: 0.90, 0.94, 0.98 -> mean 0.94, population std sqrt(((-.04)^2 + 0 + .04^2) / 3) = 0.03266, spread 0.08
    assert s.primary[0] == pytest.approx(0.94) and s.primary[1] == pytest.approx(0.032660, abs=1e-6)
    assert s.primary[2] == pytest.approx(0.08)
    assert s.candidates["d1"][0] == pytest.approx((0.95 + 0.80 + 0.98) / 3)
    assert s.chosen == ["d3_local", "d3_local", "d1"] and s.choice_is_best == 2
    assert s.train_seconds == pytest.approx(200.0) and s.pixel_auroc is None


def test_study_trains_evaluates_and_resumes(tmp_path, capsys):
    a = make_mvtec(tmp_path / "boards", n_train=6, n_good=3, n_bad=3, size=32, seed=1)
    b = make_mvtec(tmp_path / "cells", n_train=6, n_good=3, n_bad=3, size=32, seed=2)
    out = tmp_path / "study"
    args = ("study", "quality", a, b, "--seeds", "2", "--steps", "2", "-o", out)
    code, stdout, stderr = cli(capsys, *args, "--json", "--markdown", tmp_path / "q.md")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert [(r["material"], r["seed"]) for r in result["runs"]] == [("boards", 0), ("boards", 1), ("cells", 0),
                                                                    ("cells", 1)]
    assert {s["material"] for s in result["summary"]} == {"boards", "cells"}
    for run in result["runs"]:
        assert set(run["candidates"]) == set(CANDIDATE_SCORES)
        assert run["auroc"] == pytest.approx(run["candidates"][run["primary"]], abs=1e-9)
    table = (tmp_path / "q.md").read_text()
    assert "| boards | 2 |" in table and "| cells | 2 |" in table
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.pt")}
    assert len(stamps) == 4
    code, _, _ = cli(capsys, *args)  # everything reused: no checkpoint is written again
    assert code == 0 and {p.name: p.stat().st_mtime_ns for p in out.glob("*.pt")} == stamps


def test_study_refuses_a_bad_folder_before_training(tmp_path, capsys, monkeypatch):
    good = make_mvtec(tmp_path / "boards", n_train=8, n_good=2, n_bad=2, size=32)
    outcome = run_main(capsys, monkeypatch, "study", "quality", good, tmp_path / "missing", "-o", tmp_path / "s")
    assert_one_line(outcome, 2, "missing")
    assert not list((tmp_path / "s").glob("*.pt"))
