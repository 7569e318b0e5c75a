"""Shared fixtures. The real wood data lives outside the repository; tests that need it skip without it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The measured backend choice is remembered under GEDGE_CACHE_DIR: keep the tests' choices out of ~/.cache
# (the CLI tests' subprocesses inherit it).
os.environ["GEDGE_CACHE_DIR"] = tempfile.mkdtemp(prefix="gedge-test-cache-")

REPO = Path(__file__).resolve().parents[1]
WOOD_VSB = REPO.parent / "shared" / "data" / "wood_vsb256"


@pytest.fixture(scope="session")
def wood_vsb() -> Path:
    if not (WOOD_VSB / "train" / "good").is_dir():
        pytest.skip(f"real wood data not found at {WOOD_VSB} (it is not part of the repository)")
    return WOOD_VSB


# --- exported scorer graphs (shared by test_export, test_parity and test_tensorrt_parse) ---------------------


def _calibrated_checkpoint(data: Path, out: Path):
    """A fresh tiny model with non-trivial BatchNorm statistics, calibrated on the data's training images and
    with the threshold in the widest gap near the middle of the test images' scores (so decisions split)."""
    from dataclasses import replace

    import numpy as np
    import torch
    from gedge.core.decision import DecisionRule
    from gedge.core.preprocess import Preprocess
    from gedge.data.datasets import open_dataset
    from gedge.data.tiles import load_prepared, network_counts, score_images
    from gedge.reference.checkpoint import Checkpoint, save_checkpoint
    from gedge.reference.decision_fit import fit_decision_rule
    from gedge.reference.model import ModelConfig, build_networks
    from gedge.runtime.torch_backend import TorchBackend

    config = ModelConfig(isize=16, nz=16, ngf=8, ndf=8)
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
    train_images = load_prepared(dataset.train, pre)
    _, tiles = score_images(backend, train_images, pre)
    decision, stats = fit_decision_rule(tiles, network_counts(train_images, pre), "d1", 0.99)
    checkpoint = replace(checkpoint, decision=decision, score_stats=stats)
    test_scores, _ = score_images(TorchBackend(checkpoint), load_prepared(dataset.test.paths, pre), pre)
    ordered = np.sort(test_scores.score)
    middle = ordered[len(ordered) // 4: 3 * len(ordered) // 4 + 1]
    gap = int(np.argmax(np.diff(middle)))
    threshold = float((middle[gap] + middle[gap + 1]) / 2)
    checkpoint = replace(checkpoint, decision=replace(decision, threshold=threshold,
                                                         threshold_rule="tests: middle of the widest gap"))
    save_checkpoint(checkpoint, out)
    return checkpoint


@pytest.fixture(scope="session")
def scorer_graphs(tmp_path_factory):
    """Small synthetic wood (64x64: 16 test images of 4 tiles at scale 0.5), a tiny calibrated checkpoint, and
    its FP32 (uint8 input, with amap), FP32 float-input and FP16 graphs."""
    from gedge.data.synth import SynthConfig, write_synthetic
    from gedge.export.fp16 import write_fp16_graph
    from gedge.export.onnx_export import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("scorer")
    data = root / "wood"
    write_synthetic(data, SynthConfig(size=64, n_train=6, n_test_good=6, n_test_per_defect=2, seed=1))
    checkpoint_path = root / "model.pt"
    checkpoint = _calibrated_checkpoint(data, checkpoint_path)
    fp32 = export_checkpoint(checkpoint_path, root / "scorer.onnx", ExportOptions(with_amap=True)).path
    float_input = export_checkpoint(checkpoint_path, root / "scorer.float.onnx", ExportOptions(input="float-nchw")).path
    fp16 = write_fp16_graph(fp32, root / "scorer.fp16.onnx")
    return {"data": data, "checkpoint": checkpoint_path, "model": checkpoint, "fp32": fp32,
            "fp32_float": float_input, "fp16": fp16}


# --- INT8 graphs (shared by test_calibrate) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def int8_graphs(scorer_graphs, tmp_path_factory):
    """`gedge calibrate`'s library call on the tiny fixture: a copy of its checkpoint that records two of the
    training images as validation images (so they must stay out of the decision set), 64 patches (a warning),
    both flavours, min/max ranges."""
    from dataclasses import replace

    from gedge.calibrate.pipeline import CalibrateOptions, calibrate
    from gedge.data.datasets import open_dataset
    from gedge.reference.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("int8")
    train = open_dataset(scorer_graphs["data"]).train
    checkpoint = replace(scorer_graphs["model"], facts={**scorer_graphs["model"].facts,
                                                        "validation_images": [str(p) for p in train[:2]]})
    checkpoint_path = save_checkpoint(checkpoint, root / "model.pt")
    options = CalibrateOptions(checkpoint=checkpoint_path, graph=scorer_graphs["fp32"], n_patches=64,
                               method="minmax", out_dir=root, threads=1)
    result = calibrate(options)
    return {"root": root, "checkpoint": checkpoint_path, "validation": train[:2], "result": result,
            "tensorrt": result.flavour("tensorrt").path, "cpu": result.flavour("cpu").path,
            "cache": result.cache_path, "set": result.set_path, "ranges": result.ranges}
