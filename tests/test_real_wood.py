"""Checks on the real wood boards (../shared/data/wood_vsb256); skipped with the reason where it is absent."""

import numpy as np
from gedge.core.preprocess import Preprocess
from gedge.data.datasets import open_dataset
from gedge.data.images import read_image
from gedge.data.tiles import load_prepared, network_inputs


def test_real_wood_layout_and_masks(wood_vsb):
    ds = open_dataset(wood_vsb)
    assert ds.layout == "mvtec" and len(ds.train) == 70
    assert int((ds.test.labels == 0).sum()) == 68 and int((ds.test.labels == 1).sum()) == 71
    masks = [m for m, y in zip(ds.test.mask_paths, ds.test.labels) if y == 1]
    assert all(m is not None and m.is_file() for m in masks)
    mask = read_image(masks[0], 3)
    assert (mask > 127).any() and (mask <= 127).any()


def test_real_wood_default_tiling(wood_vsb):
    ds = open_dataset(wood_vsb)
    pre = Preprocess(mode="patch", isize=32, scale=0.5)
    images = load_prepared(ds.train[:3], pre)
    assert images[0].shape == (128, 128, 3) and images[0].dtype == np.uint8
    inputs, counts = network_inputs(images, pre)
    assert counts == [49, 49, 49] and inputs.shape == (147, 32, 32, 3)


def test_real_wood_openvino_int8_passes_its_gate(wood_vsb, tmp_path):
    """A short training run on the real boards, its FP32 graph, and the NNCF INT8 IR from `gedge calibrate
    --target openvino --strict`: the accuracy gate (AUROC drop <= 0.01, agreement >= 98 %) passes, the IR is
    written and its residual arithmetic is float. The gate only means something for a model that ranks the gate
    images (an untrained one passes any gate: its AUROC is 0.5 before and after), so the reference AUROC is
    asserted too. 450 steps at half scale with a learning rate of 8e-4 reach about 0.77 there (the default 2e-4
    needs 900 steps for about 0.81 and stays at 0.50 after 450; docs/benchmarks.md), about a minute on 2 cores."""
    import json
    import subprocess
    import sys

    import pytest

    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"OpenVINO/NNCF not installed ({exc})")

    def gedge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gedge.cli", *args], capture_output=True, text=True,
                              timeout=600)

    model, graph = tmp_path / "wood.pt", tmp_path / "wood.onnx"
    assert gedge("train", str(wood_vsb), "-o", str(model), "--steps", "450", "--val-every", "450",
                 "--lr", "8e-4", "--scale", "0.5", "--seed", "0").returncode == 0
    assert gedge("export", str(model), "-o", str(graph)).returncode == 0
    result = gedge("calibrate", str(model), "--onnx", str(graph), "--target", "openvino", "--data", str(wood_vsb),
                   "--strict", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    ir = summary["graphs"]["openvino"]
    gate = ir["gate"]
    print(f"real wood OpenVINO INT8 gate: AUROC {gate['auroc_reference']:.4f} -> {gate['auroc_int8']:.4f}, "
          f"agreement {gate['agreement']:.4f} on {gate['n_images']} images; INT8 MACs {ir['int8_mac_share']:.3f}, "
          f"kept in float {ir['kept_float']}; fallback {ir['fallback'] and ir['fallback']['reason']}")
    assert summary["passed"] and ir["written"] and ir["float_residuals"] == "ok"
    assert gate["auroc_reference"] >= 0.7, "the short training's model does not rank the gate images"
    assert gate["auroc_drop"] <= 0.01 and gate["agreement"] >= 0.98
    assert (tmp_path / "wood.int8.ov.xml").is_file() and (tmp_path / "wood.int8.ov.bin").is_file()
