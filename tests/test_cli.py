"""The CLI end to end, through the installed `gedge` console script: results, help and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clirun import run_main
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import open_dataset
from gedge.reference.checkpoint import save_checkpoint
from gedge.reference.model import ModelConfig
from gedge.reference.train import TrainConfig, train
from helpers import make_mvtec, textured, write_png

GEDGE = [sys.executable, "-m", "gedge.cli"]


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([*GEDGE, *map(str, args)], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = make_mvtec(tmp_path_factory.mktemp("cli"), n_train=10, size=32)
    out = root.parent / "model.pt"
    result = train(open_dataset(root), ModelConfig(isize=16, nz=16, ngf=8, ndf=8),
                   Preprocess(mode="patch", isize=16, stride=16), TrainConfig(steps=4, val_every=4, batch_size=8),
                   out)
    save_checkpoint(result.checkpoint, out)
    return root, out


def test_help_shows_examples(capsys, monkeypatch):
    top = run("--help")  # once through the installed entry point, the rest in this process
    assert top.returncode == 0 and "Example" in top.stdout
    version = next(line for line in top.stdout.splitlines() if "--version" in line)
    assert "<bool>" not in version and "Print the version" in version  # a flag takes no value
    for command in ("train", "evaluate", "score", "import", "demo", "calibrate", "study contamination"):
        result = run_main(capsys, monkeypatch, *command.split(), "--help")
        assert result.code == 0 and "Example" in result.stdout, command
    assert "Example" in run_main(capsys, monkeypatch, "data", "synth-wood", "--help").stdout


def test_train_cli_writes_checkpoint_and_json(tmp_path):
    root = make_mvtec(tmp_path / "d", n_train=8, size=32)
    out = tmp_path / "m.pt"
    result = run("train", root, "-o", out, "--steps", 2, "--val-every", 2, "--isize", 16, "--ngf", 8, "--ndf", 8,
                 "--nz", 8, "--batch-size", 4, "--scale", 1.0, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["checkpoint"] == str(out) and out.is_file() and summary["best_step"] == 2


def test_evaluate_and_score(model, tmp_path):
    root, ckpt = model
    result = run("evaluate", ckpt, root, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"][0]["name"] == "all" and set(report["rows"][0]["auroc"]) >= {"d1", "d2", "d3", "latent"}
    table = run("evaluate", ckpt, root)
    assert "AUROC" in table.stdout and "knot" in table.stdout
    scored = run("score", ckpt, root / "test" / "good", root / "test" / "knot" / "000.png", "--json")
    assert scored.returncode == 0, scored.stderr
    records = [json.loads(line) for line in scored.stdout.strip().splitlines()]
    assert len(records) == 7 and all(isinstance(r["anomalous"], bool) for r in records)


def test_bad_input_missing_and_empty_folder(model, tmp_path):
    _, ckpt = model
    assert_one_line_error(run("train", tmp_path / "missing"), "missing", "does not exist")
    (tmp_path / "empty" / "train" / "good").mkdir(parents=True)
    assert_one_line_error(run("train", tmp_path / "empty"), "train/good", "no images")
    assert_one_line_error(run("score", ckpt, tmp_path / "nothing-here"), "nothing-here")


def test_bad_input_corrupt_jpeg(model, tmp_path):
    _, ckpt = model
    corrupt = tmp_path / "board.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(40))
    assert_one_line_error(run("score", ckpt, corrupt), "board.jpg", "corrupt")


def test_bad_input_grayscale_for_rgb_model(model, tmp_path):
    _, ckpt = model
    gray = write_png(tmp_path / "gray.png", textured(np.random.default_rng(0), 32)[..., :1])
    assert_one_line_error(run("score", ckpt, gray), "gray.png", "1 channel")


def test_bad_input_non_power_of_two_size(model):
    root, _ = model
    assert_one_line_error(run("train", root, "--isize", 48), "power of two", "48")


def test_bad_input_unknown_primary_score(model):
    root, _ = model
    assert_one_line_error(run("train", root, "--primary", "d4"), "primary must be auto or one of", "d4")


def test_bad_input_truncated_checkpoint(model, tmp_path):
    root, ckpt = model
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    assert_one_line_error(run("evaluate", truncated, root), "cut.pt", "truncated")


def test_bad_input_deployed_model_where_a_checkpoint_goes(model, tmp_path):
    root, _ = model
    graph = tmp_path / "scorer.onnx"
    graph.write_bytes(b"not read: the suffix says what it is")
    assert_one_line_error(run("score", graph, root), "scorer.onnx", "ONNX graph, not a gedge checkpoint")
    # evaluate takes deployed models: this one is read, and is no ONNX file
    assert_one_line_error(run("evaluate", graph, root), "scorer.onnx", "not a readable ONNX file")
