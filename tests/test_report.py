"""The evaluation report (`gedge evaluate --report`) and `gedge threshold`: thresholds worked out by hand, the
report in a real headless Chromium, deployed artifacts, the refitted threshold travelling with the model."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from browser import PAGE_FACTS
from clirun import cli
from gedge.core import artifacts
from gedge.core.decision import ThresholdSource
from gedge.core.errors import ArtifactError, ConfigError, DataError
from gedge.core.thresholds import (
    normal_quantile,
    rates_at,
    threshold_for_escape_rate,
    threshold_for_false_reject_rate,
)

# labels and scores small enough to place every threshold by hand (score >= threshold rejects)
LABELS = np.array([0, 0, 0, 1, 1])
SCORES = np.array([0.1, 0.2, 0.5, 0.4, 0.9])


def test_thresholds_by_hand():
    # zero escapes: the lowest defect (0.4) must be rejected; the highest score under it is 0.2 -> halfway, 0.3
    assert threshold_for_escape_rate(LABELS, SCORES, 0.0) == pytest.approx(0.3)
    # half the defects may escape: the second-lowest defect (0.9) must be rejected; under it 0.5 -> 0.7
    assert threshold_for_escape_rate(LABELS, SCORES, 0.5) == pytest.approx(0.7)
    # no false rejects: the highest normal (0.5) must be accepted; the next score over it is 0.9 -> 0.7
    assert threshold_for_false_reject_rate(LABELS, SCORES, 0.0) == pytest.approx(0.7)
    # one normal in three may be rejected (floor(0.34 * 3) = 1): the second-highest normal 0.2 accepted -> 0.3
    assert threshold_for_false_reject_rate(LABELS, SCORES, 0.34) == pytest.approx(0.3)
    rates = rates_at(LABELS, SCORES, 0.3)
    assert (rates.false_rejects, rates.normals, rates.escapes, rates.defective) == (1, 3, 0, 2)
    assert rates.false_reject_rate == pytest.approx(1 / 3) and rates.escape_rate == 0.0
    assert normal_quantile(LABELS, SCORES, 0.5) == pytest.approx(0.2)
    # ties: both defects at 0.4 and a normal at 0.4; zero escapes rejects that normal too (the threshold is at or
    # under 0.4), halfway under it from 0.2
    tied = np.array([0.1, 0.2, 0.4, 0.4, 0.4])
    assert threshold_for_escape_rate(LABELS, tied, 0.0) == pytest.approx(0.3)
    # nothing above the highest normal: a margin over it (5 % of the score range), never on it
    assert threshold_for_false_reject_rate(np.array([1, 0]), np.array([0.0, 1.0]), 0.0) == pytest.approx(1.05)


def test_thresholds_refuse_bad_input():
    with pytest.raises(DataError):
        threshold_for_escape_rate(LABELS, np.array([0.1, np.nan, 0.5, 0.4, 0.9]), 0.0)
    with pytest.raises(ConfigError):
        threshold_for_escape_rate(LABELS, SCORES, 1.0)
    with pytest.raises(DataError):
        threshold_for_false_reject_rate(np.ones(3), np.arange(3.0), 0.0)


def _expected_cases(capsys, model: Path, data: Path) -> tuple[set[str], set[str], dict[str, float]]:
    """Missed defects and rejected normals counted from `gedge score` (independently of the report), and every
    test image's score."""
    missed, rejected, scores = set(), set(), {}
    for folder in sorted((data / "test").iterdir()):
        code, out, _ = cli(capsys, "score", model, folder, "--json")
        assert code == 0
        for line in out.splitlines():
            record = json.loads(line)
            name = str(Path(record["path"]).resolve().relative_to(data.resolve()))
            scores[name] = record["score"]
            if folder.name == "good" and record["anomalous"]:
                rejected.add(name)
            elif folder.name != "good" and not record["anomalous"]:
                missed.add(name)
    return missed, rejected, scores


def test_report_renders_in_chromium(small_trained, chromium, capsys, tmp_path):
    """The report of a small trained model in a real headless Chromium: no console errors, every image decodes,
    the galleries show the cases `gedge score` counts (at most the gallery size each). The model's threshold is put
    halfway between the highest normal and the lowest defective score, so that both galleries have cases."""
    from dataclasses import replace

    from gedge.reference.checkpoint import save_checkpoint

    data, report, model = small_trained["data"], tmp_path / "report.html", tmp_path / "median.pt"
    _, _, scores = _expected_cases(capsys, small_trained["checkpoint"], data)
    trained = small_trained["model"]
    normal = [v for k, v in scores.items() if k.startswith("test/good/")]
    defective = [v for k, v in scores.items() if not k.startswith("test/good/")]
    middle = (max(normal) + min(defective)) / 2
    save_checkpoint(replace(trained, decision=replace(trained.decision, threshold=middle)), model)
    code, out, err = cli(capsys, "evaluate", model, data, "--report", report, "--gallery", "3", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["report"]["path"] == str(report) and report.is_file()
    html = report.read_text()  # one file: every picture a data URI, no script, nothing fetched from anywhere
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in sources)
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    chromium.open(report)
    facts = chromium.evaluate(PAGE_FACTS)
    assert chromium.errors() == []
    assert facts["scripts"] == 0
    broken = [i for i in facts["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert not broken, broken
    missed, rejected, scores = _expected_cases(capsys, model, data)
    galleries = {g["key"]: g for g in facts["galleries"]}
    assert set(galleries["missed"]["listed"]) == missed and set(galleries["rejected"]["listed"]) == rejected
    assert galleries["missed"]["total"] == len(missed) and galleries["rejected"]["total"] == len(rejected)
    assert galleries["missed"]["shown"] == min(3, len(missed))
    assert galleries["rejected"]["shown"] == min(3, len(rejected))
    assert missed and rejected
    shown = [scores[name] for name in galleries["missed"]["shownNames"]]
    rest = [scores[name] for name in missed - set(galleries["missed"]["shownNames"])]
    assert shown == sorted(shown) and (not rest or shown[-1] <= min(rest))  # the lowest scores, lowest first
    pictures = [i for i in facts["images"] if i["alt"].startswith(("image ", "heat map ", "mask "))]
    # a missed defect: image, heat map, mask; a rejected normal has no mask
    assert len(pictures) == 3 * galleries["missed"]["shown"] + 2 * galleries["rejected"]["shown"]


def test_report_content_by_name(small_trained, tmp_path):
    """Every candidate score has its histogram, by name (the list may grow), and the primary candidate's image
    scores are the graph's `score` output un-normalised: the candidates are computed like the deployed score."""
    from gedge.report.evaluation import EvaluationRequest, prepare_evaluation
    from gedge.report.html import ReportOptions, write_report

    evaluation = prepare_evaluation(EvaluationRequest(small_trained["checkpoint"], small_trained["data"])).run()
    html = write_report(evaluation, tmp_path / "r.html", ReportOptions(gallery=0)).path.read_text()
    from gedge.core.scores import CANDIDATE_SCORES

    assert list(evaluation.candidates) == list(CANDIDATE_SCORES)
    assert all(f'alt="{name}"' in html for name in CANDIDATE_SCORES)
    rule = evaluation.model.decision
    np.testing.assert_allclose(evaluation.candidates[rule.primary], evaluation.scores * rule.std + rule.mean,
                               rtol=1e-4, atol=1e-5)
    assert 'alt="training curve"' in html and "Settings chosen and why" in html


def test_threshold_refit_travels_with_the_checkpoint(small_trained, capsys, tmp_path):
    """`gedge threshold --escape-rate 0`: evaluate shows no escapes at the new threshold, the source is recorded
    with a warning, and a graph exported afterwards carries it and still passes parity."""
    model, data = small_trained["checkpoint"], small_trained["data"]
    refit = tmp_path / "refit.pt"
    code, out, err = cli(capsys, "threshold", model, data, "--escape-rate", "0", "-o", refit, "--json")
    assert code == 0, err
    assert "optimistic" in err  # the overfitting warning
    result = json.loads(out)
    assert result["after"]["escapes"] == 0 and Path(result["written"]) == refit
    code, out, _ = cli(capsys, "evaluate", refit, data, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["at_threshold_counts"]["escapes"] == 0
    assert shown["threshold"] == pytest.approx(result["after"]["threshold"])
    source = shown["model"]["threshold_source"]
    assert source["method"] == "zero escapes" and source["n_defective"] == 10 and source["n_normal"] == 6
    assert Path(source["data"]) == data.resolve() and source["previous_threshold"] == pytest.approx(
        result["before"]["threshold"])
    graph = tmp_path / "refit.onnx"
    assert cli(capsys, "export", refit, "-o", graph)[0] == 0
    assert artifacts.open(graph).threshold == pytest.approx(result["after"]["threshold"])
    sidecar = json.loads((tmp_path / "refit.onnx.json").read_text())
    assert sidecar["decision"]["threshold_source"]["method"] == "zero escapes"
    code, _, err = cli(capsys, "parity", "--ref", refit, "--candidate", graph, "--data", data)
    assert code == 0, err
    # the graph has no amap output: the report's heat maps come from its checkpoint beside it (sha256 recorded)
    code, out, err = cli(capsys, "evaluate", graph, data, "--report", tmp_path / "graph.html", "--json")
    assert code == 0, err
    assert "the torch reference refit.pt" in json.loads(out)["report"]["heat_maps"]
    assert "zero escapes on 16 labelled images" in (tmp_path / "graph.html").read_text()


def test_threshold_of_a_graph_is_kept_beside_it(scorer_graphs, capsys, tmp_path):
    """A deployed graph's refit goes to <graph>.threshold.json (valid against its schema), which the graph's
    reader applies; a changed graph makes it an error (one line, exit 2)."""
    import shutil

    from gedge.core.artifacts.graph import write_graph
    from gedge.core.schemas import validate_artifact_json

    graph = tmp_path / "scorer.onnx"
    shutil.copy(scorer_graphs["fp32"], graph)
    shutil.copy(scorer_graphs["fp32"].with_name("scorer.onnx.json"), tmp_path / "scorer.onnx.json")
    before = artifacts.open(graph)
    code, out, err = cli(capsys, "threshold", graph, scorer_graphs["data"], "--false-reject-rate", "0", "--json")
    assert code == 0, err
    result = json.loads(out)
    written = tmp_path / "scorer.onnx.threshold.json"
    assert Path(result["written"]) == written
    validate_artifact_json("threshold", json.loads(written.read_text()), written)
    assert result["after"]["false_rejects"] == 0 and result["before"]["threshold"] == pytest.approx(before.threshold)
    refitted = artifacts.open(graph)
    assert refitted.threshold == pytest.approx(result["after"]["threshold"]) != pytest.approx(before.threshold)
    assert refitted.decision.threshold_source.n_normal == 6 and refitted.threshold_file.artifact_sha256 == before.sha256
    assert refitted.sidecar.facts.decision.threshold == before.threshold  # the graph and its sidecar are untouched
    code, out, _ = cli(capsys, "evaluate", graph, scorer_graphs["data"], "--json")
    assert json.loads(out)["at_threshold_counts"]["false_rejects"] == 0
    changed = refitted.onnx_model  # another version of the graph, exported again with its sidecar
    changed.doc_string = "exported again"
    write_graph(graph, changed)
    with pytest.raises(ArtifactError, match="another version"):
        artifacts.open(graph)
    code, _, err = cli(capsys, "evaluate", graph, scorer_graphs["data"])
    assert code == 2 and "another version" in err and "Traceback" not in err


def test_engine_threshold_goes_into_its_manifest(tmp_path):
    """An engine's refit rewrites its manifest (what the C++ runtime reads), still valid against its schema."""
    import hashlib

    from gedge.core.artifacts.refit import refit_engine_manifest
    from gedge.core.schemas import validate_artifact_json

    example = json.loads((Path(__file__).parents[1] / "docs/schemas/examples/engine-manifest.example.json").read_text())
    engine = tmp_path / "scorer.fp16.engine"
    engine.write_bytes(b"not a real engine: only its sha256 is checked here")
    example.update(engine=engine.name, engine_sha256=hashlib.sha256(engine.read_bytes()).hexdigest(),
                   engine_bytes=engine.stat().st_size)
    (tmp_path / "scorer.fp16.engine.json").write_text(json.dumps(example))
    opened = artifacts.open(engine)
    new = opened.decision.refitted(1.25, "zero escapes on 9 images", ThresholdSource("zero escapes", n_normal=4))
    refit_engine_manifest(opened, new)
    written = json.loads((tmp_path / "scorer.fp16.engine.json").read_text())
    validate_artifact_json("engine", written)
    assert written["threshold"] == written["decision"]["threshold"] == 1.25
    assert written["decision"]["threshold_source"] == {"method": "zero escapes", "n_normal": 4}
    assert artifacts.open(engine).threshold == 1.25
    assert artifacts.open(engine).decision.threshold_source.method == "zero escapes"


def test_deployed_int8_report_shows_its_gate(int8_graphs, tmp_path):
    """A deployed INT8 graph: its recorded gate verdict in the report, heat maps from its own amap output."""
    from gedge.report.evaluation import EvaluationRequest, prepare_evaluation
    from gedge.report.html import ReportOptions, write_report

    evaluation = prepare_evaluation(EvaluationRequest(int8_graphs["cpu"], int8_graphs["data"])).run()
    assert evaluation.model.kind == "graph" and evaluation.model.reference_path == int8_graphs["checkpoint"]
    result = write_report(evaluation, tmp_path / "int8.html", ReportOptions(gallery=2))
    html = result.path.read_text()
    assert "Recorded checks of the deployed artifact" in html and "gate" in html and "passed" in html
    assert "the anomaly map of scorer.int8.cpu.onnx" in result.heat_maps
    assert 'alt="heat map ' in html or (result.missed == 0 and result.rejected == 0)


def test_evaluate_refuses_a_failed_artifact_unless_forced(failed_int8, scorer_graphs, capsys, monkeypatch):
    """A deployed artifact whose recorded gate failed is refused (exit 1) like by every command; bad targets of
    `gedge threshold` are one line before any scoring."""
    from clirun import assert_one_line, run_main

    outcome = run_main(capsys, monkeypatch, "evaluate", failed_int8["graph"], scorer_graphs["data"])
    assert_one_line(outcome, 1, "FAILED its INT8 accuracy gate", "--force")
    forced = run_main(capsys, monkeypatch, "evaluate", failed_int8["graph"], scorer_graphs["data"], "--force",
                      "--json")
    assert forced.code == 0, forced.stderr
    assert json.loads(forced.stdout)["model"]["verification"]["status"] == "forced"
    for options in ([], ["--escape-rate", "0", "--false-reject-rate", "0.1"], ["--escape-rate", "1"]):
        outcome = run_main(capsys, monkeypatch, "threshold", scorer_graphs["checkpoint"], scorer_graphs["data"],
                           *options)
        assert_one_line(outcome, 2, "rate")


def test_report_without_its_packages_is_one_line(small_trained, capsys, monkeypatch, tmp_path):
    """Without Jinja2 (the report extra), --report is one line with the install command, before any scoring."""
    from clirun import assert_one_line, run_main

    monkeypatch.setitem(sys.modules, "jinja2", None)  # an import of jinja2 now fails
    outcome = run_main(capsys, monkeypatch, "evaluate", small_trained["checkpoint"], small_trained["data"],
                       "--report", tmp_path / "r.html")
    assert_one_line(outcome, 2, "jinja2 is not installed", "pip install 'gedge[report]'")
    assert not (tmp_path / "r.html").exists()


def test_real_wood_missed_gallery_is_what_gedge_score_misses(wood_vsb, capsys, tmp_path):
    """On the real wood boards: the report's missed-defect gallery lists exactly the defective test images that
    `gedge score` accepts (a tiny model with its threshold fitted on the training normals, like an import)."""
    from conftest import _calibrated_checkpoint

    model = tmp_path / "wood-tiny.pt"
    _calibrated_checkpoint(wood_vsb, model, n_fit=24)
    report = tmp_path / "wood.html"
    code, out, err = cli(capsys, "evaluate", model, wood_vsb, "--report", report, "--gallery", "4", "--json")
    assert code == 0, err
    missed, rejected, _ = _expected_cases(capsys, model, wood_vsb)
    html = report.read_text()
    listed = {key: set(re.findall(rf'<tr data-list="{key}" data-name="([^"]+)"', html)) for key in ("missed",
                                                                                                       "rejected")}
    assert listed["missed"] == missed and listed["rejected"] == rejected
    assert 0 < len(missed) < 71
    assert json.loads(out)["report"]["missed"] == len(missed)


def test_engine_built_from_a_refitted_graph_carries_its_threshold(scorer_graphs, tmp_path):
    """`gedge build` of a graph with a threshold file: the engine's manifest (and so the C++ runtime) decides with
    the refitted threshold, also when the plan derives the FP16 graph first."""
    import shutil

    from gedge.core.artifacts.refit import write_threshold_file
    from gedge.core.tensorrt import import_tensorrt
    from gedge.export.build_plan import BuildRequest
    from gedge.export.engine_build import build_engine

    if import_tensorrt()[0] is None:
        pytest.skip(f"no TensorRT module importable: {import_tensorrt()[1]}")
    graph = Path(shutil.copy(scorer_graphs["fp32"], tmp_path / "scorer.onnx"))
    shutil.copy(scorer_graphs["fp32"].with_name("scorer.onnx.json"), tmp_path / "scorer.onnx.json")
    given = artifacts.open(graph)
    write_threshold_file(given, given.decision.refitted(0.125, "by hand", ThresholdSource("by hand")))
    result = build_engine(artifacts.open(graph), BuildRequest("fp16", progress=False))
    assert result.plan.derive_fp16 and result.manifest.decision.threshold == 0.125
    assert result.manifest.decision.threshold_source.to_dict() == {"method": "by hand"}
    assert artifacts.open(result.engine).threshold == 0.125
    written = json.loads(result.manifest_path.read_text())
    assert written["threshold"] == 0.125 and written["decision"]["threshold_source"] == {"method": "by hand"}
