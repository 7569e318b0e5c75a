"""Shared fixtures. The real wood data lives outside the repository; tests that need it skip without it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The measured backend choice is remembered under GEDGE_CACHE_DIR: keep the tests' choices out of ~/.cache
# (the CLI tests' subprocesses inherit it).
os.environ["GEDGE_CACHE_DIR"] = tempfile.mkdtemp(prefix="gedge-test-cache-")
# Every sidecar and manifest gedge writes during the tests (in this process and in the CLI's subprocesses, which
# inherit it) is checked against its schema in docs/schemas as it is written; a mismatch fails the writing test.
os.environ["GEDGE_VALIDATE_ARTIFACTS"] = "1"

REPO = Path(__file__).resolve().parents[1]
WOOD_VSB = REPO.parent / "shared" / "data" / "wood_vsb256"


@pytest.fixture(scope="session")
def wood_vsb() -> Path:
    if not (WOOD_VSB / "train" / "good").is_dir():
        pytest.skip(f"real wood data not found at {WOOD_VSB} (it is not part of the repository)")
    return WOOD_VSB


# --- exported scorer graphs (shared by test_export, test_parity and test_tensorrt_parse) ---------------------


def _calibrated_checkpoint(data: Path, out: Path, n_fit: int | None = None):
    """A fresh tiny model with non-trivial BatchNorm statistics, and its decision rule fitted where the product
    fits it (:func:`gedge.reference.decision_fit.fit_decision_rule`: the 0.99 quantile of normal images' scores,
    here the data's normal training images, or the first ``n_fit``). The threshold is not placed for the tests'
    convenience: images near
    it count in every agreement test as they would on a line."""
    from dataclasses import replace

    import torch
    from gedge.core.decision import DecisionRule
    from gedge.core.preprocess import Preprocess
    from gedge.data.datasets import open_dataset
    from gedge.data.tiles import load_prepared, network_counts, score_images
    from gedge.reference.checkpoint import Checkpoint, save_checkpoint
    from gedge.reference.decision_fit import fit_decision_rule
    from gedge.reference.model import ModelConfig, build_networks, local_window
    from gedge.runtime.torch_backend import TorchBackend

    # blurred residual for d3_local, as training sets it, so every graph of the chain tests computes it
    config = ModelConfig(isize=16, nz=16, ngf=8, ndf=8, residual_blur=local_window(16))
    pre = Preprocess(mode="patch", isize=16, stride=16, scale=0.5)
    netg, netd = build_networks(config, seed=3)
    generator = torch.Generator().manual_seed(3)
    for module in [*netg.modules(), *netd.modules()]:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    checkpoint = Checkpoint(config, pre, DecisionRule(), netg.state_dict(), netd.state_dict(),
                            facts={"data": str(data), "steps": 0})
    dataset = open_dataset(data)
    backend = TorchBackend(checkpoint)
    train_images = load_prepared(dataset.train[:n_fit], pre)
    _, tiles = score_images(backend, train_images, pre)
    decision, stats = fit_decision_rule(tiles, network_counts(train_images, pre), "d1", 0.99)
    checkpoint = replace(checkpoint, decision=decision, score_stats=stats)
    save_checkpoint(checkpoint, out)
    return checkpoint


@pytest.fixture(scope="session")
def scorer_graphs(tmp_path_factory):
    """Small synthetic wood (64x64: 16 test images of 4 tiles at scale 0.5), a tiny calibrated checkpoint, and
    its FP32 (uint8 input, with amap), FP32 float-input and FP16 graphs."""
    from gedge.core import artifacts
    from gedge.data.synth import SynthConfig, write_synthetic
    from gedge.export.fp16 import write_fp16_graph
    from gedge.export.onnx_export import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("scorer")
    data = root / "wood"
    write_synthetic(data, SynthConfig(size=64, n_train=6, n_test_good=6, n_test_per_defect=2, seed=1))
    checkpoint_path = root / "model.pt"
    checkpoint = _calibrated_checkpoint(data, checkpoint_path)
    reference = artifacts.open(checkpoint_path)
    fp32 = export_checkpoint(reference, root / "scorer.onnx", ExportOptions(with_amap=True)).graph
    float_input = export_checkpoint(reference, root / "scorer.float.onnx", ExportOptions(input="float-nchw")).path
    fp16 = write_fp16_graph(fp32, root / "scorer.fp16.onnx").path
    fp32 = fp32.path
    return {"data": data, "checkpoint": checkpoint_path, "model": checkpoint, "fp32": fp32,
            "fp32_float": float_input, "fp16": fp16}


# --- INT8 graphs (shared by test_calibrate) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def int8_graphs(scorer_graphs, tmp_path_factory):
    """`gedge calibrate`'s library call on a copy of the fixture model that records five of the training images as
    validation images (so they stay out of the calibration set: the gate's normals), with its decision rule fitted
    on them, where training fits it, with ``d3`` as the primary score: 64 patches (a warning), both flavours,
    min/max ranges. The untrained model's proxies sit at its threshold and INT8 moves its ``d1`` scores by about 1 %,
    which flips a third of them (its gate fails: :func:`failed_int8`); ``d3``, the image-space residual, comes from
    the float image convolutions and INT8 leaves it unchanged, so these graphs pass the gate and the tests have an
    artifact whose recorded verdict is a pass. Training a model whose proxies clear its threshold takes minutes."""
    from dataclasses import replace

    from gedge.calibrate.pipeline import CalibrateOptions, calibrate
    from gedge.core import artifacts
    from gedge.data.datasets import open_dataset
    from gedge.data.tiles import load_prepared, network_counts, score_images
    from gedge.export.onnx_export import ExportOptions, export_checkpoint
    from gedge.reference.checkpoint import save_checkpoint
    from gedge.reference.decision_fit import fit_decision_rule
    from gedge.runtime.torch_backend import TorchBackend

    root = tmp_path_factory.mktemp("int8")
    model = scorer_graphs["model"]
    validation = open_dataset(scorer_graphs["data"]).train[:5]  # the fewest normals the gate's limits judge
    prepared = load_prepared(validation, model.preprocess)
    _, tiles = score_images(TorchBackend(model), prepared, model.preprocess)
    decision, stats = fit_decision_rule(tiles, network_counts(prepared, model.preprocess), "d3", 0.99)
    checkpoint = replace(model, decision=decision, score_stats=stats,
                         facts={**model.facts, "validation_images": [str(p) for p in validation]})
    checkpoint_path = save_checkpoint(checkpoint, root / "model.pt")
    fp32 = export_checkpoint(artifacts.open(checkpoint_path), root / "scorer.onnx", ExportOptions(with_amap=True)).path
    options = CalibrateOptions(checkpoint=checkpoint_path, graph=fp32, target="onnx", n_patches=64, method="minmax",
                               out_dir=root, threads=1)
    result = calibrate(options)
    return {"root": root, "checkpoint": checkpoint_path, "fp32": fp32, "data": scorer_graphs["data"],
            "validation": validation, "result": result, "tensorrt": result.flavour("tensorrt").path,
            "cpu": result.flavour("cpu").path, "cache": result.cache_path, "set": result.set_path,
            "ranges": result.ranges}


@pytest.fixture(scope="session")
def failed_int8(scorer_graphs, tmp_path_factory):
    """A TensorRT-flavoured INT8 graph whose accuracy gate failed, written under its name (not --strict) with the
    verdict in its sidecar, and its calibration cache: the untrained fixture model's proxies sit at its threshold,
    and INT8 moves a third of them across it."""
    from gedge.calibrate.pipeline import CalibrateOptions, calibrate

    root = tmp_path_factory.mktemp("failed-int8")
    result = calibrate(CalibrateOptions(checkpoint=scorer_graphs["checkpoint"], graph=scorer_graphs["fp32"],
                                        target="tensorrt", n_patches=32, out_dir=root, threads=1, fallback=False))
    flavour = result.flavour("tensorrt")
    assert not flavour.report.passed and flavour.written, "the untrained model's INT8 graph should fail its gate"
    return {"graph": flavour.path, "cache": result.cache_path, "result": result, "root": root}


# --- a small trained model and a real headless Chromium (shared by test_report) --------------------------------


@pytest.fixture(scope="session")
def small_trained(tmp_path_factory):
    """Synthetic wood (64 x 64: 12 training images, 6 normal and 10 defective test images with masks) and a model
    trained on it for 6 steps with `gedge train`'s library call (its checkpoint, training curve and facts)."""
    from gedge.data.synth import SynthConfig, write_synthetic
    from gedge.reference.inputs import InputRequest
    from gedge.reference.train import TrainConfig
    from gedge.reference.training_job import NetworkWidths, TrainRequest, prepare_training

    root = tmp_path_factory.mktemp("small-trained")
    data = root / "wood"
    write_synthetic(data, SynthConfig(size=64, n_train=12, n_test_good=6, n_test_per_defect=2, seed=2))
    out = root / "model.pt"
    request = TrainRequest(data, out, TrainConfig(steps=6, val_every=3, batch_size=8, seed=0), InputRequest(isize=16),
                           NetworkWidths(nz=16, ngf=8, ndf=8))
    result = prepare_training(request).run()
    return {"data": data, "checkpoint": out, "model": result.checkpoint, "root": root}


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium over its DevTools protocol (tests/browser.py); installed with apt-get where missing and
    possible, else the test skips with the reason."""
    import browser

    if browser.websocket is None:
        pytest.skip("websocket-client is not installed (it is in the dev extra)")
    binary, why = browser.install_chromium()
    if binary is None:
        pytest.skip(why)
    page = browser.Chromium(binary)
    yield page
    page.close()
